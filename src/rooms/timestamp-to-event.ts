/**
 * GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event (room_event_by_timestamp.yaml, spec
 * v1.6): the event nearest a timestamp in one direction, among the events this server holds that
 * the caller may see (history visibility applies as in /messages).
 */
import { forbidden, invalidParam, notFound } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import type { RoomsCore } from './room-core.js';
import { selectEventsNearTimestamp } from './store/events-table.js';

/** Candidates read per query, and how many queries before giving up on invisible ones. */
const PAGE = 50;
const MAX_PAGES = 20;

export async function eventNearTimestamp(
  core: RoomsCore,
  requester: Requester,
  roomId: string,
  q: { ts?: unknown; dir?: unknown },
): Promise<{ event_id: string; origin_server_ts: number }> {
  const ts = typeof q.ts === 'string' && /^-?\d{1,16}$/.test(q.ts) ? Number(q.ts) : typeof q.ts === 'number' && Number.isSafeInteger(q.ts) ? q.ts : NaN;
  if (Number.isNaN(ts)) throw invalidParam('ts must be a timestamp in milliseconds');
  if (q.dir !== 'f' && q.dir !== 'b') throw invalidParam("dir must be 'f' or 'b'");
  await core.requireHead(roomId);
  let seenAny = false;
  for (let page = 0; page < MAX_PAGES; page++) {
    const rows = await selectEventsNearTimestamp(core.ctx.db, { roomId, ts, dir: q.dir, skip: page * PAGE, limit: PAGE });
    if (rows.length === 0) break;
    const stored = rows.map((r) => core.events.fromRow(r));
    const { visible } = await core.visibility.filter(roomId, stored, requester.userId);
    if (visible.length > 0) seenAny = true;
    // `visible` keeps the order it was given: the first is the nearest.
    const ev = visible[0];
    if (ev) return { event_id: ev.eventId, origin_server_ts: ev.pdu.origin_server_ts };
    if (rows.length < PAGE) break;
  }
  if (!seenAny && !(await mayEverSee(core, roomId, requester.userId))) {
    throw forbidden('You are not allowed to view this room');
  }
  throw notFound('No event was found in that direction');
}

/** Whether the user was ever in the room, or anyone may read it. */
async function mayEverSee(core: RoomsCore, roomId: string, userId: string): Promise<boolean> {
  if ((await core.visibility.currentVisibility(roomId)) === 'world_readable') return true;
  return (await core.visibility.membershipHistory(roomId, userId)).length > 0;
}
