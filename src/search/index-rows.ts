import type { StoredEvent } from '../rooms/events/stored-event.js';

/** A searchable text of an event, before it is written to the dialect's index. */
export interface SearchDoc {
  event_id: string;
  room_id: string;
  sender: string;
  key: string;
  value: string;
  stream_pos: number;
  origin_server_ts: number;
}

/** The keys clients may search (search.yaml `keys`). */
export const SEARCH_KEYS = ['content.body', 'content.name', 'content.topic'] as const;

/**
 * The text of an event under the key it is searched by: the body of a
 * message, the name of a room name event, the topic of a topic event (its
 * `content.topic`, and the `text/plain` body of `m.topic`, as search.md says).
 */
export function searchableText(type: string, content: Record<string, unknown>): { key: string; value: string } | null {
  if (type === 'm.room.message') return typeof content.body === 'string' && content.body !== '' ? { key: 'content.body', value: content.body } : null;
  if (type === 'm.room.name') return typeof content.name === 'string' && content.name !== '' ? { key: 'content.name', value: content.name } : null;
  if (type !== 'm.room.topic') return null;
  const parts: string[] = [];
  if (typeof content.topic === 'string') parts.push(content.topic);
  const rich = content['m.topic'];
  const reps = typeof rich === 'object' && rich !== null ? (rich as Record<string, unknown>)['m.text'] : undefined;
  if (Array.isArray(reps)) {
    for (const r of reps) {
      if (typeof r !== 'object' || r === null) continue;
      const rep = r as Record<string, unknown>;
      const mime = rep.mimetype ?? 'text/plain';
      if (mime === 'text/plain' && typeof rep.body === 'string' && !parts.includes(rep.body)) parts.push(rep.body);
    }
  }
  const value = parts.join('\n');
  return value === '' ? null : { key: 'content.topic', value };
}

/** The types whose events hold searchable text. */
export const SEARCHED_TYPES = ['m.room.message', 'm.room.name', 'm.room.topic'];

/** The index rows of stored events: those clients may see, not redacted, with searchable text. */
export function searchRows(events: readonly StoredEvent[]): SearchDoc[] {
  const rows: SearchDoc[] = [];
  for (const ev of events) {
    if (ev.streamPos === null || ev.outlier || ev.softFailed || ev.rejectedReason !== null || ev.redactedBy !== null) continue;
    if (typeof ev.pdu.content !== 'object' || ev.pdu.content === null) continue;
    const text = searchableText(ev.pdu.type, ev.pdu.content);
    if (!text) continue;
    rows.push({ event_id: ev.eventId, room_id: ev.roomId, sender: ev.pdu.sender, ...text, stream_pos: ev.streamPos, origin_server_ts: ev.pdu.origin_server_ts });
  }
  return rows;
}
