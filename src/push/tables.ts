declare module '../db/schema.js' {
  interface Tables {
    push_rules: PushRulesRow;
    push_outcomes: PushOutcomeRow;
    push_outcome_exceptions: PushOutcomeExceptionRow;
    push_member_spans: PushMemberSpanRow;
    push_read_upto: PushReadUptoRow;
    push_thread_read_upto: PushThreadReadUptoRow;
    pushers: PusherRow;
    push_delivery_position: PushDeliveryPositionRow;
  }
}

/** One document per user: the user's rules and changes to defaults (core/push/rule-edit `UserPushRules`). */
export interface PushRulesRow {
  user_id: string;
  json: string;
  updated_ts: number;
}

/**
 * What one event's push rules gave, for the room (see push-outcomes-store.ts):
 * `base` holds for every local member joined at the event (push_member_spans)
 * but the sender and those in push_outcome_exceptions. Stored only when
 * someone is notified.
 */
export interface PushOutcomeRow {
  room_id: string;
  stream_pos: number;
  event_id: string;
  sender: string;
  /** 0 nothing, 1 notify, 2 notify and highlight. */
  base: number;
  /** The base's actions (JSON), as GET /notifications shows them; null when `base` is 0. */
  actions: string | null;
  ts: number;
  /** The thread root when the event is in a thread (an `m.thread` relation); null in the main timeline. */
  thread_id: string | null;
}

/** A member whose outcome for the event differs from the base. */
export interface PushOutcomeExceptionRow {
  room_id: string;
  stream_pos: number;
  user_id: string;
  /** As PushOutcomeRow.base. */
  level: number;
  actions: string | null;
  /** 1: the event invites this local user, who is not joined; pushed to them though they have no span. */
  invitee: number;
}

/** A local user was joined to the room for the events after `joined_pos` up to and including `left_pos` (open while null). */
export interface PushMemberSpanRow {
  user_id: string;
  room_id: string;
  joined_pos: number;
  left_pos: number | null;
}

/** Where the user has read up to in a room (their furthest m.read / m.read.private receipt, or own event). */
export interface PushReadUptoRow {
  user_id: string;
  room_id: string;
  stream_pos: number;
}

/**
 * Where the user has read up to in one thread of a room (a threaded receipt:
 * `thread_id` is a thread root, or 'main' for the main timeline). Counts for
 * the thread start after both this and the room's unthreaded push_read_upto.
 */
export interface PushThreadReadUptoRow {
  user_id: string;
  room_id: string;
  thread_id: string;
  stream_pos: number;
}

export interface PusherRow {
  user_id: string;
  app_id: string;
  pushkey: string;
  kind: string;
  app_display_name: string;
  device_display_name: string;
  profile_tag: string | null;
  lang: string;
  data: string;
  ts: number;
  /** The device that set the pusher (null for pushers set before devices were recorded). */
  device_id: string | null;
}

/** How far the pusher named `name` has delivered: every push outcome at or below `stream_pos` is done. */
export interface PushDeliveryPositionRow {
  name: string;
  stream_pos: number;
}
