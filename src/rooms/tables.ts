/** Row types of the rooms domain's tables (see migrations.ts for the DDL). */
import type { ColumnType } from 'kysely';

declare module '../db/schema.js' {
  interface Tables {
    rooms: RoomRow;
    events: EventTable;
    state_groups: StateGroupRow;
    state_group_deltas: StateGroupDeltaRow;
    current_state: CurrentStateRow;
    room_memberships: RoomMembershipRow;
    forward_extremities: ForwardExtremityRow;
    event_edges: EventEdgeRow;
    backward_extremities: BackwardExtremityRow;
    current_state_deltas: CurrentStateDeltaRow;
    auth_chain_positions: AuthChainPositionRow;
    auth_chain_links: AuthChainLinkRow;
    partial_state_rooms: PartialStateRoomRow;
    partial_state_events: PartialStateEventRow;
    partial_state_fills: PartialStateFillRow;
  }
}

/**
 * A room joined with partial state (send_join with `omit_members`): the resident server left
 * most member events out of the state it sent. The row lives until the full state before the
 * join has been fetched and filled in. `servers` (JSON array): the servers in the room the
 * resident server named (`servers_in_room`), which events made here go to meanwhile.
 */
export interface PartialStateRoomRow {
  room_id: string;
  join_event_id: string;
  servers: string;
}

/** An event stored while its room had partial state: the state groups before and after it lack the omitted members. */
export interface PartialStateEventRow {
  event_id: string;
  room_id: string;
}

/** Where on the events stream a room's partial state was filled in (the last time it was). */
export interface PartialStateFillRow {
  room_id: string;
  stream_pos: number;
}

/** One row per room this server knows. */
export interface RoomRow {
  room_id: string;
  room_version: string;
  creator: string;
  created_ts: number;
}

/**
 * Every event, stored once as its federation JSON. `stream_pos` orders what
 * clients may see: positive for events that arrived as new, negative (below
 * every other) for history filled in later by backfill, and null for events
 * clients never see: outliers (known without their state: auth events,
 * invites), rejected and soft-failed events.
 */
export interface EventRow {
  event_id: string;
  room_id: string;
  stream_pos: number | null;
  depth: number;
  type: string;
  state_key: string | null;
  sender: string;
  origin_server_ts: number;
  /** The PDU as JSON, without `unsigned`. */
  json: string;
  /** State group holding the room state *after* this event (before it, for rejected events); null for outliers. */
  state_group: number | null;
  /** State group holding the room state *before* this event; null for outliers. */
  state_group_before: number | null;
  /** The state event this one replaced at (type, state_key), for `prev_content`. */
  replaces_state: string | null;
  /** `content.membership` of m.room.member events, for membership history queries. */
  membership: string | null;
  /** For m.room.redaction events: the redacted event id. */
  redacts: string | null;
  redacted_by: string | null;
  outlier: number;
  rejected_reason: string | null;
  soft_failed: number;
  /** Device and transaction id of a local client send (idempotency, `unsigned.transaction_id`). */
  sender_device: string | null;
  txn_id: string | null;
  /** The endpoint the transaction id belongs to (`send` or `redact`): ids are scoped per device and per endpoint. */
  txn_endpoint: string | null;
}

/**
 * The events table: the rows above, and the first child of each event made by the SQLite send
 * path (see `linkToFirstChildSync` in store/edges-table.ts). Never written on insert.
 */
export interface EventTable extends EventRow {
  first_child: ColumnType<string | null, never, string | null>;
}

/**
 * A state snapshot. A group with `prev_group` holds only the entries that
 * differ from its parent; `delta_depth` counts the deltas down to a full
 * snapshot so the chain stays short.
 */
export interface StateGroupRow {
  id: number;
  room_id: string;
  prev_group: number | null;
  delta_depth: number;
}

export interface StateGroupDeltaRow {
  state_group: number;
  type: string;
  state_key: string;
  /** The event at (type, state_key), or '' when the delta removes the key (a state reset). */
  event_id: string;
}

export interface CurrentStateRow {
  room_id: string;
  type: string;
  state_key: string;
  event_id: string;
}

/** Each user's latest membership in each room, materialised for fast member lists. */
export interface RoomMembershipRow {
  room_id: string;
  user_id: string;
  membership: string;
  event_id: string;
  stream_pos: number;
  sender: string;
  display_name: string | null;
  avatar_url: string | null;
  forgotten: number;
}

export interface ForwardExtremityRow {
  room_id: string;
  event_id: string;
}

/** One prev_events entry of a stored event. */
export interface EventEdgeRow {
  event_id: string;
  prev_event_id: string;
}

/** A prev event that a stored event of the room names but that is not stored: where backfill starts. */
export interface BackwardExtremityRow {
  room_id: string;
  event_id: string;
}

/** A change to a room's current state at a stream position: the new event at the key, or '' when the key was removed. */
export interface CurrentStateDeltaRow {
  stream_pos: number;
  room_id: string;
  type: string;
  state_key: string;
  event_id: string;
  /** For m.room.member keys: the membership from then on ('leave' when the key was removed). */
  membership: string | null;
}

/** An indexed state event's place in the auth chain cover index (core/auth-chain-cover.ts). */
export interface AuthChainPositionRow {
  event_id: string;
  chain_id: number;
  seq: number;
}

/** From (origin_chain, origin_seq) up, chain target_chain is in the auth chain up to target_seq. */
export interface AuthChainLinkRow {
  origin_chain: number;
  origin_seq: number;
  target_chain: number;
  target_seq: number;
}
