import type { StoredEvent } from '../rooms/events/stored-event.js';
import { relationOf } from './relation-of.js';
import type { EventRelationRow } from './tables.js';

/**
 * The relation index rows for events being persisted: one per event that
 * clients may see (it has a stream position and is neither rejected nor
 * soft-failed) and declares a relation. Written in the persisting
 * transaction, so a child is in the index exactly when it is in the room.
 */
export function relationRows(events: readonly { stored: StoredEvent; depth: number }[], positionOf: (i: number) => number | null): EventRelationRow[] {
  const rows: EventRelationRow[] = [];
  events.forEach((a, i) => {
    const pos = positionOf(i);
    const ev = a.stored;
    if (pos === null || ev.outlier || ev.softFailed || ev.rejectedReason !== null) return;
    const rel = relationOf(ev.eventId, ev.pdu);
    if (!rel) return;
    rows.push({
      event_id: ev.eventId,
      relates_to: rel.parentId,
      room_id: ev.roomId,
      rel_type: rel.relType,
      type: ev.pdu.type,
      sender: ev.pdu.sender,
      aggregation_key: rel.key,
      depth: a.depth,
      stream_pos: pos,
      origin_server_ts: ev.pdu.origin_server_ts,
    });
  });
  return rows;
}
