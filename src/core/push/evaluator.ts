/**
 * Push rule evaluation (Client-Server API, push notifications module).
 *
 * Pure and synchronous. This runs for every local member of a room on every
 * event, so the only allocation per call is the result object: override and
 * underride lists are compiled once (cached per list array, see "Conditions"
 * below) into shared condition objects holding parsed key paths and glob
 * matchers, literal `event_match` patterns (all of the default rules) are
 * compared in place, and glob patterns and key paths live in small bounded
 * caches.
 *
 * Treat rule sets as immutable once evaluated (the rule-edit helpers never
 * mutate): replacing a list, a rule or a rule's `conditions` array is
 * noticed, editing a condition object in place is not.
 *
 * Glob patterns are matched by glob.ts.
 */
import type {
  ClientEventLike,
  PushAction,
  PushCondition,
  PushContext,
  PushRule,
  PushRuleKind,
  PushRuleSet,
} from './types.js';
import { THREAD_SUBSCRIPTION_CONDITION } from './default-rules.js';
import { globMatch, globMatcher, literalEqualsIgnoreCase, literalWordMatch, type Matcher } from './glob.js';
import { BoundedCache } from './small-cache.js';

export type { ClientEventLike, PushAction, PushContext, PushRuleSet } from './types.js';

export interface PushEvaluation {
  /**
   * The winning rule's actions, without the historical `dont_notify` and
   * `coalesce`. Shared with the rule when there was nothing to strip: do not
   * mutate.
   */
  actions: PushAction[];
  /** The actions include `notify`. */
  notify: boolean;
  /** `notify`, and a `highlight` tweak with value `true` (or no value). */
  highlight: boolean;
  /** The `sound` tweak, when the event notifies and it is a string. */
  sound?: string;
  /** The winning rule, if any rule matched. */
  ruleId?: string;
  kind?: PushRuleKind;
}

const NO_ACTIONS: PushAction[] = Object.freeze([]) as unknown as PushAction[];
const NO_MATCH: PushEvaluation = Object.freeze({ actions: NO_ACTIONS, notify: false, highlight: false });

/**
 * Evaluates `rules` (a complete ruleset, e.g. from `mergeWithDefaults`) for
 * `event` on behalf of `ctx.userId`. Kinds are checked in the order override,
 * content, postcontent (MSC4306), room, sender, underride, each list in order; the first enabled rule
 * that matches wins. No rule matching, or the event being the user's own,
 * means no notification.
 */
export function evaluatePushRules(rules: PushRuleSet, event: ClientEventLike, ctx: PushContext): PushEvaluation {
  // "Homeservers MUST NOT notify the Push Gateway for events that the user has sent themselves."
  if (event.sender === ctx.userId) return NO_MATCH;

  const override = matchConditionRules(rules.override, event, ctx);
  if (override !== null) return outcome(override, 'override');

  let list = rules.content;
  if (list.length > 0) {
    const body = (event.content as Record<string, unknown>)['body'];
    if (typeof body === 'string') {
      for (let i = 0; i < list.length; i++) {
        const r = list[i]!;
        if (r.enabled && typeof r.pattern === 'string' && globMatch(r.pattern, body, true)) {
          return outcome(r, 'content');
        }
      }
    }
  }

  const postcontent = matchConditionRules(rules.postcontent, event, ctx);
  if (postcontent !== null) return outcome(postcontent, 'postcontent');

  list = rules.room;
  for (let i = 0; i < list.length; i++) {
    const r = list[i]!;
    if (r.enabled && r.rule_id === event.room_id) return outcome(r, 'room');
  }

  list = rules.sender;
  for (let i = 0; i < list.length; i++) {
    const r = list[i]!;
    if (r.enabled && r.rule_id === event.sender) return outcome(r, 'sender');
  }

  const underride = matchConditionRules(rules.underride, event, ctx);
  if (underride !== null) return outcome(underride, 'underride');
  return NO_MATCH;
}

/**
 * Whether one rule of `kind` matches `event`, ignoring `enabled` (the
 * evaluator checks that) and the own-event exclusion.
 */
export function ruleMatches(kind: PushRuleKind, rule: PushRule, event: ClientEventLike, ctx: PushContext): boolean {
  switch (kind) {
    case 'override':
    case 'postcontent':
    case 'underride':
      return compileRule(rule).matches(event, ctx);
    case 'content': {
      const body = (event.content as Record<string, unknown>)['body'];
      return typeof rule.pattern === 'string' && typeof body === 'string' && globMatch(rule.pattern, body, true);
    }
    case 'room':
      return rule.rule_id === event.room_id;
    case 'sender':
      return rule.rule_id === event.sender;
    default:
      return false;
  }
}

function outcome(rule: PushRule, kind: PushRuleKind): PushEvaluation {
  const actions = Array.isArray(rule.actions) ? rule.actions : NO_ACTIONS;
  let notify = false;
  let highlight = false;
  let sound: string | undefined;
  let legacy = false;
  for (let i = 0; i < actions.length; i++) {
    const a = actions[i];
    if (typeof a === 'string') {
      if (a === 'notify') notify = true;
      else if (a === 'dont_notify' || a === 'coalesce') legacy = true;
    } else if (a !== null && typeof a === 'object') {
      const tweak = a.set_tweak;
      if (tweak === 'highlight') highlight = a.value === undefined || a.value === true;
      else if (tweak === 'sound') sound = typeof a.value === 'string' ? a.value : undefined;
    }
  }
  const out: PushEvaluation = {
    actions: legacy ? actions.filter((a) => a !== 'dont_notify' && a !== 'coalesce') : actions,
    notify,
    // Tweaks only shape a notification: without `notify` there is nothing to highlight.
    highlight: notify && highlight,
    ruleId: rule.rule_id,
    kind,
  };
  if (notify && sound !== undefined) out.sound = sound;
  return out;
}

// ---------------------------------------------------------------------------
// Conditions
//
// Override and underride lists are compiled once into monomorphic objects
// (parsed key paths, glob matchers, parsed member counts), cached per list
// array in a WeakMap. A compiled list is rebuilt when the list, one of its rule
// objects or a rule's `conditions` array (identity or length) changes; the
// condition objects themselves are assumed not to be edited in place (the
// rule-edit helpers always build new objects).

const T_NEVER = 0;
const T_EVENT_MATCH = 1;
const T_PROPERTY_IS = 2;
const T_PROPERTY_CONTAINS = 3;
const T_DISPLAY_NAME = 4;
const T_MEMBER_COUNT = 5;
const T_SENDER_PERMISSION = 6;
const T_THREAD_SUBSCRIPTION = 7;

const OP_EQ = 0;
const OP_LT = 1;
const OP_GT = 2;
const OP_LE = 3;
const OP_GE = 4;

class KeyPath {
  constructor(
    readonly segments: readonly string[],
    /** No segment is the name of something objects inherit (`__proto__`, `toString`, ...). */
    readonly plain: boolean,
  ) {}
}

const NO_PATH = new KeyPath(Object.freeze([]), true);

class CompiledCondition {
  constructor(
    readonly type: number,
    /** Parsed key path (event_match, event_property_*). */
    readonly path: KeyPath,
    /** event_match: the pattern; sender_notification_permission: the key. */
    readonly text: string,
    /** event_match: null for a literal pattern (compared in place). */
    readonly matcher: Matcher | null,
    /** event_property_*: the value. */
    readonly value: string | number | boolean | null,
    /** room_member_count. */
    readonly op: number,
    readonly n: number,
  ) {}

  matches(event: ClientEventLike, ctx: PushContext): boolean {
    switch (this.type) {
      case T_EVENT_MATCH: {
        const v = resolvePath(event, this.path);
        if (typeof v !== 'string') return false;
        const m = this.matcher;
        return m === null ? literalEqualsIgnoreCase(v, this.text) : m.test(v);
      }
      case T_PROPERTY_IS: {
        const v = resolvePath(event, this.path);
        return v === this.value && isScalar(v);
      }
      case T_PROPERTY_CONTAINS: {
        const arr = resolvePath(event, this.path);
        if (!Array.isArray(arr)) return false;
        const want = this.value;
        for (let i = 0; i < arr.length; i++) {
          const v: unknown = arr[i];
          if (v === want && isScalar(v)) return true;
        }
        return false;
      }
      case T_DISPLAY_NAME: {
        const name = ctx.displayName;
        if (typeof name !== 'string' || name.length === 0) return false;
        const body = (event.content as Record<string, unknown>)['body'];
        return typeof body === 'string' && literalWordMatch(name, body);
      }
      case T_MEMBER_COUNT: {
        const count = ctx.roomMemberCount;
        const n = this.n;
        switch (this.op) {
          case OP_LT:
            return count < n;
          case OP_GT:
            return count > n;
          case OP_LE:
            return count <= n;
          case OP_GE:
            return count >= n;
          default:
            return count === n;
        }
      }
      case T_SENDER_PERMISSION: {
        const levels = ctx.notificationPowerLevels;
        const key = this.text;
        let required = 50;
        if (levels !== null && typeof levels === 'object' && hasOwn.call(levels, key)) {
          const l = levels[key];
          if (typeof l === 'number' && Number.isFinite(l)) required = l;
        }
        return ctx.senderPowerLevel >= required;
      }
      case T_THREAD_SUBSCRIPTION:
        // MSC4306: only events in a thread, and then whether the user is subscribed to it.
        return threadRootOf(event) !== undefined && (ctx.threadSubscribed === true) === this.value;
      default:
        return false;
    }
  }
}

const NEVER = new CompiledCondition(T_NEVER, NO_PATH, '', null, null, OP_EQ, 0);

const MEMBER_COUNT_RE = /^(==|<=|>=|<|>)?([0-9]+)$/;

/** Compiles one condition; unknown or malformed ones never match. */
function compileCondition(c: PushCondition): CompiledCondition {
  if (c === null || typeof c !== 'object') return NEVER;
  switch (c.kind) {
    case 'event_match': {
      const { key, pattern } = c;
      if (typeof key !== 'string' || typeof pattern !== 'string') return NEVER;
      const body = key === 'content.body';
      const literal = !body && pattern.indexOf('*') === -1 && pattern.indexOf('?') === -1;
      return new CompiledCondition(T_EVENT_MATCH, cachedPath(key), pattern, literal ? null : globMatcher(pattern, body), null, OP_EQ, 0);
    }
    case 'event_property_is':
    case 'event_property_contains': {
      const { key, value } = c;
      if (typeof key !== 'string' || !isScalar(value)) return NEVER;
      const type = c.kind === 'event_property_is' ? T_PROPERTY_IS : T_PROPERTY_CONTAINS;
      return new CompiledCondition(type, cachedPath(key), '', null, value, OP_EQ, 0);
    }
    case 'contains_display_name':
      return new CompiledCondition(T_DISPLAY_NAME, NO_PATH, '', null, null, OP_EQ, 0);
    case 'room_member_count': {
      const m = typeof c.is === 'string' ? MEMBER_COUNT_RE.exec(c.is) : null;
      if (m === null) return NEVER;
      const op = m[1] === '<' ? OP_LT : m[1] === '>' ? OP_GT : m[1] === '<=' ? OP_LE : m[1] === '>=' ? OP_GE : OP_EQ;
      return new CompiledCondition(T_MEMBER_COUNT, NO_PATH, '', null, null, op, Number(m[2]));
    }
    case 'sender_notification_permission':
      if (typeof c.key !== 'string') return NEVER;
      return new CompiledCondition(T_SENDER_PERMISSION, NO_PATH, c.key, null, null, OP_EQ, 0);
    case THREAD_SUBSCRIPTION_CONDITION:
      if (typeof c.subscribed !== 'boolean') return NEVER;
      return new CompiledCondition(T_THREAD_SUBSCRIPTION, NO_PATH, '', null, c.subscribed, OP_EQ, 0);
    default:
      return NEVER;
  }
}

class CompiledRule {
  constructor(
    readonly rule: PushRule,
    readonly source: PushCondition[] | undefined,
    readonly sourceLength: number,
    readonly conditions: readonly CompiledCondition[],
  ) {}

  /** Still describes `rule` as it is now. */
  current(rule: PushRule): boolean {
    const src = rule.conditions;
    return this.rule === rule && this.source === src && this.sourceLength === (src === undefined ? -1 : src.length);
  }

  matches(event: ClientEventLike, ctx: PushContext): boolean {
    const conds = this.conditions;
    for (let i = 0; i < conds.length; i++) {
      if (!conds[i]!.matches(event, ctx)) return false;
    }
    return true;
  }
}

/**
 * Compiled conditions are immutable and shared between equal conditions (so
 * a thousand users' copies of the default rules share one set), which keeps
 * the working set small when an event is evaluated for every room member.
 */
const internedConditions = new BoundedCache<CompiledCondition>(4096);

function internCondition(c: PushCondition): CompiledCondition {
  if (c === null || typeof c !== 'object') return NEVER;
  let id: string;
  try {
    // Unambiguous and typed (1 vs "1"); a missing value differs from null.
    id = JSON.stringify([c.kind, c.key, c.pattern, c.is, c.value === undefined ? 0 : 1, c.value ?? null, c.subscribed ?? null]);
  } catch {
    return compileCondition(c);
  }
  let cc = internedConditions.get(id);
  if (cc === undefined) {
    cc = compileCondition(c);
    internedConditions.set(id, cc);
  }
  return cc;
}

function compileRule(rule: PushRule): CompiledRule {
  const src = rule.conditions;
  // A rule with no conditions always matches; a non-array can only be garbage.
  const conds = src === undefined ? [] : Array.isArray(src) ? src.map(internCondition) : [NEVER];
  return new CompiledRule(rule, src, src === undefined ? -1 : Array.isArray(src) ? src.length : 0, conds);
}

const compiledLists = new WeakMap<PushRule[], CompiledRule[]>();

/** The first enabled rule of an override/underride list whose conditions all hold. */
function matchConditionRules(list: PushRule[], event: ClientEventLike, ctx: PushContext): PushRule | null {
  if (list.length === 0) return null;
  let compiled = compiledLists.get(list);
  if (compiled === undefined || compiled.length !== list.length) {
    compiled = list.map(compileRule);
    compiledLists.set(list, compiled);
  }
  for (let i = 0; i < list.length; i++) {
    const rule = list[i]!;
    let cr = compiled[i]!;
    if (!cr.current(rule)) {
      cr = compileRule(rule);
      compiled[i] = cr;
    }
    if (rule.enabled && cr.matches(event, ctx)) return rule;
  }
  return null;
}

/**
 * The root of the thread an event is in: the `event_id` of an `m.thread` relation (spec:
 * modules/threading). The root itself is not in its thread.
 */
export function threadRootOf(event: ClientEventLike): string | undefined {
  const rel = (event.content as Record<string, unknown>)['m.relates_to'];
  if (rel === null || typeof rel !== 'object' || Array.isArray(rel)) return undefined;
  const r = rel as Record<string, unknown>;
  return r['rel_type'] === 'm.thread' && typeof r['event_id'] === 'string' ? r['event_id'] : undefined;
}

/** Whether one condition holds. Unknown or malformed conditions never match. */
export function conditionMatches(c: PushCondition, event: ClientEventLike, ctx: PushContext): boolean {
  return compileCondition(c).matches(event, ctx);
}

/** Strings, booleans, null and integers in canonical JSON range. */
function isScalar(v: unknown): v is string | number | boolean | null {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isSafeInteger(v);
    case 'object':
      return v === null;
    default:
      return false;
  }
}

// ---------------------------------------------------------------------------
// Dot-separated property paths

const pathCache = new BoundedCache<KeyPath>(512);

/**
 * Splits a dot-separated property path: `\.` is a literal dot, `\\` a literal
 * backslash, any other backslash is kept as is.
 */
export function parseKeyPath(key: string): string[] {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < key.length; i++) {
    const ch = key[i]!;
    if (ch === '\\') {
      const next = key[i + 1];
      if (next === '.' || next === '\\') {
        cur += next;
        i++;
      } else {
        cur += ch;
      }
    } else if (ch === '.') {
      parts.push(cur);
      cur = '';
    } else {
      cur += ch;
    }
  }
  parts.push(cur);
  return parts;
}

function cachedPath(key: string): KeyPath {
  let p = pathCache.get(key);
  if (p === undefined) {
    const segments = parseKeyPath(key);
    p = new KeyPath(Object.freeze(segments), segments.every((k) => !(k in Object.prototype)));
    pathCache.set(key, p);
  }
  return p;
}

const hasOwn = Object.prototype.hasOwnProperty;

/**
 * The value at a dotted path of the event (`content.m\.relates_to.rel_type`),
 * following own properties of plain objects only; `undefined` when absent.
 */
export function resolveEventPath(event: ClientEventLike, key: string): unknown {
  return resolvePath(event, cachedPath(key));
}

function resolvePath(event: ClientEventLike, path: KeyPath): unknown {
  const segs = path.segments;
  let cur: unknown = event;
  if (path.plain) {
    // No segment names an Object.prototype member, so a plain read only finds own properties.
    for (let i = 0; i < segs.length; i++) {
      if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
      cur = (cur as Record<string, unknown>)[segs[i]!];
    }
    return cur;
  }
  for (let i = 0; i < segs.length; i++) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    const k = segs[i]!;
    if (!hasOwn.call(cur, k)) return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}
