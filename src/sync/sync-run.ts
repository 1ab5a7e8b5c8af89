/**
 * The shapes one /sync computation passes between its parts (which rooms to
 * render and how, the inputs shared by all rooms), and the small pure
 * helpers every section uses. Nothing here reads the database.
 */
import type { ClientEvent, JsonObject, JsonValue } from '../core/types.js';
import type { RoomMembership } from '../rooms/service.js';
import type { AccountDataChange } from './account-data.js';
import { projectFields, type CompiledFilter } from './filter-rules.js';
import type { SyncToken } from './token.js';

export interface SyncParams {
  userId: string;
  deviceId: string;
  since: SyncToken | null;
  filter: CompiledFilter;
  fullState: boolean;
  useStateAfter: boolean;
}

/** Per room; `threads` only when the filter asks for per-thread counts (`unread_thread_notifications`). */
export type UnreadCounts = Map<string, { notification_count: number; highlight_count: number; threads?: Record<string, { notification_count: number; highlight_count: number }> }>;

/** How a joined room is rendered: `full` state (initial sync, new join, full_state) or a `delta` since the token. */
export type JoinMode = 'full' | 'delta';

export interface JoinPlan {
  roomId: string;
  mode: JoinMode;
  /** Exclusive lower bound of the timeline. */
  timelineFrom: number;
  /** The user joined since the token (lazy loading must include their own member event). */
  newlyJoined: boolean;
  /**
   * The room's partial state was filled in since the token: it is rendered whole, its timeline
   * marked limited so that the client drops what it held (events may have been withdrawn), and
   * its members count as new for device_lists, as for a room joined since (Synapse does the same).
   */
  stateFilled?: boolean;
}

export interface LeavePlan {
  roomId: string;
  m: RoomMembership;
  /** Exclusive lower bound of the timeline; null: only the leave event (the user never saw the room). */
  timelineFrom: number | null;
}

/** Shared inputs of one computation. */
export interface Run {
  p: SyncParams;
  heads: SyncToken;
  since: SyncToken | null;
  ignored: Set<string>;
  typing: Map<string, string[]>;
  receipts: Map<string, JsonObject>;
  roomAccountData: Map<string, AccountDataChange[]>;
  roomsWithEvents: Set<string>;
  /** Rooms whose member changes matter for device_lists (filled while rooms are built). */
  memberChanges: Map<string, ClientEvent[]>;
}

export function latestPerRoom(list: RoomMembership[]): Map<string, RoomMembership> {
  const map = new Map<string, RoomMembership>();
  for (const m of [...list].sort((a, b) => a.streamPos - b.streamPos)) map.set(m.roomId, m);
  return map;
}

/** State after applying the state events of a timeline to the state before it (`state` itself when it has none). */
export function applyState(state: ClientEvent[], timeline: ClientEvent[]): ClientEvent[] {
  if (!timeline.some((e) => e.state_key !== undefined)) return state;
  const map = new Map<string, ClientEvent>();
  for (const e of state) map.set(`${e.type}\u0000${e.state_key}`, e);
  for (const e of timeline) if (e.state_key !== undefined) map.set(`${e.type}\u0000${e.state_key}`, e);
  return [...map.values()];
}

export function memberKeys(events: ClientEvent[]): string[] {
  return events.filter((e) => e.type === 'm.room.member' && e.state_key !== undefined).map((e) => e.state_key!);
}

/** How /sync reads room events: without `room_id` (ClientEventWithoutRoomID), so that withoutRoomId has nothing to copy. */
export const SYNC_SHAPE = { withoutRoomId: true } as const;

export function withoutRoomId(e: ClientEvent): ClientEvent {
  if (e.room_id === undefined) return e;
  const { room_id: _drop, ...rest } = e;
  return rest;
}

export function asJson(events: object[]): JsonValue[] {
  return events as unknown as JsonValue[];
}

export function limitList<T>(list: T[], limit: number | undefined): T[] {
  return limit === undefined ? list : list.slice(0, limit);
}

/** The filter's `event_fields` applied to each event. */
export function fields<T extends object>(events: T[], filter: CompiledFilter): T[] {
  return filter.eventFields ? events.map((e) => projectFields(e, filter.eventFields)) : events;
}

/** Events of ignored users leave the timeline, state events excepted (spec: "Ignoring Users"). */
export function visibleTimeline(events: ClientEvent[], ignored: Set<string>, filter: CompiledFilter): ClientEvent[] {
  return events.filter((e) => (e.state_key !== undefined || !ignored.has(e.sender)) && filter.timeline.matches(e));
}

/** The room's account data changes in this computation, through the filter. */
export function roomAccountData(run: Run, roomId: string): JsonObject[] {
  const f = run.p.filter.roomAccountData;
  if (!f.allowsRoom(roomId)) return [];
  const list = (run.roomAccountData.get(roomId) ?? []).map((c) => ({ type: c.type, content: c.content })).filter((e) => f.matches(e));
  return limitList(list, f.limit);
}
