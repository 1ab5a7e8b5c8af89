import type { ClientEvent } from '../core/types.js';
import { readStreamPositions } from '../db/stream-positions.js';
import { invalidParam } from '../http/errors.js';
import type { Viewer } from './events/client-format.js';
import type { StoredEvent } from './events/stored-event.js';
import { matchesInMemory, type RoomEventFilter } from './event-filter.js';
import type { RoomsCore } from './room-core.js';
import { selectEventRange, selectMaxDepthUpTo } from './store/events-table.js';
import { assertCanReadHistory, senderMembers, sqlFilter, visibleEvent } from './timeline.js';
import { parsePaginationToken, START_OF_HISTORY, topoToken, type TopoPoint } from './tokens.js';

/**
 * /messages and /context walk a room in topological order: by depth, then
 * stream position. History filled in later (backfill, a gap in the middle)
 * takes its place among the events around it, whatever its stream position.
 * Their tokens are `t<depth>_<stream>` points of that order; a sync token
 * (a stream position) is taken as the point after the deepest event the
 * stream had reached there.
 */

export interface MessagesParams {
  dir: 'b' | 'f';
  from?: string;
  to?: string;
  limit?: number;
  filter: RoomEventFilter;
}

/** Pages walked internally when every event of a page is hidden from the viewer. */
const MAX_EMPTY_PAGES = 5;
const START: TopoPoint = { depth: -1, stream: START_OF_HISTORY };

/** The topological point a pagination token stands for in the room (a sync token: after the deepest event the stream had reached). */
export async function pointOf(core: RoomsCore, roomId: string, token: string, viewer?: Viewer): Promise<TopoPoint> {
  const sliding = core.ctx.services.slidingSync;
  if (viewer && sliding.isPos(token)) {
    // MSC4186: a sliding-sync `pos` is a token here too, standing for the events position it covered.
    const pos = await sliding.eventsAt(viewer, token);
    if (pos === null) throw invalidParam('Unknown or expired sliding sync position');
    return pointOf(core, roomId, `s${pos}`);
  }
  const t = parsePaginationToken(token);
  if ('topo' in t) return t.topo;
  const depth = await selectMaxDepthUpTo(core.ctx.db, roomId, t.stream);
  return depth === null ? { depth: -1, stream: t.stream } : { depth, stream: t.stream };
}

/** The point just before an event (the cut a backwards page continues from). */
function before(p: TopoPoint): TopoPoint {
  return { depth: p.depth, stream: p.stream - 1 };
}

/** The users whose events the viewer ignores, state events excepted (spec: "Ignoring Users"). */
async function ignoredBy(core: RoomsCore, userId: string): Promise<Set<string>> {
  const list = (await core.ctx.services.sync.getAccountData(userId, null, 'm.ignored_user_list'))?.ignored_users;
  return new Set(list && typeof list === 'object' && !Array.isArray(list) ? Object.keys(list) : []);
}

/** GET /rooms/{roomId}/messages. */
export async function readMessages(core: RoomsCore, viewer: Viewer, roomId: string, p: MessagesParams): Promise<Record<string, unknown>> {
  await assertCanReadHistory(core, viewer.userId, roomId);
  const limit = Math.min(Math.max(p.limit ?? p.filter.limit ?? 10, 0), 1000);
  let from: TopoPoint;
  if (p.from !== undefined && p.from !== '') from = await pointOf(core, roomId, p.from, viewer);
  else if (p.dir === 'b') from = await pointOf(core, roomId, `s${(await readStreamPositions(core.ctx.db)).events}`);
  else from = START;
  const start = p.from !== undefined && p.from !== '' ? p.from : topoToken(from);
  const to = p.to !== undefined && p.to !== '' ? await pointOf(core, roomId, p.to, viewer) : undefined;

  const ignored = await ignoredBy(core, viewer.userId);
  const chunk: ClientEvent[] = [];
  let end: string | undefined;
  let cursor = from;
  let backfilled = false;
  for (let page = 0; page < MAX_EMPTY_PAGES; page++) {
    if (limit === 0) {
      end = start;
      break;
    }
    const rows = await selectEventRange(core.ctx.db, {
      roomId,
      ...(p.dir === 'b' ? { topoUpTo: cursor, topoAfter: to } : { topoAfter: cursor, topoUpTo: to }),
      topological: true,
      order: p.dir === 'b' ? 'desc' : 'asc',
      limit,
      ...sqlFilter(p.filter),
    });
    // Local history ran out: other servers may hold what came before (federation), once per request.
    if (rows.length < limit && p.dir === 'b' && to === undefined && !backfilled && core.remote) {
      backfilled = true;
      if (await core.remote.backfill(roomId, limit - rows.length)) {
        page--;
        continue;
      }
    }
    const stored = rows.map((r) => core.events.fromRow(r));
    const vis = await core.visibility.filter(roomId, stored, viewer.userId);
    const formatted = (await core.format(vis.visible, viewer, vis.membershipAt)).filter(
      (e) => matchesInMemory(e, p.filter) && (e.state_key !== undefined || !ignored.has(e.sender)),
    );
    chunk.push(...formatted);
    if (rows.length < limit) {
      end = undefined;
      break;
    }
    const last = rows[rows.length - 1]!;
    const lastPoint = { depth: last.depth, stream: Number(last.stream_pos) };
    cursor = p.dir === 'b' ? before(lastPoint) : lastPoint;
    end = topoToken(cursor);
    if (vis.visible.length > 0) break;
  }

  const out: Record<string, unknown> = { start, chunk };
  if (end !== undefined) out.end = end;
  if (p.filter.lazy_load_members) out.state = await senderMembers(core, roomId, chunk, viewer);
  return out;
}

/** GET /rooms/{roomId}/context/{eventId}. */
export async function readContext(
  core: RoomsCore,
  viewer: Viewer,
  roomId: string,
  eventId: string,
  limitParam: number | undefined,
  filter: RoomEventFilter,
): Promise<Record<string, unknown>> {
  await assertCanReadHistory(core, viewer.userId, roomId);
  const target = await visibleEvent(core, viewer, roomId, eventId);
  const at: TopoPoint = { depth: target.pdu.depth, stream: target.streamPos! };
  const limit = Math.min(Math.max(limitParam ?? 10, 0), 1000);
  const beforeLimit = Math.floor(limit / 2);
  const range = sqlFilter(filter);
  const beforeRows = beforeLimit > 0
    ? await selectEventRange(core.ctx.db, { roomId, topoUpTo: before(at), topological: true, order: 'desc', limit: beforeLimit, ...range })
    : [];
  const afterLimit = limit - beforeRows.length;
  const afterRows = afterLimit > 0
    ? await selectEventRange(core.ctx.db, { roomId, topoAfter: at, topological: true, order: 'asc', limit: afterLimit, ...range })
    : [];
  const beforeEvents = beforeRows.map((r) => core.events.fromRow(r));
  const afterEvents = afterRows.map((r) => core.events.fromRow(r));
  const visBefore = await core.visibility.filter(roomId, beforeEvents, viewer.userId);
  const visAfter = await core.visibility.filter(roomId, afterEvents, viewer.userId);
  const visTarget = await core.visibility.filter(roomId, [target], viewer.userId);
  const [event] = await core.format([target], viewer, visTarget.membershipAt);
  const eventsBefore = (await core.format(visBefore.visible, viewer, visBefore.membershipAt)).filter((e) => matchesInMemory(e, filter));
  const eventsAfter = (await core.format(visAfter.visible, viewer, visAfter.membershipAt)).filter((e) => matchesInMemory(e, filter));

  const first = beforeRows[beforeRows.length - 1];
  const startPoint = first ? before({ depth: first.depth, stream: Number(first.stream_pos) }) : before(at);
  const last = afterRows[afterRows.length - 1];
  const endPoint = last ? { depth: last.depth, stream: Number(last.stream_pos) } : at;

  // "The state of the room at the last event returned."
  const lastEv = afterEvents.length > 0 ? afterEvents[afterEvents.length - 1]! : target;
  let stateIds: string[] = [];
  if (lastEv.stateGroup !== null) {
    const state = await core.groups.load(lastEv.stateGroup);
    if (filter.lazy_load_members) {
      const senders = new Set([event!, ...eventsBefore, ...eventsAfter].map((e) => e.sender));
      for (const [k, id] of state) {
        const isMember = k.startsWith('m.room.member\u0000');
        if (!isMember || senders.has(k.slice('m.room.member\u0000'.length))) stateIds.push(id);
      }
    } else {
      stateIds = [...state.values()];
    }
  }
  const stateEvents = await core.events.getMany(stateIds);
  const state = await core.format([...stateEvents.values()], viewer);

  return {
    start: topoToken(startPoint),
    end: topoToken(endPoint),
    events_before: eventsBefore,
    event,
    events_after: eventsAfter,
    state,
  };
}

/**
 * The events the viewer may see just before and after `target` (search's
 * `event_context`), nearest first before it (as /context orders
 * `events_before`) and oldest first after it, with the tokens of the chunk's
 * two ends.
 */
export async function eventsAround(
  core: RoomsCore,
  viewer: Viewer,
  target: StoredEvent,
  beforeLimit: number,
  afterLimit: number,
): Promise<{ start: string; end: string; eventsBefore: ClientEvent[]; eventsAfter: ClientEvent[] }> {
  const roomId = target.roomId;
  const at: TopoPoint = { depth: target.pdu.depth, stream: target.streamPos! };
  const beforeRows = beforeLimit > 0 ? await selectEventRange(core.ctx.db, { roomId, topoUpTo: before(at), topological: true, order: 'desc', limit: beforeLimit }) : [];
  const afterRows = afterLimit > 0 ? await selectEventRange(core.ctx.db, { roomId, topoAfter: at, topological: true, order: 'asc', limit: afterLimit }) : [];
  const visBefore = await core.visibility.filter(roomId, beforeRows.map((r) => core.events.fromRow(r)), viewer.userId);
  const visAfter = await core.visibility.filter(roomId, afterRows.map((r) => core.events.fromRow(r)), viewer.userId);
  const first = beforeRows[beforeRows.length - 1];
  const last = afterRows[afterRows.length - 1];
  return {
    start: topoToken(first ? before({ depth: first.depth, stream: Number(first.stream_pos) }) : before(at)),
    end: topoToken(last ? { depth: last.depth, stream: Number(last.stream_pos) } : at),
    eventsBefore: await core.format(visBefore.visible, viewer, visBefore.membershipAt),
    eventsAfter: await core.format(visAfter.visible, viewer, visAfter.membershipAt),
  };
}
