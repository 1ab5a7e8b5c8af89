/**
 * Stripped state (spec: client-server API, "Stripped state") another server gave with an invite or
 * knock that this server holds out of band (no user of it is in the room): kept in the stored
 * membership event's `unsigned`, which is never served over federation, and shown to the user as
 * hints for what is not held here.
 */
import type { JsonObject, StrippedStateEvent } from '../core/types.js';

export const STRIPPED_HINTS_KEY = 'stripped_state_hints';

/** Well-formed stripped events from raw entries (full PDUs are reduced to their stripped fields). */
export function toStripped(raw: unknown): StrippedStateEvent[] {
  if (!Array.isArray(raw)) return [];
  const out: StrippedStateEvent[] = [];
  for (const e of raw) {
    if (typeof e !== 'object' || e === null || Array.isArray(e)) continue;
    const { type, state_key, sender, content } = e as JsonObject;
    if (typeof type !== 'string' || typeof state_key !== 'string' || typeof sender !== 'string') continue;
    if (typeof content !== 'object' || content === null || Array.isArray(content)) continue;
    out.push({ type, state_key, sender, content: content as JsonObject });
  }
  return out;
}

/** The hints kept in a stored event's `unsigned`, if any. */
export function strippedHints(unsigned: unknown): StrippedStateEvent[] {
  if (typeof unsigned !== 'object' || unsigned === null) return [];
  return toStripped((unsigned as JsonObject)[STRIPPED_HINTS_KEY]);
}
