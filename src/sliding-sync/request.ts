import { invalidParam } from '../http/errors.js';
import type { PresenceState } from '../sync/presence.js';

/**
 * The request of simplified sliding sync (MSC4186), in the two shapes
 * clients send: the unstable one (`pos`/`timeout` in the query, `ranges`,
 * `required_state` as `[type, state_key]` pairs with `*`, `$ME` and
 * `$LAZY`, `is_invite`) and the later one (everything in the body, `range`,
 * `required_state` as `{include, exclude, lazy_members}`, `is_invited`).
 * Both become one normalised form here.
 */

/** A `{type, state_key}` matcher; null matches anything. `$ME` stands for the requesting user. */
export interface StateMatcher {
  type: string | null;
  stateKey: string | null;
}

export interface RequiredState {
  include: StateMatcher[];
  exclude: StateMatcher[];
  lazyMembers: boolean;
}

export interface RoomConfig {
  timelineLimit: number;
  requiredState: RequiredState;
}

export interface ListFilters {
  isDm?: boolean;
  isEncrypted?: boolean;
  isInvite?: boolean;
  spaces?: string[];
  roomTypes?: (string | null)[];
  notRoomTypes?: (string | null)[];
  tags?: string[];
  notTags?: string[];
}

export interface ListConfig extends RoomConfig {
  /** Inclusive index ranges; null: the whole list. */
  ranges: Array<[number, number]> | null;
  filters: ListFilters;
}

export interface ScopedExtension {
  enabled: boolean;
  /** List names whose rooms the extension covers; null: every list ("*"). */
  lists: string[] | null;
  /** Rooms the extension covers besides the lists; null: every subscribed room ("*"). */
  rooms: string[] | null;
}

export interface Extensions {
  toDevice: { enabled: boolean; since: string | null; limit: number };
  e2ee: { enabled: boolean };
  accountData: ScopedExtension;
  receipts: ScopedExtension;
  typing: ScopedExtension;
  /** MSC4308, under its unstable name `io.element.msc4308.thread_subscriptions`. */
  threadSubscriptions: { enabled: boolean; limit: number };
  /** MSC4360: `threads`, or `io.element.msc4360.threads` while unstable; answered under each name asked for. */
  threads: { enabled: boolean; names: string[]; includeRoots: boolean; limit: number };
}

export interface SlidingRequest {
  connId: string;
  pos: string | null;
  timeoutMs: number;
  setPresence: PresenceState;
  lists: Map<string, ListConfig>;
  subscriptions: Map<string, RoomConfig>;
  extensions: Extensions;
}

/** Largest timeline asked of one room in one response. */
export const MAX_TIMELINE_LIMIT = 100;
const MAX_LISTS = 100;
const MAX_SUBSCRIPTIONS = 500;
const MAX_TO_DEVICE = 1000;
const MAX_THREAD_SUBSCRIPTIONS = 100;
export const THREAD_SUBSCRIPTIONS_EXTENSION = 'io.element.msc4308.thread_subscriptions';
/** MSC4360's extension names: the stable one and the unstable one clients send today. */
export const THREADS_EXTENSIONS = ['threads', 'io.element.msc4360.threads'];
/** MSC4360: "Defaults to 100. Servers may impose a smaller limit". */
export const MAX_THREAD_UPDATES = 100;
const MAX_TIMEOUT_MS = 5 * 60_000;
const OPAQUE_ID = /^[0-9A-Za-z._~-]{1,255}$/;

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

function optBool(o: Obj, key: string, where: string): boolean | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw invalidParam(`${where}.${key} must be a boolean`);
  return v;
}

function optStrings(o: Obj, key: string, where: string, allowNull = false): (string | null)[] | undefined {
  const v = o[key];
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string' || (allowNull && x === null))) {
    throw invalidParam(`${where}.${key} must be a list of strings`);
  }
  return v as (string | null)[];
}

function timelineLimit(o: Obj, where: string): number {
  const v = o.timeline_limit ?? 0;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw invalidParam(`${where}.timeline_limit must be a non-negative integer`);
  return Math.min(v, MAX_TIMELINE_LIMIT);
}

function matcher(type: unknown, stateKey: unknown, where: string): StateMatcher {
  if ((type !== undefined && typeof type !== 'string') || (stateKey !== undefined && typeof stateKey !== 'string')) {
    throw invalidParam(`${where}: type and state_key must be strings`);
  }
  return { type: type === undefined || type === '*' ? null : type, stateKey: stateKey === undefined || stateKey === '*' ? null : stateKey };
}

function requiredState(v: unknown, where: string): RequiredState {
  const out: RequiredState = { include: [], exclude: [], lazyMembers: false };
  if (v === undefined || v === null) return out;
  if (Array.isArray(v)) {
    // Unstable form: [type, state_key] pairs; ["m.room.member", "$LAZY"] asks for lazy members.
    for (const pair of v) {
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
        throw invalidParam(`${where}.required_state entries must be [type, state_key] pairs`);
      }
      if (pair[0] === 'm.room.member' && pair[1] === '$LAZY') out.lazyMembers = true;
      else out.include.push(matcher(pair[0], pair[1], `${where}.required_state`));
    }
    return out;
  }
  if (!isObj(v)) throw invalidParam(`${where}.required_state must be an object or a list of pairs`);
  for (const key of ['include', 'exclude'] as const) {
    const list = v[key];
    if (list === undefined || list === null) continue;
    if (!Array.isArray(list) || !list.every(isObj)) throw invalidParam(`${where}.required_state.${key} must be a list of objects`);
    for (const m of list as Obj[]) out[key].push(matcher(m.type, m.state_key, `${where}.required_state.${key}`));
  }
  out.lazyMembers = optBool(v, 'lazy_members', `${where}.required_state`) ?? false;
  return out;
}

function range(v: unknown, where: string): [number, number] {
  if (!Array.isArray(v) || v.length !== 2 || !v.every((x) => Number.isInteger(x) && (x as number) >= 0) || v[0] > v[1]) {
    throw invalidParam(`${where} must be [start, end] with 0 <= start <= end`);
  }
  return [v[0] as number, v[1] as number];
}

function filters(v: unknown, where: string): ListFilters {
  if (v === undefined || v === null) return {};
  if (!isObj(v)) throw invalidParam(`${where}.filters must be an object`);
  const w = `${where}.filters`;
  return {
    isDm: optBool(v, 'is_dm', w),
    isEncrypted: optBool(v, 'is_encrypted', w),
    isInvite: optBool(v, 'is_invited', w) ?? optBool(v, 'is_invite', w),
    spaces: optStrings(v, 'spaces', w) as string[] | undefined,
    roomTypes: optStrings(v, 'room_types', w, true),
    notRoomTypes: optStrings(v, 'not_room_types', w, true),
    tags: optStrings(v, 'tags', w) as string[] | undefined,
    notTags: optStrings(v, 'not_tags', w) as string[] | undefined,
  };
}

function list(name: string, v: unknown): ListConfig {
  const where = `lists.${name}`;
  if (!OPAQUE_ID.test(name)) throw invalidParam(`List name ${name.slice(0, 80)} is not an opaque identifier`);
  if (!isObj(v)) throw invalidParam(`${where} must be an object`);
  let ranges: Array<[number, number]> | null = null;
  if (v.ranges !== undefined && v.ranges !== null) {
    if (!Array.isArray(v.ranges)) throw invalidParam(`${where}.ranges must be a list of ranges`);
    ranges = v.ranges.map((r, i) => range(r, `${where}.ranges[${i}]`));
  } else if (v.range !== undefined && v.range !== null) {
    ranges = [range(v.range, `${where}.range`)];
  }
  return { timelineLimit: timelineLimit(v, where), requiredState: requiredState(v.required_state, where), ranges, filters: filters(v.filters, where) };
}

function scoped(v: unknown, where: string): ScopedExtension {
  if (!isObj(v)) return { enabled: false, lists: null, rooms: null };
  const names = (key: string) => {
    const l = optStrings(v, key, where) as string[] | undefined;
    return l === undefined || l.includes('*') ? null : l;
  };
  return { enabled: optBool(v, 'enabled', where) ?? false, lists: names('lists'), rooms: names('rooms') };
}

function extensions(v: unknown): Extensions {
  const e = isObj(v) ? v : {};
  const td = isObj(e.to_device) ? e.to_device : {};
  // MSC4538: a `since` the server could not have issued (its `next_batch` is a to-device position) and a `limit` below 1 are refused.
  if (td.since !== undefined && td.since !== null && td.since !== '' && (typeof td.since !== 'string' || !/^\d{1,15}$/.test(td.since))) {
    throw invalidParam('extensions.to_device.since is not a next_batch of this server');
  }
  const limit = td.limit ?? 100;
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1) throw invalidParam('extensions.to_device.limit must be a positive integer');
  const e2ee = isObj(e.e2ee) ? e.e2ee : {};
  const ts = isObj(e[THREAD_SUBSCRIPTIONS_EXTENSION]) ? e[THREAD_SUBSCRIPTIONS_EXTENSION] : {};
  const tsWhere = `extensions.${THREAD_SUBSCRIPTIONS_EXTENSION}`;
  const tsLimit = ts.limit ?? MAX_THREAD_SUBSCRIPTIONS;
  if (typeof tsLimit !== 'number' || !Number.isInteger(tsLimit) || tsLimit < 1) throw invalidParam(`${tsWhere}.limit must be a positive integer`);
  return {
    toDevice: { enabled: optBool(td, 'enabled', 'extensions.to_device') ?? false, since: (td.since as string | undefined) || null, limit: Math.min(limit, MAX_TO_DEVICE) },
    e2ee: { enabled: optBool(e2ee, 'enabled', 'extensions.e2ee') ?? false },
    accountData: scoped(e.account_data, 'extensions.account_data'),
    receipts: scoped(e.receipts, 'extensions.receipts'),
    typing: scoped(e.typing, 'extensions.typing'),
    threadSubscriptions: { enabled: optBool(ts, 'enabled', tsWhere) ?? false, limit: Math.min(tsLimit, MAX_THREAD_SUBSCRIPTIONS) },
    threads: threads(e),
  };
}

function threads(e: Obj): Extensions['threads'] {
  const out: Extensions['threads'] = { enabled: false, names: [], includeRoots: false, limit: MAX_THREAD_UPDATES };
  for (const name of THREADS_EXTENSIONS) {
    const v = e[name];
    if (!isObj(v)) continue;
    const where = `extensions.${name}`;
    if (!(optBool(v, 'enabled', where) ?? false)) continue;
    const limit = v.limit ?? MAX_THREAD_UPDATES;
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1) throw invalidParam(`${where}.limit must be a positive integer`);
    out.enabled = true;
    out.names.push(name);
    out.includeRoots ||= optBool(v, 'include_roots', where) ?? false;
    out.limit = Math.min(out.limit, limit);
  }
  return out;
}

const PRESENCE = new Set(['online', 'offline', 'unavailable']);

/** The request from its body and query string; the body wins where both carry a field. */
export function parseRequest(body: unknown, query: Obj): SlidingRequest {
  const b = isObj(body) ? body : {};
  const pick = (key: string) => (b[key] !== undefined ? b[key] : query[key]);
  const connId = pick('conn_id') ?? '';
  if (typeof connId !== 'string' || connId.length > 255) throw invalidParam('conn_id must be a string of at most 255 characters');
  const pos = pick('pos');
  if (pos !== undefined && pos !== null && typeof pos !== 'string') throw invalidParam('pos must be a string');
  const rawTimeout = pick('timeout') ?? 0;
  const timeout = typeof rawTimeout === 'string' && /^\d+$/.test(rawTimeout) ? Number(rawTimeout) : rawTimeout;
  if (typeof timeout !== 'number' || !Number.isInteger(timeout) || timeout < 0) throw invalidParam('timeout must be a non-negative integer');
  const setPresence = pick('set_presence') ?? 'online';
  if (typeof setPresence !== 'string' || !PRESENCE.has(setPresence)) throw invalidParam('set_presence must be online, offline or unavailable');

  const lists = new Map<string, ListConfig>();
  if (b.lists !== undefined && b.lists !== null) {
    if (!isObj(b.lists)) throw invalidParam('lists must be an object');
    const entries = Object.entries(b.lists);
    if (entries.length > MAX_LISTS) throw invalidParam(`At most ${MAX_LISTS} lists`);
    for (const [name, v] of entries) lists.set(name, list(name, v));
  }
  const subscriptions = new Map<string, RoomConfig>();
  if (b.room_subscriptions !== undefined && b.room_subscriptions !== null) {
    if (!isObj(b.room_subscriptions)) throw invalidParam('room_subscriptions must be an object');
    const entries = Object.entries(b.room_subscriptions);
    if (entries.length > MAX_SUBSCRIPTIONS) throw invalidParam(`At most ${MAX_SUBSCRIPTIONS} room subscriptions`);
    for (const [roomId, v] of entries) {
      if (!isObj(v)) throw invalidParam(`room_subscriptions.${roomId} must be an object`);
      const where = `room_subscriptions.${roomId}`;
      subscriptions.set(roomId, { timelineLimit: timelineLimit(v, where), requiredState: requiredState(v.required_state, where) });
    }
  }
  return {
    connId,
    pos: typeof pos === 'string' && pos !== '' ? pos : null,
    timeoutMs: Math.min(timeout, MAX_TIMEOUT_MS),
    setPresence: setPresence as PresenceState,
    lists,
    subscriptions,
    extensions: extensions(b.extensions),
  };
}
