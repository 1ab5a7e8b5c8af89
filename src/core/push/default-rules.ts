/**
 * The server-default push rules of the Client-Server API v1.19
 * ("Predefined Rules" of the push notifications module), in the spec's order.
 *
 * Since v1.17 (MSC4210) the legacy body-mention rules are gone:
 * `.m.rule.contains_display_name`, `.m.rule.roomnotif` (override) and
 * `.m.rule.contains_user_name` (content) are not server defaults any more, so
 * the default `content` list is empty.
 *
 * The `postcontent` kind holds MSC4306's two rules under their unstable ids (as
 * clients ask for them): a message in a thread the user is not subscribed to
 * does not notify unless an override or content rule (a mention, a keyword)
 * already did, and one in a thread they are subscribed to notifies whatever
 * the room's own rules say.
 */
import type { PushRule, PushRuleKind, PushRuleSet } from './types.js';

export type {
  ClientEventLike,
  PushAction,
  PushCondition,
  PushContext,
  PushRule,
  PushRuleKind,
  PushRuleSet,
  PushScalar,
  PushTweakAction,
} from './types.js';
export { PUSH_RULE_KINDS } from './types.js';

/** MSC4306's condition kind and rule ids, unstable prefix (`thread_subscription`, `.m.rule.(un)subscribed_thread` once stable). */
export const THREAD_SUBSCRIPTION_CONDITION = 'io.element.msc4306.thread_subscription';
export const UNSUBSCRIBED_THREAD_RULE = '.io.element.msc4306.rule.unsubscribed_thread';
export const SUBSCRIBED_THREAD_RULE = '.io.element.msc4306.rule.subscribed_thread';

/** Which optional defaults a server serves. */
export interface DefaultRuleOptions {
  /** MSC4306's two `postcontent` rules (a server may leave them out for clients that never subscribe to threads). */
  threadSubscriptions: boolean;
}

export const ALL_DEFAULTS: DefaultRuleOptions = Object.freeze({ threadSubscriptions: true });

/**
 * A fresh copy of the server-default ruleset for `userId` (only
 * `.m.rule.invite_for_me` and `.m.rule.is_user_mention` depend on it).
 * `.m.rule.master` is first in `override`; user rules go after it (see
 * `mergeWithDefaults`).
 */
export function defaultPushRules(userId: string, options: DefaultRuleOptions = ALL_DEFAULTS): PushRuleSet {
  const set = allDefaultRules(userId);
  if (!options.threadSubscriptions) set.postcontent = [];
  return set;
}

function allDefaultRules(userId: string): PushRuleSet {
  return {
    override: [
      {
        rule_id: '.m.rule.master',
        default: true,
        enabled: false,
        conditions: [],
        actions: [],
      },
      {
        rule_id: '.m.rule.suppress_notices',
        default: true,
        enabled: true,
        conditions: [{ kind: 'event_match', key: 'content.msgtype', pattern: 'm.notice' }],
        actions: [],
      },
      {
        rule_id: '.m.rule.invite_for_me',
        default: true,
        enabled: true,
        conditions: [
          { kind: 'event_match', key: 'type', pattern: 'm.room.member' },
          { kind: 'event_match', key: 'content.membership', pattern: 'invite' },
          { kind: 'event_match', key: 'state_key', pattern: userId },
        ],
        actions: ['notify', { set_tweak: 'sound', value: 'default' }],
      },
      {
        rule_id: '.m.rule.member_event',
        default: true,
        enabled: true,
        conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.room.member' }],
        actions: [],
      },
      {
        rule_id: '.m.rule.is_user_mention',
        default: true,
        enabled: true,
        conditions: [{ kind: 'event_property_contains', key: 'content.m\\.mentions.user_ids', value: userId }],
        actions: ['notify', { set_tweak: 'sound', value: 'default' }, { set_tweak: 'highlight' }],
      },
      {
        rule_id: '.m.rule.is_room_mention',
        default: true,
        enabled: true,
        conditions: [
          { kind: 'event_property_is', key: 'content.m\\.mentions.room', value: true },
          { kind: 'sender_notification_permission', key: 'room' },
        ],
        actions: ['notify', { set_tweak: 'highlight' }],
      },
      {
        rule_id: '.m.rule.tombstone',
        default: true,
        enabled: true,
        conditions: [
          { kind: 'event_match', key: 'type', pattern: 'm.room.tombstone' },
          { kind: 'event_match', key: 'state_key', pattern: '' },
        ],
        actions: ['notify', { set_tweak: 'highlight' }],
      },
      {
        rule_id: '.m.rule.reaction',
        default: true,
        enabled: true,
        conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.reaction' }],
        actions: [],
      },
      {
        rule_id: '.m.rule.room.server_acl',
        default: true,
        enabled: true,
        conditions: [
          { kind: 'event_match', key: 'type', pattern: 'm.room.server_acl' },
          { kind: 'event_match', key: 'state_key', pattern: '' },
        ],
        actions: [],
      },
      {
        rule_id: '.m.rule.suppress_edits',
        default: true,
        enabled: true,
        conditions: [{ kind: 'event_property_is', key: 'content.m\\.relates_to.rel_type', value: 'm.replace' }],
        actions: [],
      },
    ],
    content: [],
    postcontent: [
      {
        rule_id: UNSUBSCRIBED_THREAD_RULE,
        default: true,
        enabled: true,
        conditions: [{ kind: THREAD_SUBSCRIPTION_CONDITION, subscribed: false }],
        actions: [],
      },
      {
        rule_id: SUBSCRIBED_THREAD_RULE,
        default: true,
        enabled: true,
        conditions: [{ kind: THREAD_SUBSCRIPTION_CONDITION, subscribed: true }],
        actions: ['notify', { set_tweak: 'sound', value: 'default' }],
      },
    ],
    room: [],
    sender: [],
    underride: [
      {
        rule_id: '.m.rule.call',
        default: true,
        enabled: true,
        conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.call.invite' }],
        actions: ['notify', { set_tweak: 'sound', value: 'ring' }],
      },
      {
        rule_id: '.m.rule.encrypted_room_one_to_one',
        default: true,
        enabled: true,
        conditions: [
          { kind: 'room_member_count', is: '2' },
          { kind: 'event_match', key: 'type', pattern: 'm.room.encrypted' },
        ],
        actions: ['notify', { set_tweak: 'sound', value: 'default' }],
      },
      {
        rule_id: '.m.rule.room_one_to_one',
        default: true,
        enabled: true,
        conditions: [
          { kind: 'room_member_count', is: '2' },
          { kind: 'event_match', key: 'type', pattern: 'm.room.message' },
        ],
        actions: ['notify', { set_tweak: 'sound', value: 'default' }],
      },
      {
        rule_id: '.m.rule.message',
        default: true,
        enabled: true,
        conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.room.message' }],
        actions: ['notify'],
      },
      {
        rule_id: '.m.rule.encrypted',
        default: true,
        enabled: true,
        conditions: [{ kind: 'event_match', key: 'type', pattern: 'm.room.encrypted' }],
        actions: ['notify'],
      },
    ],
  };
}

/** The ids of the server-default rules of each kind (independent of the user). */
export const DEFAULT_RULE_IDS: Readonly<Record<PushRuleKind, ReadonlySet<string>>> = (() => {
  const d = defaultPushRules('@_:_');
  const ids = (rules: PushRule[]): ReadonlySet<string> => new Set(rules.map((r) => r.rule_id));
  return Object.freeze({
    override: ids(d.override),
    content: ids(d.content),
    postcontent: ids(d.postcontent),
    room: ids(d.room),
    sender: ids(d.sender),
    underride: ids(d.underride),
  });
})();
