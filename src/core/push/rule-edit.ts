/**
 * Pure helpers behind the `/pushrules` Client-Server API.
 *
 * What is stored per user is a `UserPushRules`: the user-defined rules of
 * each kind (most important first) plus the user's changes to server-default
 * rules (`enabled` and `actions` only). The full ruleset that GET /pushrules
 * returns, the `m.push_rules` account data carries and the evaluator runs is
 * `mergeWithDefaults(stored, userId)`; keeping the defaults out of storage
 * means a new spec default reaches every user without a migration.
 *
 * Every editing function returns a new value (arrays are copied on write) or
 * a typed error; nothing is mutated.
 */
import { ALL_DEFAULTS, DEFAULT_RULE_IDS, defaultPushRules, type DefaultRuleOptions } from './default-rules.js';
import { PUSH_RULE_KINDS } from './types.js';
import type { PushAction, PushCondition, PushRule, PushRuleKind, PushRuleSet } from './types.js';

/** The user's change to one server-default rule. */
export interface DefaultRuleOverride {
  enabled?: boolean;
  actions?: PushAction[];
}

/** A user's stored push rules. The five arrays hold user-defined rules only. */
export interface UserPushRules extends PushRuleSet {
  /** Changes to server-default rules, keyed `${kind}/${ruleId}` (see `defaultOverrideKey`). */
  defaults?: Record<string, DefaultRuleOverride>;
}

/** The body of PUT /pushrules/global/{kind}/{ruleId}. */
export interface NewPushRule {
  actions: PushAction[];
  /** override and underride only; defaults to `[]`. */
  conditions?: PushCondition[];
  /** content only, required there. */
  pattern?: string;
}

export type RuleEditErrorReason =
  | 'invalid_kind'
  | 'invalid_rule_id'
  | 'reserved_rule_id'
  | 'invalid_rule'
  | 'unknown_anchor'
  | 'default_anchor'
  | 'not_found'
  | 'cannot_delete_default';

export interface RuleEditError {
  ok: false;
  /** HTTP status the route should answer with. */
  status: 400 | 404;
  errcode: 'M_INVALID_PARAM' | 'M_BAD_JSON' | 'M_MISSING_PARAM' | 'M_UNKNOWN' | 'M_NOT_FOUND';
  error: string;
  reason: RuleEditErrorReason;
}

export type RuleEditResult<T> = { ok: true; value: T } | RuleEditError;

function fail(
  status: 400 | 404,
  errcode: RuleEditError['errcode'],
  reason: RuleEditErrorReason,
  error: string,
): RuleEditError {
  return { ok: false, status, errcode, error, reason };
}

const notFound = (): RuleEditError => fail(404, 'M_NOT_FOUND', 'not_found', 'The push rule was not found.');

export function emptyUserPushRules(): UserPushRules {
  return { override: [], content: [], postcontent: [], room: [], sender: [], underride: [] };
}

export function defaultOverrideKey(kind: PushRuleKind, ruleId: string): string {
  return `${kind}/${ruleId}`;
}

// ---------------------------------------------------------------------------
// Validation

/** Whether `kind` is one of override, content, postcontent, room, sender, underride. */
export function validateKind(kind: string): kind is PushRuleKind {
  return (PUSH_RULE_KINDS as readonly string[]).includes(kind);
}

/**
 * Checks a rule id for a user-defined rule (PUT): not empty, not starting
 * with "." (reserved for server defaults), no "/" or "\".
 */
export function validateRuleId(ruleId: string): RuleEditResult<string> {
  if (typeof ruleId !== 'string' || ruleId.length === 0) {
    return fail(400, 'M_INVALID_PARAM', 'invalid_rule_id', 'The rule id must not be empty.');
  }
  if (ruleId.startsWith('.')) {
    return fail(400, 'M_INVALID_PARAM', 'reserved_rule_id', 'Rule ids starting with "." are reserved for server-default rules.');
  }
  if (ruleId.includes('/') || ruleId.includes('\\')) {
    return fail(400, 'M_INVALID_PARAM', 'invalid_rule_id', 'Rule ids must not contain "/" or "\\".');
  }
  return { ok: true, value: ruleId };
}

const LEGACY_ACTIONS = new Set(['dont_notify', 'coalesce']);

/**
 * Validates an actions array (strings, or objects with a string `set_tweak`)
 * and returns a copy without the historical `dont_notify` / `coalesce`.
 */
export function validateActions(actions: unknown): RuleEditResult<PushAction[]> {
  if (!Array.isArray(actions)) return fail(400, 'M_BAD_JSON', 'invalid_rule', '"actions" must be an array.');
  const out: PushAction[] = [];
  for (const a of actions as unknown[]) {
    if (typeof a === 'string') {
      if (LEGACY_ACTIONS.has(a)) continue;
      if (a !== 'notify') return fail(400, 'M_BAD_JSON', 'invalid_rule', `Unknown push rule action: ${a}`);
      out.push(a);
    } else if (a !== null && typeof a === 'object' && !Array.isArray(a) && typeof (a as { set_tweak?: unknown }).set_tweak === 'string') {
      // The spec defines two tweaks' values (modules/push.md "Tweaks"); others pass through to the gateway.
      const { set_tweak, value } = a as { set_tweak: string; value?: unknown };
      if (set_tweak === 'sound' && typeof value !== 'string') return fail(400, 'M_BAD_JSON', 'invalid_rule', 'The sound tweak needs a string value.');
      if (set_tweak === 'highlight' && value !== undefined && typeof value !== 'boolean') {
        return fail(400, 'M_BAD_JSON', 'invalid_rule', 'The highlight tweak value must be a boolean.');
      }
      out.push({ ...(a as { set_tweak: string }) });
    } else {
      return fail(400, 'M_BAD_JSON', 'invalid_rule', 'Each action must be a string or an object with a "set_tweak" string.');
    }
  }
  return { ok: true, value: out };
}

function validateConditions(conditions: unknown): RuleEditResult<PushCondition[]> {
  if (conditions === undefined) return { ok: true, value: [] };
  if (!Array.isArray(conditions)) return fail(400, 'M_BAD_JSON', 'invalid_rule', '"conditions" must be an array.');
  const out: PushCondition[] = [];
  for (const c of conditions as unknown[]) {
    if (c === null || typeof c !== 'object' || Array.isArray(c) || typeof (c as { kind?: unknown }).kind !== 'string') {
      return fail(400, 'M_BAD_JSON', 'invalid_rule', 'Each condition must be an object with a "kind" string.');
    }
    // Unknown condition kinds are allowed: they just never match.
    out.push({ ...(c as PushCondition) });
  }
  return { ok: true, value: out };
}

// ---------------------------------------------------------------------------
// Lookup

/** The rule `ruleId` of `kind` in a ruleset (e.g. the merged one), if any. */
export function findRule(set: PushRuleSet, kind: string, ruleId: string): PushRule | undefined {
  if (!validateKind(kind)) return undefined;
  const list = set[kind];
  for (let i = 0; i < list.length; i++) if (list[i]!.rule_id === ruleId) return list[i];
  return undefined;
}

function isDefaultRule(kind: PushRuleKind, ruleId: string): boolean {
  return DEFAULT_RULE_IDS[kind].has(ruleId);
}

/** The user's own rules of a kind; a document stored before a kind existed has none. */
function userList(rules: UserPushRules, kind: PushRuleKind): PushRule[] {
  return rules[kind] ?? [];
}

function withKind(rules: UserPushRules, kind: PushRuleKind, list: PushRule[]): UserPushRules {
  const out: UserPushRules = { ...rules };
  out[kind] = list;
  return out;
}

// ---------------------------------------------------------------------------
// Editing

/**
 * PUT /pushrules/global/{kind}/{ruleId}: adds a user-defined rule, or updates
 * the one with the same id (its `enabled` is kept).
 *
 * Position: `before` makes it the next more important rule than that user
 * rule, otherwise `after` the next less important one (`before` wins if both
 * are given; both must exist). Anchors naming server-default rules are
 * rejected. Without anchors a new rule becomes the most important user rule
 * of its kind and an updated rule keeps its place.
 */
export function insertUserRule(
  rules: UserPushRules,
  kind: string,
  ruleId: string,
  rule: NewPushRule,
  anchors: { before?: string; after?: string } = {},
): RuleEditResult<UserPushRules> {
  if (!validateKind(kind)) return fail(400, 'M_INVALID_PARAM', 'invalid_kind', `Unknown push rule kind: ${String(kind)}`);
  // MSC4306: the kind holds server-default rules only, and a client's attempt to add one is M_INVALID_PARAM.
  if (kind === 'postcontent') return fail(400, 'M_INVALID_PARAM', 'invalid_kind', 'Rules of kind postcontent cannot be added.');
  const id = validateRuleId(ruleId);
  if (!id.ok) return id;
  if (rule === null || typeof rule !== 'object') return fail(400, 'M_BAD_JSON', 'invalid_rule', 'The rule must be an object.');

  const actions = validateActions(rule.actions);
  if (!actions.ok) return actions;

  const list = userList(rules, kind);
  const existingIndex = list.findIndex((r) => r.rule_id === ruleId);
  const existing = existingIndex >= 0 ? list[existingIndex] : undefined;

  const next: PushRule = {
    rule_id: ruleId,
    default: false,
    enabled: existing ? existing.enabled : true,
    actions: actions.value,
  };
  if (kind === 'override' || kind === 'underride') {
    const conditions = validateConditions(rule.conditions);
    if (!conditions.ok) return conditions;
    next.conditions = conditions.value;
  } else if (kind === 'content') {
    if (typeof rule.pattern !== 'string') {
      return fail(400, 'M_MISSING_PARAM', 'invalid_rule', 'Content rules need a "pattern" string.');
    }
    next.pattern = rule.pattern;
  }

  const { before, after } = anchors;
  for (const anchor of [before, after]) {
    if (anchor === undefined) continue;
    if (anchor.startsWith('.')) {
      return fail(400, 'M_UNKNOWN', 'default_anchor', `Cannot add a rule relative to a server-default rule: ${anchor}`);
    }
    if (anchor === ruleId || !list.some((r) => r.rule_id === anchor)) {
      return fail(400, 'M_UNKNOWN', 'unknown_anchor', `before/after rule not found: ${anchor}`);
    }
  }

  let out: PushRule[];
  if (before !== undefined || after !== undefined) {
    out = list.filter((r) => r.rule_id !== ruleId);
    const anchor = (before ?? after)!;
    const at = out.findIndex((r) => r.rule_id === anchor);
    out.splice(before !== undefined ? at : at + 1, 0, next);
  } else if (existing) {
    out = list.slice();
    out[existingIndex] = next;
  } else {
    out = [next, ...list];
  }
  return { ok: true, value: withKind(rules, kind, out) };
}

function editOverride(
  rules: UserPushRules,
  kind: PushRuleKind,
  ruleId: string,
  change: (o: DefaultRuleOverride, d: PushRule) => void,
): UserPushRules {
  const d = findRule(defaultPushRules('@_:_'), kind, ruleId)!;
  const key = defaultOverrideKey(kind, ruleId);
  const defaults = { ...(rules.defaults ?? {}) };
  const o: DefaultRuleOverride = { ...(Object.prototype.hasOwnProperty.call(defaults, key) ? defaults[key] : {}) };
  change(o, d);
  // Forget changes that restore the default, so later spec changes reach the user.
  if (o.enabled === d.enabled) delete o.enabled;
  if (o.actions !== undefined && JSON.stringify(o.actions) === JSON.stringify(d.actions)) delete o.actions;
  if (o.enabled === undefined && o.actions === undefined) delete defaults[key];
  else defaults[key] = o;
  const out: UserPushRules = { ...rules };
  if (Object.keys(defaults).length > 0) out.defaults = defaults;
  else delete out.defaults;
  return out;
}

/** PUT .../{kind}/{ruleId}/enabled, for user-defined and server-default rules. */
export function setEnabled(rules: UserPushRules, kind: string, ruleId: string, enabled: boolean): RuleEditResult<UserPushRules> {
  if (!validateKind(kind)) return fail(400, 'M_INVALID_PARAM', 'invalid_kind', `Unknown push rule kind: ${String(kind)}`);
  if (typeof enabled !== 'boolean') return fail(400, 'M_BAD_JSON', 'invalid_rule', '"enabled" must be a boolean.');
  if (ruleId.startsWith('.')) {
    // The per-rule dependency on the user id does not matter here.
    if (!isDefaultRule(kind, ruleId)) return notFound();
    return { ok: true, value: editOverride(rules, kind, ruleId, (o) => (o.enabled = enabled)) };
  }
  const list = userList(rules, kind);
  const i = list.findIndex((r) => r.rule_id === ruleId);
  if (i < 0) return notFound();
  const out = list.slice();
  out[i] = { ...list[i]!, enabled };
  return { ok: true, value: withKind(rules, kind, out) };
}

/** PUT .../{kind}/{ruleId}/actions, for user-defined and server-default rules. */
export function setActions(rules: UserPushRules, kind: string, ruleId: string, actions: PushAction[]): RuleEditResult<UserPushRules> {
  if (!validateKind(kind)) return fail(400, 'M_INVALID_PARAM', 'invalid_kind', `Unknown push rule kind: ${String(kind)}`);
  const valid = validateActions(actions);
  if (!valid.ok) return valid;
  if (ruleId.startsWith('.')) {
    if (!isDefaultRule(kind, ruleId)) return notFound();
    return { ok: true, value: editOverride(rules, kind, ruleId, (o) => (o.actions = valid.value)) };
  }
  const list = userList(rules, kind);
  const i = list.findIndex((r) => r.rule_id === ruleId);
  if (i < 0) return notFound();
  const out = list.slice();
  out[i] = { ...list[i]!, actions: valid.value };
  return { ok: true, value: withKind(rules, kind, out) };
}

/** DELETE .../{kind}/{ruleId}: user-defined rules only. */
export function deleteUserRule(rules: UserPushRules, kind: string, ruleId: string): RuleEditResult<UserPushRules> {
  if (!validateKind(kind)) return fail(400, 'M_INVALID_PARAM', 'invalid_kind', `Unknown push rule kind: ${String(kind)}`);
  if (ruleId.startsWith('.')) {
    if (isDefaultRule(kind, ruleId)) {
      // The spec only lists 404 for DELETE; Synapse answers 404 here too.
      return fail(404, 'M_NOT_FOUND', 'cannot_delete_default', 'Server-default push rules cannot be deleted.');
    }
    return notFound();
  }
  const list = userList(rules, kind);
  if (!list.some((r) => r.rule_id === ruleId)) return notFound();
  return { ok: true, value: withKind(rules, kind, list.filter((r) => r.rule_id !== ruleId)) };
}

// ---------------------------------------------------------------------------
// Merging

/**
 * The complete ruleset for `userId`: the server defaults with the user's
 * `enabled`/`actions` changes applied, and the user's rules placed before the
 * defaults of their kind, except that `.m.rule.master` stays the first
 * override rule. Stored rules whose id starts with "." are ignored, as are
 * changes to default rules that no longer exist.
 */
export function mergeWithDefaults(
  userRules: UserPushRules | PushRuleSet | null | undefined,
  userId: string,
  options: DefaultRuleOptions = ALL_DEFAULTS,
): PushRuleSet {
  const d = defaultPushRules(userId, options);
  const overrides = userRules && 'defaults' in userRules ? userRules.defaults : undefined;
  if (overrides) {
    for (const kind of PUSH_RULE_KINDS) {
      for (const r of d[kind]) {
        const key = defaultOverrideKey(kind, r.rule_id);
        if (!Object.prototype.hasOwnProperty.call(overrides, key)) continue;
        const o = overrides[key];
        if (o === null || typeof o !== 'object') continue;
        if (typeof o.enabled === 'boolean') r.enabled = o.enabled;
        if (Array.isArray(o.actions)) r.actions = o.actions.slice();
      }
    }
  }
  const user = (kind: PushRuleKind): PushRule[] => {
    const list = userRules?.[kind];
    if (!Array.isArray(list)) return [];
    return list.filter(
      (r) => r !== null && typeof r === 'object' && typeof r.rule_id === 'string' && !r.rule_id.startsWith('.'),
    );
  };
  const masterIndex = d.override.findIndex((r) => r.rule_id === '.m.rule.master');
  const master = masterIndex >= 0 ? d.override.splice(masterIndex, 1) : [];
  return {
    override: [...master, ...user('override'), ...d.override],
    content: [...user('content'), ...d.content],
    // Server-default rules only (insertUserRule refuses others).
    postcontent: d.postcontent,
    room: [...user('room'), ...d.room],
    sender: [...user('sender'), ...d.sender],
    underride: [...user('underride'), ...d.underride],
  };
}
