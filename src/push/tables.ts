declare module '../db/schema.js' {
  interface Tables {
    push_rules: PushRulesRow;
    event_push_actions: EventPushActionRow;
    push_read_upto: PushReadUptoRow;
    pushers: PusherRow;
  }
}

/** One document per user: the user's rules and changes to defaults (core/push/rule-edit `UserPushRules`). */
export interface PushRulesRow {
  user_id: string;
  json: string;
  updated_ts: number;
}

/** A notifying event for one user. */
export interface EventPushActionRow {
  user_id: string;
  room_id: string;
  event_id: string;
  stream_pos: number;
  notify: number;
  highlight: number;
  /** The winning rule's actions, as GET /notifications shows them. */
  actions: string;
  ts: number;
}

/** Where the user has read up to in a room (their furthest m.read / m.read.private receipt, or own event). */
export interface PushReadUptoRow {
  user_id: string;
  room_id: string;
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
}
