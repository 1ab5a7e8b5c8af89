import type { ClientEvent } from '../core/types.js';
import { invalidParam } from '../http/errors.js';

/** RoomEventFilter (definitions/room_event_filter.yaml), the parts the room endpoints apply. */
export interface RoomEventFilter {
  limit?: number;
  types?: string[];
  not_types?: string[];
  senders?: string[];
  not_senders?: string[];
  rooms?: string[];
  not_rooms?: string[];
  contains_url?: boolean;
  lazy_load_members?: boolean;
  include_redundant_members?: boolean;
}

function stringList(v: unknown, name: string): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw invalidParam(`filter.${name} must be a list of strings`);
  return v as string[];
}

/** The `filter` query parameter: a JSON-encoded RoomEventFilter. */
export function parseRoomEventFilter(param: unknown): RoomEventFilter {
  if (param === undefined || param === null || param === '') return {};
  if (typeof param !== 'string') throw invalidParam('filter must be a JSON object');
  let raw: unknown;
  try {
    raw = JSON.parse(param);
  } catch {
    throw invalidParam('filter is not valid JSON');
  }
  return roomEventFilterOf(raw);
}

/** A RoomEventFilter given as a JSON object (the `filter` of a request body). */
export function roomEventFilterOf(raw: unknown): RoomEventFilter {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalidParam('filter must be a JSON object');
  const f = raw as Record<string, unknown>;
  const out: RoomEventFilter = {
    types: stringList(f.types, 'types'),
    not_types: stringList(f.not_types, 'not_types'),
    senders: stringList(f.senders, 'senders'),
    not_senders: stringList(f.not_senders, 'not_senders'),
    rooms: stringList(f.rooms, 'rooms'),
    not_rooms: stringList(f.not_rooms, 'not_rooms'),
  };
  if (typeof f.limit === 'number' && Number.isInteger(f.limit) && f.limit > 0) out.limit = f.limit;
  if (typeof f.contains_url === 'boolean') out.contains_url = f.contains_url;
  if (f.lazy_load_members === true) out.lazy_load_members = true;
  if (f.include_redundant_members === true) out.include_redundant_members = true;
  return out;
}

/** The checks not done in SQL. */
export function matchesInMemory(ev: ClientEvent, f: RoomEventFilter): boolean {
  if (f.contains_url !== undefined) {
    const has = typeof ev.content?.url === 'string';
    if (has !== f.contains_url) return false;
  }
  return true;
}
