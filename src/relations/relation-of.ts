import type { Pdu } from '../core/types.js';

/** The relation an event's cleartext content declares. */
export interface Relation {
  relType: string;
  parentId: string;
  /** `key` of an `m.annotation`. */
  key: string | null;
}

/**
 * The event's relation, or null when it has none the server can index: the
 * cleartext `m.relates_to` must hold a string `rel_type` and `event_id`
 * (spec: definitions/m.relates_to; replies without `rel_type` are not
 * relations here), an annotation needs its string `key`, and an event cannot
 * relate to itself. Relations that break these rules are ignored, as the spec
 * says.
 */
export function relationOf(eventId: string, pdu: Pick<Pdu, 'content'>): Relation | null {
  const content = pdu.content;
  if (typeof content !== 'object' || content === null) return null;
  const rel = (content as Record<string, unknown>)['m.relates_to'];
  if (typeof rel !== 'object' || rel === null || Array.isArray(rel)) return null;
  const r = rel as Record<string, unknown>;
  if (typeof r.rel_type !== 'string' || r.rel_type === '' || typeof r.event_id !== 'string' || !r.event_id.startsWith('$')) return null;
  if (r.event_id === eventId) return null;
  let key: string | null = null;
  if (r.rel_type === 'm.annotation') {
    if (typeof r.key !== 'string') return null;
    key = r.key;
  }
  return { relType: r.rel_type, parentId: r.event_id, key };
}
