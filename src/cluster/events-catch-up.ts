import type { Db } from '../db/schema.js';
import { EVENT_CACHE } from '../rooms/pipeline/pipeline.js';
import { selectCountersWithStreamSummary, selectStreamSummary, type StreamSummaryRow } from '../rooms/store/stream-reads.js';
import { selectFillsBetween } from '../rooms/store/partial-state-table.js';
import type { CacheInvalidation, StreamAdvance } from './bus.js';

export interface StreamChanges {
  advances: StreamAdvance[];
  invalidations: CacheInvalidation[];
  /** The last position read: below `upTo` when `limit` cut the range. */
  readTo: number;
}

/**
 * The events stream read back as the announcements its writer published:
 * the room, a membership's target, and the redacted event (whose cached copy
 * lacks `redacted_by`). The events table is itself written in the
 * persisting transaction, so it is the invalidation stream for room heads,
 * member lists and visibility: no second row per event is needed. A
 * partial-state fill takes a position with no event: its row in
 * partial_state_fills is read back instead, with the members it changed.
 */
export async function eventsBetween(db: Db, after: number, upTo: number, limit: number): Promise<StreamChanges> {
  return changesOf(db, await selectStreamSummary(db, after, upTo, limit), after, upTo, limit);
}

/**
 * Every counter's head and, from the same snapshot, the events stream's
 * changes after `after` up to its head (at most `limit` events): what the bus
 * reads on every catch-up, so a node that follows another's sends reads
 * each of them in one statement.
 */
export async function headsAndEventsAfter(db: Db, after: number, limit: number): Promise<{ heads: Map<string, number>; events: StreamChanges }> {
  const { counters, rows } = await selectCountersWithStreamSummary(db, after, limit);
  const upTo = Math.max(after, counters.get('events') ?? 0);
  return { heads: counters, events: await changesOf(db, rows, after, upTo, limit) };
}

async function changesOf(db: Db, rows: StreamSummaryRow[], after: number, upTo: number, limit: number): Promise<StreamChanges> {
  const advances: StreamAdvance[] = [];
  const invalidations: CacheInvalidation[] = [];
  for (const r of rows) {
    const pos = Number(r.stream_pos);
    const member = r.type === 'm.room.member' && r.state_key !== null;
    advances.push({ stream: 'events', pos, roomId: r.room_id, ...(member ? { userIds: [r.state_key!] } : {}) });
    if (r.redacts !== null) invalidations.push({ cache: EVENT_CACHE, key: r.redacts });
  }
  const readTo = rows.length < limit ? upTo : Number(rows[rows.length - 1]!.stream_pos);
  // Positions are handed out without gaps (a rolled-back one is never seen): when every position
  // of the range has its event, no fill can be among them.
  const fills = rows.length === readTo - after ? [] : await selectFillsBetween(db, after, readTo);
  if (fills.length > 0) {
    for (const f of fills) advances.push({ stream: 'events', pos: f.pos, roomId: f.roomId, userIds: f.userIds });
    advances.sort((x, y) => x.pos - y.pos);
  }
  return { advances, invalidations, readTo };
}
