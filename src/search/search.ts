import type { ClientEvent, JsonObject } from '../core/types.js';
import type { Db, Dialect } from '../db/schema.js';
import { badJson, invalidParam } from '../http/errors.js';
import type { Viewer } from '../rooms/events/client-format.js';
import { isServable, type StoredEvent } from '../rooms/events/stored-event.js';
import { roomEventFilterOf, type RoomEventFilter } from '../rooms/event-filter.js';
import { eventsAround } from '../rooms/pagination.js';
import type { RoomsCore } from '../rooms/room-core.js';
import type { RoomMembership } from '../rooms/service.js';
import { SEARCH_KEYS } from './index-rows.js';
import { globMatches, searchWords } from './query-terms.js';
import { countMatches, selectMatches, type SearchHit } from './search-table.js';

/** search.yaml "Room Events Criteria". */
export interface RoomEventsCriteria {
  search_term: string;
  keys?: string[];
  filter?: unknown;
  order_by?: 'rank' | 'recent';
  event_context?: { before_limit?: number; after_limit?: number; include_profile?: boolean };
  include_state?: boolean;
  groupings?: { group_by?: { key?: string }[] };
}

export interface SearchDeps {
  db: Db;
  dialect: Dialect;
  core: RoomsCore;
  memberships(userId: string): Promise<RoomMembership[]>;
  currentState(roomId: string): Promise<ClientEvent[]>;
}

const DEFAULT_LIMIT = 10;
const MAX_LIMIT = 100;
const DEFAULT_CONTEXT = 5;
const MAX_CONTEXT = 50;
/** Rounds of matches read when the viewer may see too few of a round (bounds one request's work). */
const MAX_ROUNDS = 5;
/** Memberships whose rooms' history the user has been in (visibility decides event by event). */
const SEARCHED_MEMBERSHIPS = new Set(['join', 'leave', 'ban']);

/** A place in the result list: an offset into the ranked matches, or the stream position the recent ones continue below. */
type Cursor = { order: 'rank'; offset: number } | { order: 'recent'; beforePos: number };

function parseCursor(token: string | undefined, order: 'rank' | 'recent'): Cursor {
  if (token === undefined || token === '') return order === 'rank' ? { order, offset: 0 } : { order, beforePos: Number.MAX_SAFE_INTEGER };
  const m = /^([rs])(-?\d{1,16})$/.exec(token);
  if (!m || (m[1] === 'r') !== (order === 'rank')) throw invalidParam('Unknown next_batch token');
  return order === 'rank' ? { order, offset: Math.max(0, Number(m[2])) } : { order, beforePos: Number(m[2]) };
}

function cursorToken(c: Cursor): string {
  return c.order === 'rank' ? `r${c.offset}` : `s${c.beforePos}`;
}

function matchesFilter(ev: StoredEvent, f: RoomEventFilter): boolean {
  const { type, sender } = ev.pdu;
  if (f.types && !f.types.some((p) => globMatches(p, type))) return false;
  if (f.not_types?.some((p) => globMatches(p, type))) return false;
  if (f.senders && !f.senders.includes(sender)) return false;
  if (f.not_senders?.includes(sender)) return false;
  if (f.contains_url !== undefined && (typeof ev.pdu.content?.url === 'string') !== f.contains_url) return false;
  return true;
}

/**
 * POST /search, category `room_events` (search.yaml, modules/search.md):
 * matches in the rooms the user has been in, of the events their history
 * visibility lets them see (so nothing sent after they left), in rank or
 * recent order, with context, profiles, current state and groups on request,
 * and a `next_batch` while more matches remain.
 */
export async function searchRoomEvents(deps: SearchDeps, viewer: Viewer, c: RoomEventsCriteria, nextBatch: string | undefined): Promise<JsonObject> {
  const order = c.order_by ?? 'rank';
  const keys = c.keys ?? [...SEARCH_KEYS];
  for (const k of keys) if (!(SEARCH_KEYS as readonly string[]).includes(k)) throw badJson(`Unknown search key ${k}`);
  const filter = c.filter === undefined ? {} : roomEventFilterOf(c.filter);
  const limit = Math.min(filter.limit ?? DEFAULT_LIMIT, MAX_LIMIT);
  const groupBy = (c.groupings?.group_by ?? []).map((g) => g.key);
  for (const g of groupBy) if (g !== 'room_id' && g !== 'sender') throw badJson(`Cannot group by ${String(g)}`);
  let cursor = parseCursor(nextBatch, order);
  const words = searchWords(c.search_term);

  const memberships = await deps.memberships(viewer.userId);
  const wanted = filter.rooms ? new Set(filter.rooms) : undefined;
  const unwanted = new Set(filter.not_rooms ?? []);
  const searched = memberships.filter((m) => SEARCHED_MEMBERSHIPS.has(m.membership) && (!wanted || wanted.has(m.roomId)) && !unwanted.has(m.roomId));
  const roomIds = searched.filter((m) => m.membership === 'join').map((m) => m.roomId);
  // Nothing sent after a user left is theirs to see: bounded in SQL, so neither results nor `count` include it.
  const leftRooms = searched.filter((m) => m.membership !== 'join').map((m) => ({ roomId: m.roomId, upTo: m.streamPos }));
  const base = { words, roomIds, leftRooms, keys };

  const found: { hit: SearchHit; ev: StoredEvent }[] = [];
  let more = false;
  for (let round = 0; round < MAX_ROUNDS && found.length < limit; round++) {
    const batch = Math.max(20, (limit - found.length) * 2);
    const hits = await selectMatches(deps.db, deps.dialect, {
      ...base,
      order,
      limit: batch,
      ...(cursor.order === 'rank' ? { offset: cursor.offset } : { beforePos: cursor.beforePos }),
    });
    const visible = await visibleHits(deps.core, viewer, hits, filter);
    let consumed = 0;
    for (const hit of hits) {
      consumed++;
      const ev = visible.get(hit.event_id);
      if (ev) found.push({ hit, ev });
      if (found.length === limit) break;
    }
    const last = hits[consumed - 1];
    if (last) cursor = cursor.order === 'rank' ? { order: 'rank', offset: cursor.offset + consumed } : { order: 'recent', beforePos: last.stream_pos };
    more = consumed < hits.length || hits.length === batch;
    if (!more) break;
  }

  const events = await deps.core.format(
    found.map((f) => f.ev),
    viewer,
  );
  const byId = new Map(events.map((e) => [e.event_id, e]));
  const results: JsonObject[] = [];
  for (const f of found) {
    const result = byId.get(f.ev.eventId);
    if (!result) continue;
    const entry: JsonObject = { rank: f.hit.rank, result: result as unknown as JsonObject };
    if (c.event_context) entry.context = await contextOf(deps.core, viewer, f.ev, c.event_context);
    results.push(entry);
  }

  const out: JsonObject = {
    count: await countMatches(deps.db, deps.dialect, base),
    highlights: words,
    results,
  };
  if (more) out.next_batch = cursorToken(cursor);
  if (groupBy.length > 0) out.groups = groupsOf(found.map((f) => f.ev), groupBy as ('room_id' | 'sender')[]);
  if (c.include_state === true) {
    const joined = new Set(memberships.filter((m) => m.membership === 'join').map((m) => m.roomId));
    const state: JsonObject = {};
    for (const roomId of new Set(found.map((f) => f.ev.roomId))) {
      if (joined.has(roomId)) state[roomId] = (await deps.currentState(roomId)) as unknown as JsonObject;
    }
    out.state = state;
  }
  return out;
}

/** The hits the viewer may see (servable, in the room they claim, allowed by history visibility and the filter), by event id. */
async function visibleHits(core: RoomsCore, viewer: Viewer, hits: SearchHit[], filter: RoomEventFilter): Promise<Map<string, StoredEvent>> {
  const loaded = await core.events.getMany(hits.map((h) => h.event_id));
  const byRoom = new Map<string, StoredEvent[]>();
  for (const h of hits) {
    const ev = loaded.get(h.event_id);
    if (!ev || ev.roomId !== h.room_id || !isServable(ev) || ev.redactedBy !== null || !matchesFilter(ev, filter)) continue;
    let l = byRoom.get(ev.roomId);
    if (!l) byRoom.set(ev.roomId, (l = []));
    l.push(ev);
  }
  const out = new Map<string, StoredEvent>();
  for (const [roomId, evs] of byRoom) {
    const vis = await core.visibility.filter(roomId, evs, viewer.userId);
    for (const ev of vis.visible) out.set(ev.eventId, ev);
  }
  return out;
}

function contextLimit(v: number | undefined): number {
  if (v === undefined) return DEFAULT_CONTEXT;
  if (!Number.isInteger(v) || v < 0) throw invalidParam('event_context limits must be non-negative integers');
  return Math.min(v, MAX_CONTEXT);
}

/** `context` of one result: the events around it and, on request, its senders' profiles as they were at the event. */
async function contextOf(core: RoomsCore, viewer: Viewer, ev: StoredEvent, want: NonNullable<RoomEventsCriteria['event_context']>): Promise<JsonObject> {
  const around = await eventsAround(core, viewer, ev, contextLimit(want.before_limit), contextLimit(want.after_limit));
  const out: JsonObject = {
    start: around.start,
    end: around.end,
    events_before: around.eventsBefore as unknown as JsonObject,
    events_after: around.eventsAfter as unknown as JsonObject,
  };
  if (want.include_profile === true) {
    const senders = new Set([ev.pdu.sender, ...around.eventsBefore.map((e) => e.sender), ...around.eventsAfter.map((e) => e.sender)]);
    out.profile_info = await profilesAt(core, ev, senders);
  }
  return out;
}

async function profilesAt(core: RoomsCore, ev: StoredEvent, userIds: Set<string>): Promise<JsonObject> {
  const out: JsonObject = {};
  if (ev.stateGroup === null) return out;
  const state = await core.groups.load(ev.stateGroup);
  const ids = [...userIds].map((u) => state.get(`m.room.member\u0000${u}`)).filter((id): id is string => id !== undefined);
  const members = await core.events.getMany(ids);
  for (const m of members.values()) {
    if (typeof m.pdu.state_key !== 'string') continue;
    const p: JsonObject = {};
    if (typeof m.pdu.content.displayname === 'string') p.displayname = m.pdu.content.displayname;
    if (typeof m.pdu.content.avatar_url === 'string') p.avatar_url = m.pdu.content.avatar_url;
    out[m.pdu.state_key] = p;
  }
  return out;
}

/** `groups`: for each grouping key, the results of each value, in the order the value first appears. */
function groupsOf(events: StoredEvent[], keys: ('room_id' | 'sender')[]): JsonObject {
  const out: JsonObject = {};
  for (const key of keys) {
    const groups = new Map<string, string[]>();
    for (const ev of events) {
      const value = key === 'room_id' ? ev.roomId : ev.pdu.sender;
      let l = groups.get(value);
      if (!l) groups.set(value, (l = []));
      l.push(ev.eventId);
    }
    const byValue: JsonObject = {};
    let order = 1;
    for (const [value, ids] of groups) byValue[value] = { order: order++, results: ids };
    out[key] = byValue;
  }
  return out;
}
