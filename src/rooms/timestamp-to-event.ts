/**
 * GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event (room_event_by_timestamp.yaml, spec
 * v1.6): the event nearest a timestamp in one direction, among the events this server holds that
 * the caller may see (history visibility applies as in /messages).
 *
 * When this server lacks part of the room's history (it joined late: the room has backward
 * extremities) and found nothing, or found an event next to a gap in that direction (its prev
 * events not held, going forwards; no event held after it, going backwards), a closer event may
 * exist elsewhere: the servers in the room are asked (federation `timestamp_to_event`), and an
 * answer closer than the local one is brought here (by backfill) before it is returned, so the
 * client can go on with /context.
 *
 * The same search, with the asking server's visibility, answers other servers (nearestEvent).
 */
import { prevEventIds } from '../core/auth-rules.js';
import { forbidden, invalidParam, notFound } from '../http/errors.js';
import type { Requester } from '../http/requester.js';
import type { StoredEvent } from './events/stored-event.js';
import type { RoomsCore } from './room-core.js';
import { selectBackwardExtremities, selectIdsWithChildren } from './store/edges-table.js';
import { selectEventsNearTimestamp } from './store/events-table.js';

/** Candidates read per query, and how many queries before giving up on invisible ones. */
const PAGE = 50;
const MAX_PAGES = 20;

export type Direction = 'f' | 'b';

/** `ts` and `dir` of a query, checked. */
export function parseTimestampQuery(q: { ts?: unknown; dir?: unknown }): { ts: number; dir: Direction } {
  const ts = typeof q.ts === 'string' && /^-?\d{1,16}$/.test(q.ts) ? Number(q.ts) : typeof q.ts === 'number' && Number.isSafeInteger(q.ts) ? q.ts : NaN;
  if (Number.isNaN(ts)) throw invalidParam('ts must be a timestamp in milliseconds');
  if (q.dir !== 'f' && q.dir !== 'b') throw invalidParam("dir must be 'f' or 'b'");
  return { ts, dir: q.dir };
}

/**
 * The timeline event nearest `ts` in direction `dir` that `keep` lets through (it is given
 * candidates nearest first and returns those that may be shown, in the same order); `seenAny`
 * tells whether `keep` let any candidate through.
 */
export async function nearestEvent(
  core: RoomsCore,
  roomId: string,
  ts: number,
  dir: Direction,
  keep: (candidates: StoredEvent[]) => Promise<StoredEvent[]>,
): Promise<{ found: StoredEvent | undefined; seenAny: boolean }> {
  let seenAny = false;
  for (let page = 0; page < MAX_PAGES; page++) {
    const rows = await selectEventsNearTimestamp(core.ctx.db, { roomId, ts, dir, skip: page * PAGE, limit: PAGE });
    if (rows.length === 0) break;
    const kept = await keep(rows.map((r) => core.events.fromRow(r)));
    if (kept.length > 0) return { found: kept[0], seenAny: true };
    if (rows.length < PAGE) break;
  }
  return { found: undefined, seenAny };
}

export async function eventNearTimestamp(
  core: RoomsCore,
  requester: Requester,
  roomId: string,
  q: { ts?: unknown; dir?: unknown },
): Promise<{ event_id: string; origin_server_ts: number }> {
  const { ts, dir } = parseTimestampQuery(q);
  await core.requireHead(roomId);
  const visible = async (events: StoredEvent[]) => (await core.visibility.filter(roomId, events, requester.userId)).visible;
  let { found, seenAny } = await nearestEvent(core, roomId, ts, dir, visible);

  if (core.remote && (await mayBeCloserElsewhere(core, roomId, found, dir))) {
    const than = found ? found.pdu.origin_server_ts : null;
    const fetched = await core.remote.eventNearTimestamp(roomId, ts, dir, than);
    const ev = fetched !== null ? await core.events.get(fetched) : undefined;
    if (ev && (await visible([ev])).length > 0) {
      found = ev;
      seenAny = true;
    }
  }
  if (found) return { event_id: found.eventId, origin_server_ts: found.pdu.origin_server_ts };
  if (!seenAny && !(await mayEverSee(core, roomId, requester.userId))) {
    throw forbidden('You are not allowed to view this room');
  }
  throw notFound('No event was found in that direction');
}

/** Whether this server's history of the room has a gap where a closer event could be (see the module comment). */
async function mayBeCloserElsewhere(core: RoomsCore, roomId: string, found: StoredEvent | undefined, dir: Direction): Promise<boolean> {
  if ((await selectBackwardExtremities(core.ctx.db, roomId)).length === 0) return false;
  if (!found) return true;
  if (dir === 'f') {
    const prevs = await core.events.getMany(prevEventIds(found.pdu));
    return prevEventIds(found.pdu).some((id) => prevs.get(id)?.stateGroup == null);
  }
  const head = await core.requireHead(roomId);
  if (head.extremities.some((x) => x.eventId === found.eventId)) return false;
  return (await selectIdsWithChildren(core.ctx.db, [found.eventId])).size === 0;
}

/** Whether the user was ever in the room, or anyone may read it. */
async function mayEverSee(core: RoomsCore, roomId: string, userId: string): Promise<boolean> {
  if ((await core.visibility.currentVisibility(roomId)) === 'world_readable') return true;
  return (await core.visibility.membershipHistory(roomId, userId)).length > 0;
}
