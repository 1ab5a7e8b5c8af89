/**
 * Push rule data types, as the Client-Server API schemas define them
 * (definitions/push_rule.yaml, push_condition.yaml, push_ruleset.yaml).
 */

/**
 * The kinds of push rule, in the order in which they are checked. `postcontent` is MSC4306's
 * (thread subscriptions): between content and room, holding server-default rules only.
 */
export type PushRuleKind = 'override' | 'content' | 'postcontent' | 'room' | 'sender' | 'underride';

/** Every kind, highest priority first. */
export const PUSH_RULE_KINDS: readonly PushRuleKind[] = Object.freeze([
  'override',
  'content',
  'postcontent',
  'room',
  'sender',
  'underride',
] as const);

/** `{ "set_tweak": "sound", "value": "default" }` and the like. */
export interface PushTweakAction {
  set_tweak: string;
  value?: unknown;
  [key: string]: unknown;
}

/**
 * An action: `"notify"` (or the historical `"dont_notify"` / `"coalesce"`,
 * which are ignored) or a tweak.
 */
export type PushAction = string | PushTweakAction;

/** A non-compound canonical JSON value, as `event_property_is/contains` take. */
export type PushScalar = string | number | boolean | null;

export interface PushCondition {
  kind: string;
  /** event_match, event_property_is, event_property_contains: dotted path; sender_notification_permission: notifications key. */
  key?: string;
  /** event_match: glob. */
  pattern?: string;
  /** room_member_count: `2`, `==2`, `<10`, `>=3`, ... */
  is?: string;
  /** event_property_is / event_property_contains. */
  value?: PushScalar;
  /** MSC4306's thread subscription condition: whether the user is to be subscribed to the event's thread. */
  subscribed?: boolean;
  [extra: string]: unknown;
}

export interface PushRule {
  rule_id: string;
  default: boolean;
  enabled: boolean;
  /** override and underride rules only. */
  conditions?: PushCondition[];
  /** content rules only. */
  pattern?: string;
  actions: PushAction[];
}

/** The `global` ruleset; every array is in priority order, most important first. */
export interface PushRuleSet {
  override: PushRule[];
  content: PushRule[];
  postcontent: PushRule[];
  room: PushRule[];
  sender: PushRule[];
  underride: PushRule[];
}

/** The parts of a client event that push rules can look at. */
export interface ClientEventLike {
  type: string;
  content: object;
  sender: string;
  state_key?: string;
  room_id: string;
  event_id?: string;
}

export interface PushContext {
  /** The user whose rules are being evaluated. */
  userId: string;
  /** The user's display name in this room (for the deprecated `contains_display_name`). */
  displayName?: string;
  /** Number of joined members of the room. */
  roomMemberCount: number;
  /** Power level of the event's sender in the room. */
  senderPowerLevel: number;
  /** `content.notifications` of the room's power levels; missing keys default to 50. */
  notificationPowerLevels: Record<string, number>;
  /** The user is subscribed to the thread the event is in (MSC4306); absent: not subscribed. */
  threadSubscribed?: boolean;
}
