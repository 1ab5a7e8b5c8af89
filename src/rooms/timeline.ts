import type { ClientEvent } from '../core/types.js';
import { stateKey } from '../core/types.js';
import { forbidden, invalidParam, missingParam, notFound } from '../http/errors.js';
import type { Viewer } from './events/client-format.js';
import { isServable, type EventView, type StoredEvent } from './events/stored-event.js';
import type { VisibilityResult } from './events/visibility.js';
import type { RoomEventFilter } from './event-filter.js';
import type { RoomsCore } from './room-core.js';
import type { EventShape, TimelineChunk, TimelineQuery } from './service.js';
import { selectEventRange, type RangeQuery } from './store/events-table.js';
import { selectMembership } from './store/memberships-table.js';
import { selectLatestEvents, type LatestEventRow } from './store/sync-queries.js';

export function sqlFilter(f: RoomEventFilter | TimelineQuery['filter'] | undefined): Pick<RangeQuery, 'types' | 'notTypes' | 'senders' | 'notSenders'> {
  if (!f) return {};
  return { types: f.types, notTypes: f.not_types, senders: f.senders, notSenders: f.not_senders };
}

/** /sync's timeline for one room: one query for the events. */
export async function readTimeline(core: RoomsCore, q: TimelineQuery): Promise<TimelineChunk> {
  const limit = Math.max(0, Math.floor(q.limit));
  const rows = await selectEventRange(core.ctx.db, {
    roomId: q.roomId,
    after: q.fromPos,
    upTo: q.toPos,
    order: 'desc',
    limit: limit + 1,
    ...sqlFilter(q.filter),
  });
  const limited = rows.length > limit;
  const page = rows.slice(0, limit).reverse();
  const stored = page.map((r) => core.events.fromRow(r));
  const vis = await core.visibility.filter(q.roomId, stored, q.viewer.userId);
  // Bundled aggregations only for a limited timeline: otherwise the children are in it (spec: "Aggregations of child events").
  const events = await core.format(vis.visible, q.viewer, vis.membershipAt, { bundle: limited });
  const prevBatchPos = page.length > 0 ? Number(page[0]!.stream_pos) - 1 : q.toPos;
  return { events, limited, prevBatchPos };
}

/**
 * Reads of "the newest N events of room R in (from, to]" that are under way,
 * by range and filter: the long-polls of a room that one event wakes ask
 * the same question at the same moment, and share one read. Only reads in
 * flight are shared, so an answer is never older than a read its asker
 * could have started itself. The rows are newest first; treat them as
 * read-only.
 */
const rangeReads = new WeakMap<RoomsCore, Map<string, Promise<LatestEventRow[]>>>();

function rangeKey(q: TimelineQuery, limit: number, filterKey: string): string {
  return `${q.roomId}\u0000${q.fromPos}\u0000${q.toPos}\u0000${limit}\u0000${filterKey}`;
}

/** The rows of each query's range (up to its limit plus one), from reads in flight or one statement per filter. */
async function latestRows(core: RoomsCore, queries: Iterable<TimelineQuery>, limitOf: (q: TimelineQuery) => number): Promise<Map<string, readonly LatestEventRow[]>> {
  let inflight = rangeReads.get(core);
  if (!inflight) rangeReads.set(core, (inflight = new Map()));
  const reads = new Map<string, Promise<LatestEventRow[]>>();
  const byFilter = new Map<string, { keys: string[]; qs: TimelineQuery[] }>();
  for (const q of queries) {
    const filterKey = q.filter ? JSON.stringify(q.filter) : '';
    const key = rangeKey(q, limitOf(q), filterKey);
    const shared = inflight.get(key);
    if (shared) {
      reads.set(q.roomId, shared);
      continue;
    }
    let g = byFilter.get(filterKey);
    if (!g) byFilter.set(filterKey, (g = { keys: [], qs: [] }));
    g.keys.push(key);
    g.qs.push(q);
  }
  for (const { keys, qs } of byFilter.values()) {
    const ranges = qs.map((q) => ({ roomId: q.roomId, after: q.fromPos, upTo: q.toPos, limit: limitOf(q) + 1 }));
    const statement = selectLatestEvents(core.ctx.db, ranges, sqlFilter(qs[0]!.filter)).then((found) => {
      const byRoom = new Map<string, LatestEventRow[]>();
      for (const r of found) {
        let l = byRoom.get(r.room_id);
        if (!l) byRoom.set(r.room_id, (l = []));
        l.push(r);
      }
      for (const l of byRoom.values()) l.sort((a, b) => b.stream_pos - a.stream_pos);
      return byRoom;
    });
    qs.forEach((q, i) => {
      const key = keys[i]!;
      const read = statement.then((byRoom) => byRoom.get(q.roomId) ?? []);
      inflight.set(key, read);
      const done = () => {
        if (inflight.get(key) === read) inflight.delete(key);
      };
      read.then(done, done);
      reads.set(q.roomId, read);
    });
  }
  const out = new Map<string, readonly LatestEventRow[]>();
  await Promise.all([...reads].map(async ([roomId, read]) => out.set(roomId, await read)));
  return out;
}

/**
 * /sync's timelines for many rooms (one query per room; a later query for
 * the same room wins): one statement for the events of every room sharing a
 * filter (or a share of the same read another request has under way), one
 * each for what visibility reads of all the rooms (filterRooms), one
 * formatting pass. The loops between the reads are functions of their own,
 * outside the async function: V8 optimises each as it gets hot, and this
 * function holding them all took TurboFan 60-90 ms to compile, during the
 * first initial syncs after a start (the same split in getViews, format and
 * filterRooms; figures in the README's Benchmarks section).
 */
export async function readTimelines(core: RoomsCore, queries: TimelineQuery[], shape: EventShape = {}): Promise<Map<string, TimelineChunk>> {
  const byRoom = new Map(queries.map((q) => [q.roomId, q]));
  if (byRoom.size === 0) return new Map();
  const rows = await latestRows(core, byRoom.values(), limitOf);
  const pages = pagesOf(byRoom, rows);
  // The pages' events, from the cache or one query for those it lacks.
  const events = await core.events.getViewsForRows([...pages.values()].flat());
  // The whole states the callers read next, in one query for those not cached (wholeState).
  const whole = wholeStateGroups(byRoom, pages, events);
  if (whole.length > 0) await core.groups.loadMany(whole);
  // Visibility per viewer, with one read each for the state facts, the events they name and the
  // membership histories of all of that viewer's rooms.
  const decided = new Map<string, Map<string, VisibilityResult<EventView>>>();
  await Promise.all([...pagesByViewer(byRoom, pages, events)].map(async ([userId, p]) => decided.set(userId, await core.visibility.filterRooms(p, userId))));
  // Visible events of every room, formatted together per viewer device.
  const limitedRooms = limitedOf(byRoom, rows);
  const formatted = new Map<string, ClientEvent[]>();
  const bundle = (ev: EventView) => limitedRooms.has(ev.roomId);
  for (const d of visibleByDevice(byRoom, decided)) {
    addByRoom(formatted, events, await core.format(d.events, d.viewer, d.membershipAt, { bundle, withoutRoomId: shape.withoutRoomId }));
  }
  return chunksOf(byRoom, pages, formatted, limitedRooms);
}

function limitOf(q: TimelineQuery): number {
  return Math.max(0, Math.floor(q.limit));
}

/** Each room's page: its newest rows up to the limit, oldest first. */
function pagesOf(byRoom: ReadonlyMap<string, TimelineQuery>, rows: ReadonlyMap<string, readonly LatestEventRow[]>): Map<string, LatestEventRow[]> {
  const pages = new Map<string, LatestEventRow[]>();
  for (const q of byRoom.values()) pages.set(q.roomId, (rows.get(q.roomId) ?? []).slice(0, limitOf(q)).reverse());
  return pages;
}

/** The state groups of the whole states the queries ask for (wholeState). */
function wholeStateGroups(byRoom: ReadonlyMap<string, TimelineQuery>, pages: ReadonlyMap<string, LatestEventRow[]>, events: ReadonlyMap<string, EventView>): number[] {
  const whole: number[] = [];
  for (const q of byRoom.values()) {
    if (q.wholeState === undefined) continue;
    const page = pages.get(q.roomId)!;
    const edge = q.wholeState === 'before' ? page[0] : page[page.length - 1];
    const ev = edge && events.get(edge.event_id);
    const group = q.wholeState === 'before' ? ev?.stateGroupBefore : ev?.stateGroup;
    if (group != null) whole.push(group);
  }
  return whole;
}

/** The pages' events by viewer, then by room. */
function pagesByViewer(
  byRoom: ReadonlyMap<string, TimelineQuery>,
  pages: ReadonlyMap<string, LatestEventRow[]>,
  events: ReadonlyMap<string, EventView>,
): Map<string, Map<string, EventView[]>> {
  const byViewer = new Map<string, Map<string, EventView[]>>();
  for (const q of byRoom.values()) {
    let mine = byViewer.get(q.viewer.userId);
    if (!mine) byViewer.set(q.viewer.userId, (mine = new Map()));
    const page: EventView[] = [];
    for (const r of pages.get(q.roomId)!) {
      const ev = events.get(r.event_id);
      if (ev !== undefined) page.push(ev);
    }
    mine.set(q.roomId, page);
  }
  return byViewer;
}

/** The rooms with more events in range than their limit. */
function limitedOf(byRoom: ReadonlyMap<string, TimelineQuery>, rows: ReadonlyMap<string, readonly LatestEventRow[]>): Set<string> {
  const limited = new Set<string>();
  for (const q of byRoom.values()) if ((rows.get(q.roomId)?.length ?? 0) > limitOf(q)) limited.add(q.roomId);
  return limited;
}

interface DeviceEvents {
  viewer: Viewer;
  events: EventView[];
  membershipAt: Map<string, string>;
}

/** The visible events of every room, by viewer device. */
function visibleByDevice(byRoom: ReadonlyMap<string, TimelineQuery>, decided: ReadonlyMap<string, ReadonlyMap<string, VisibilityResult<EventView>>>): Iterable<DeviceEvents> {
  const byDevice = new Map<string, DeviceEvents>();
  for (const q of byRoom.values()) {
    const vis = decided.get(q.viewer.userId)!.get(q.roomId)!;
    const dk = `${q.viewer.userId}\u0000${q.viewer.deviceId ?? ''}`;
    let d = byDevice.get(dk);
    if (!d) byDevice.set(dk, (d = { viewer: q.viewer, events: [], membershipAt: new Map() }));
    for (const ev of vis.visible) d.events.push(ev);
    for (const [k, v] of vis.membershipAt) d.membershipAt.set(k, v);
  }
  return byDevice.values();
}

/** Adds formatted events to their rooms' lists. */
function addByRoom(formatted: Map<string, ClientEvent[]>, events: ReadonlyMap<string, EventView>, list: readonly ClientEvent[]): void {
  for (const ev of list) {
    const roomId = events.get(ev.event_id)!.roomId;
    let l = formatted.get(roomId);
    if (!l) formatted.set(roomId, (l = []));
    l.push(ev);
  }
}

/** Each room's chunk: its formatted events, whether it was limited, and where the page starts. */
function chunksOf(
  byRoom: ReadonlyMap<string, TimelineQuery>,
  pages: ReadonlyMap<string, LatestEventRow[]>,
  formatted: ReadonlyMap<string, ClientEvent[]>,
  limitedRooms: ReadonlySet<string>,
): Map<string, TimelineChunk> {
  const out = new Map<string, TimelineChunk>();
  for (const q of byRoom.values()) {
    const page = pages.get(q.roomId)!;
    out.set(q.roomId, {
      events: formatted.get(q.roomId) ?? [],
      limited: limitedRooms.has(q.roomId),
      prevBatchPos: page.length > 0 ? page[0]!.stream_pos - 1 : q.toPos,
    });
  }
  return out;
}

/**
 * Whether the user may read the room's history at all: any membership in
 * it (per-event visibility decides the rest), or a world-readable room.
 * Forgotten rooms are closed.
 */
export async function assertCanReadHistory(core: RoomsCore, userId: string, roomId: string): Promise<void> {
  const head = await core.requireHead(roomId);
  const m = head.members.get(userId);
  if (m) {
    if (m.membership === 'leave' || m.membership === 'ban') {
      const row = await selectMembership(core.ctx.db, roomId, userId);
      if (row && Number(row.forgotten) === 1) throw forbidden('You have forgotten this room');
    }
    return;
  }
  const current = await core.visibility.currentVisibility(roomId);
  if (current !== 'world_readable') throw forbidden('You are not a member of this room');
}

/** Members' current m.room.member events for the senders of `events` (lazy-loading members). */
export async function senderMembers(core: RoomsCore, roomId: string, events: ClientEvent[], viewer: Viewer): Promise<ClientEvent[]> {
  const head = await core.requireHead(roomId);
  const ids = new Set<string>();
  for (const ev of events) {
    const id = head.state.get(stateKey('m.room.member', ev.sender));
    if (id) ids.add(id);
  }
  const loaded = await core.events.getMany(ids);
  return core.format([...loaded.values()], viewer);
}

/** The event if it is in the room, servable and visible to the viewer; 404 otherwise. */
export async function visibleEvent(core: RoomsCore, viewer: Viewer, roomId: string, eventId: string): Promise<StoredEvent> {
  const ev = await core.events.get(eventId);
  if (!ev || ev.roomId !== roomId || !isServable(ev) || ev.streamPos === null) throw notFound('Event not found');
  const vis = await core.visibility.filter(roomId, [ev], viewer.userId);
  if (vis.visible.length === 0) throw notFound('Event not found');
  return ev;
}

/** GET /rooms/{roomId}/event/{eventId}. */
export async function readEvent(core: RoomsCore, viewer: Viewer, roomId: string, eventId: string): Promise<ClientEvent> {
  await core.requireHead(roomId);
  const ev = await visibleEvent(core, viewer, roomId, eventId);
  const vis = await core.visibility.filter(roomId, [ev], viewer.userId);
  const [out] = await core.format([ev], viewer, vis.membershipAt);
  return out!;
}

export function parseDir(dir: unknown): 'b' | 'f' {
  if (dir === undefined || dir === '') throw missingParam('dir is required');
  if (dir !== 'b' && dir !== 'f') throw invalidParam('dir must be b or f');
  return dir;
}
