import type { JsonObject, JsonValue } from '../core/types.js';

/**
 * Sync filters (spec: "Filtering"; OpenAPI definitions sync_filter,
 * room_event_filter, event_filter): the shape, and the compiled predicates
 * /sync applies.
 */

export interface EventFilter {
  limit?: number;
  types?: string[];
  not_types?: string[];
  senders?: string[];
  not_senders?: string[];
}

export interface RoomEventFilter extends EventFilter {
  rooms?: string[];
  not_rooms?: string[];
  contains_url?: boolean;
  lazy_load_members?: boolean;
  include_redundant_members?: boolean;
  unread_thread_notifications?: boolean;
}

export interface SyncFilter {
  event_fields?: string[];
  event_format?: 'client' | 'federation';
  presence?: EventFilter;
  account_data?: EventFilter;
  room?: {
    rooms?: string[];
    not_rooms?: string[];
    include_leave?: boolean;
    ephemeral?: RoomEventFilter;
    state?: RoomEventFilter;
    timeline?: RoomEventFilter;
    account_data?: RoomEventFilter;
  };
}

const stringList = { type: 'array', items: { type: 'string' } };
const userList = { type: 'array', items: { type: 'string', pattern: '^@' } };
const roomList = { type: 'array', items: { type: 'string', pattern: '^!' } };
const eventFilterProps = {
  limit: { type: 'integer', minimum: 0 },
  types: stringList,
  not_types: stringList,
  senders: userList,
  not_senders: userList,
};
const eventFilterSchema = { type: 'object', properties: eventFilterProps };
const roomEventFilterSchema = {
  type: 'object',
  properties: {
    ...eventFilterProps,
    rooms: roomList,
    not_rooms: roomList,
    contains_url: { type: 'boolean' },
    lazy_load_members: { type: 'boolean' },
    include_redundant_members: { type: 'boolean' },
    unread_thread_notifications: { type: 'boolean' },
  },
};

/** JSON schema of a filter; unknown keys are allowed (clients send unstable ones). */
export const FILTER_SCHEMA = {
  type: 'object',
  properties: {
    event_fields: stringList,
    event_format: { type: 'string', enum: ['client', 'federation'] },
    presence: eventFilterSchema,
    account_data: eventFilterSchema,
    room: {
      type: 'object',
      properties: {
        rooms: roomList,
        not_rooms: roomList,
        include_leave: { type: 'boolean' },
        ephemeral: roomEventFilterSchema,
        state: roomEventFilterSchema,
        timeline: roomEventFilterSchema,
        account_data: roomEventFilterSchema,
      },
    },
  },
} as const;

export const DEFAULT_TIMELINE_LIMIT = 10;
export const MAX_TIMELINE_LIMIT = 1000;

/** `*` matches any sequence of characters; everything else is literal. */
function globMatcher(patterns: string[] | undefined): ((s: string) => boolean) | undefined {
  if (!patterns) return undefined;
  const exact = new Set<string>();
  const globs: RegExp[] = [];
  for (const p of patterns) {
    if (p.includes('*')) {
      globs.push(new RegExp('^' + p.split('*').map(escapeRegExp).join('.*') + '$', 's'));
    } else exact.add(p);
  }
  return (s) => exact.has(s) || globs.some((g) => g.test(s));
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

export interface CompiledEventFilter {
  limit: number | undefined;
  /** The type/sender lists, as the rooms timeline query takes them. */
  lists: { types?: string[]; not_types?: string[]; senders?: string[]; not_senders?: string[] };
  /** True when the filter restricts events by type, sender or url. */
  restrictsEvents: boolean;
  matches(ev: { type: string; sender?: string; content?: unknown }): boolean;
  allowsRoom(roomId: string): boolean;
}

function compileEventFilter(f: RoomEventFilter | undefined): CompiledEventFilter {
  const types = globMatcher(f?.types);
  const notTypes = globMatcher(f?.not_types);
  const senders = f?.senders ? new Set(f.senders) : undefined;
  const notSenders = f?.not_senders ? new Set(f.not_senders) : undefined;
  const rooms = f?.rooms ? new Set(f.rooms) : undefined;
  const notRooms = f?.not_rooms ? new Set(f.not_rooms) : undefined;
  const containsUrl = f?.contains_url;
  const lists: CompiledEventFilter['lists'] = {};
  if (f?.types) lists.types = f.types;
  if (f?.not_types) lists.not_types = f.not_types;
  if (f?.senders) lists.senders = f.senders;
  if (f?.not_senders) lists.not_senders = f.not_senders;
  return {
    limit: f?.limit,
    lists,
    restrictsEvents: Object.keys(lists).length > 0 || containsUrl !== undefined,
    matches(ev) {
      if (notTypes?.(ev.type)) return false;
      if (types && !types(ev.type)) return false;
      if (ev.sender !== undefined) {
        if (notSenders?.has(ev.sender)) return false;
        if (senders && !senders.has(ev.sender)) return false;
      }
      if (containsUrl !== undefined) {
        const c = ev.content as Record<string, unknown> | undefined;
        const has = typeof c?.url === 'string';
        if (has !== containsUrl) return false;
      }
      return true;
    },
    allowsRoom(roomId) {
      if (notRooms?.has(roomId)) return false;
      return !rooms || rooms.has(roomId);
    },
  };
}

export interface CompiledFilter {
  raw: SyncFilter;
  /** The room-level rooms/not_rooms lists, applied before every other room filter. */
  allowsRoom(roomId: string): boolean;
  includeLeave: boolean;
  timeline: CompiledEventFilter;
  timelineLimit: number;
  state: CompiledEventFilter;
  lazyLoadMembers: boolean;
  includeRedundantMembers: boolean;
  ephemeral: CompiledEventFilter;
  roomAccountData: CompiledEventFilter;
  accountData: CompiledEventFilter;
  presence: CompiledEventFilter;
  eventFields: string[][] | undefined;
}

export function compileFilter(raw: SyncFilter): CompiledFilter {
  const room = raw.room ?? {};
  const rooms = room.rooms ? new Set(room.rooms) : undefined;
  const notRooms = room.not_rooms ? new Set(room.not_rooms) : undefined;
  const timeline = compileEventFilter(room.timeline);
  const limit = room.timeline?.limit;
  return {
    raw,
    allowsRoom(roomId) {
      if (notRooms?.has(roomId)) return false;
      return !rooms || rooms.has(roomId);
    },
    includeLeave: room.include_leave === true,
    timeline,
    timelineLimit: limit === undefined ? DEFAULT_TIMELINE_LIMIT : Math.min(limit, MAX_TIMELINE_LIMIT),
    state: compileEventFilter(room.state),
    lazyLoadMembers: room.state?.lazy_load_members === true,
    includeRedundantMembers: room.state?.include_redundant_members === true,
    ephemeral: compileEventFilter(room.ephemeral),
    roomAccountData: compileEventFilter(room.account_data),
    accountData: compileEventFilter(raw.account_data),
    presence: compileEventFilter(raw.presence),
    eventFields: raw.event_fields?.map(splitFieldPath),
  };
}

/** `content.m\.relates_to` → ['content', 'm.relates_to'] (appendix: dot-separated property paths). */
export function splitFieldPath(path: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < path.length; i++) {
    const c = path[i];
    if (c === '\\' && (path[i + 1] === '.' || path[i + 1] === '\\')) {
      cur += path[i + 1];
      i++;
    } else if (c === '.') {
      parts.push(cur);
      cur = '';
    } else cur += c;
  }
  parts.push(cur);
  return parts;
}

/** Keeps only the listed fields of an event (`event_fields`). */
export function projectFields<T extends object>(event: T, paths: string[][] | undefined): T {
  if (!paths) return event;
  const out: JsonObject = {};
  for (const path of paths) {
    let src: unknown = event;
    let dst: JsonObject = out;
    for (let i = 0; i < path.length; i++) {
      if (src === null || typeof src !== 'object' || Array.isArray(src)) break;
      const key = path[i];
      if (!Object.prototype.hasOwnProperty.call(src, key)) break;
      const v = (src as Record<string, unknown>)[key];
      if (i === path.length - 1) {
        dst[key] = v as JsonValue;
      } else {
        const next = dst[key];
        if (next === undefined || next === null || typeof next !== 'object' || Array.isArray(next)) dst[key] = {};
        dst = dst[key] as JsonObject;
        src = v;
      }
    }
  }
  return out as unknown as T;
}
