/**
 * Push rules for every member of a room at once.
 *
 * Most users never change the server-default rules, and the default rules
 * depend on the user in two places only: `.m.rule.invite_for_me` (the
 * event's `state_key` is the user) and `.m.rule.is_user_mention` (the user is
 * in `content.m.mentions.user_ids`). So the defaults are evaluated once per
 * event for a user the event does not name, and that outcome (the "base")
 * holds for every member with unchanged rules whom the event does not name.
 * Members the event names, and members with their own rules, are evaluated
 * one by one; those whose outcome differs from the base are the exceptions.
 *
 * For an event in a thread, the base is that of a member not subscribed to the
 * thread (MSC4306's rules); the thread's subscribers are evaluated one by one.
 *
 * Which conditions of the defaults depend on the user is found by comparing
 * the defaults of two users, so a new spec default that names the user in
 * another place is noticed (and one that reads the display name makes every
 * member an exception-candidate: evaluated one by one, as before).
 */
import { ALL_DEFAULTS, defaultPushRules, type DefaultRuleOptions } from './default-rules.js';
import { evaluatePushRules, resolveEventPath, type PushEvaluation } from './evaluator.js';
import type { UserPushRules } from './rule-edit.js';
import { PUSH_RULE_KINDS } from './types.js';
import type { ClientEventLike, PushAction, PushCondition, PushContext, PushRuleSet } from './types.js';

/** A user id no user has (ids start with `@` and have no NUL). */
const NOBODY = '@\u0000:\u0000';

/** Where the default rules look for the user: event_match (a string) or event_property_contains (an array) at a key. */
interface UserSlot {
  kind: 'event_match' | 'event_property_contains';
  key: string;
}

/** The user-dependent places of the default rules, or null when some cannot be found from the event alone. */
const USER_SLOTS: readonly UserSlot[] | null = (() => {
  const a = defaultPushRules('@a:a');
  const b = defaultPushRules('@b:b');
  const slots: UserSlot[] = [];
  for (const kind of PUSH_RULE_KINDS) {
    const la = a[kind];
    const lb = b[kind];
    if (la.length !== lb.length) return null;
    for (let i = 0; i < la.length; i++) {
      const ca: PushCondition[] = la[i]!.conditions ?? [];
      const cb: PushCondition[] = lb[i]!.conditions ?? [];
      if (la[i]!.pattern !== lb[i]!.pattern || ca.length !== cb.length) return null;
      for (let j = 0; j < ca.length; j++) {
        const c = ca[j]!;
        if (c.kind === 'contains_display_name') return null;
        if (JSON.stringify(c) === JSON.stringify(cb[j])) continue;
        if ((c.kind === 'event_match' && c.pattern === '@a:a') || (c.kind === 'event_property_contains' && c.value === '@a:a')) {
          if (typeof c.key !== 'string') return null;
          slots.push({ kind: c.kind, key: c.key });
        } else {
          return null;
        }
      }
    }
  }
  return slots;
})();

const NOBODYS_RULES = defaultPushRules(NOBODY);
const NOBODYS_RULES_WITHOUT_THREADS = defaultPushRules(NOBODY, { threadSubscriptions: false });
const NO_ONE: ReadonlySet<string> = new Set();

/**
 * The user ids (lower-cased: event_match ignores case) that an event names
 * where the default rules look for the user; null when the default rules
 * cannot be shared (every user must be evaluated on their own).
 */
export function usersNamedBy(event: ClientEventLike): Set<string> | null {
  if (USER_SLOTS === null) return null;
  const out = new Set<string>();
  for (const slot of USER_SLOTS) {
    const v = resolveEventPath(event, slot.key);
    if (slot.kind === 'event_match') {
      if (typeof v === 'string') out.add(v.toLowerCase());
    } else if (Array.isArray(v)) {
      for (const x of v) if (typeof x === 'string') out.add(x.toLowerCase());
    }
  }
  return out;
}

/** Whether a stored rules document changes nothing: its owner runs the server-default rules. */
export function usesDefaultsOnly(stored: UserPushRules | null | undefined): boolean {
  if (!stored) return true;
  for (const kind of PUSH_RULE_KINDS) {
    const list = stored[kind];
    // mergeWithDefaults ignores anything but rule objects whose id does not start with ".".
    if (Array.isArray(list) && list.some((r) => r !== null && typeof r === 'object' && typeof r.rule_id === 'string' && !r.rule_id.startsWith('.'))) return false;
  }
  const d = stored.defaults;
  return !d || typeof d !== 'object' || Object.keys(d).length === 0;
}

export interface RoomMember {
  userId: string;
  /** The member's complete ruleset, or null for the unchanged server defaults. */
  rules: PushRuleSet | null;
  displayName?: string;
}

export interface RoomEvaluation {
  /** The outcome for every member not in `exceptions` (the sender excepted, who is never notified). */
  base: PushEvaluation;
  /** Members whose outcome differs from `base`. */
  exceptions: Map<string, PushEvaluation>;
}

function sameActions(a: PushAction[], b: PushAction[]): boolean {
  return a === b || JSON.stringify(a) === JSON.stringify(b);
}

/** Two outcomes notify the same way (what is stored for a notification: notify, highlight, actions). */
export function sameOutcome(a: PushEvaluation, b: PushEvaluation): boolean {
  if (a.notify !== b.notify) return false;
  if (!a.notify) return true;
  return a.highlight === b.highlight && sameActions(a.actions, b.actions);
}

/**
 * Evaluates `event` for `members` (the sender among them or not): the
 * defaults once, then only the members the event names, who have rules of
 * their own, or who are among `threadSubscribers` (the members subscribed to
 * the thread the event is in). `shared` is the room-wide part of the context;
 * `options` the optional defaults the server serves.
 */
export function evaluateForMembers(
  event: ClientEventLike,
  shared: Omit<PushContext, 'userId' | 'displayName' | 'threadSubscribed'>,
  members: Iterable<RoomMember>,
  threadSubscribers: ReadonlySet<string> = NO_ONE,
  options: DefaultRuleOptions = ALL_DEFAULTS,
): RoomEvaluation {
  const named = usersNamedBy(event);
  const base = evaluatePushRules(options.threadSubscriptions ? NOBODYS_RULES : NOBODYS_RULES_WITHOUT_THREADS, event, { ...shared, userId: NOBODY });
  const exceptions = new Map<string, PushEvaluation>();
  for (const m of members) {
    if (m.userId === event.sender) continue;
    const subscribed = threadSubscribers.has(m.userId);
    if (m.rules === null && !subscribed && named !== null && (named.size === 0 || !named.has(m.userId.toLowerCase()))) continue;
    const r = evaluatePushRules(m.rules ?? defaultPushRules(m.userId, options), event, {
      ...shared,
      userId: m.userId,
      displayName: m.displayName,
      threadSubscribed: subscribed,
    });
    if (!sameOutcome(r, base)) exceptions.set(m.userId, r);
  }
  return { base, exceptions };
}
