/**
 * Power levels as the authorisation rules see them (spec: m.room.power_levels
 * schema; rooms/v1..v12 "Authorisation rules"; fragments v1-stringy/floaty
 * power levels).
 *
 * Values are parsed once into a `PowerLevels` record whose defaults are the
 * spec's: users_default 0, events_default 0, state_default 50, ban/kick/redact
 * 50, invite 0, notifications.room 50. The schema says state_default is 50
 * both when the key is missing and when there is no power levels event at all.
 *
 * Room creators: in v1-v11, without a power levels event the creator has 100.
 * In v12 the creators (create sender + additional_creators) have an infinitely
 * high level, represented as `Infinity` so ordinary comparisons just work.
 */

import type { JsonObject, JsonValue, Pdu } from './types.js';
import type { RoomVersion } from './room-versions.js';

/** The level of a v12 room creator. */
export const CREATOR_POWER_LEVEL = Number.POSITIVE_INFINITY;

/** The level the creator has in v1-v11 rooms that have no m.room.power_levels event. */
export const IMPLICIT_CREATOR_LEVEL = 100;

export const PL_DEFAULTS = Object.freeze({
  usersDefault: 0,
  eventsDefault: 0,
  stateDefault: 50,
  ban: 50,
  kick: 50,
  redact: 50,
  invite: 0,
  notificationsRoom: 50,
});

/** Who counts as a room creator and whether creators are privileged (v12). */
export interface PowerContext {
  creators: ReadonlySet<string>;
  privilegedCreators: boolean;
}

export interface PowerLevels {
  /** Explicit user levels. Built on first access when parsed from an event; prefer userPowerLevel. */
  readonly users: ReadonlyMap<string, number>;
  usersDefault: number;
  events: ReadonlyMap<string, number>;
  eventsDefault: number;
  stateDefault: number;
  ban: number;
  kick: number;
  redact: number;
  invite: number;
  notifications: ReadonlyMap<string, number>;
  /** False when the room has no m.room.power_levels event and defaults apply. */
  fromEvent: boolean;
  ctx: PowerContext;
}

/** The scalar properties whose alteration is checked by the power levels auth rule. */
export const PL_SCALAR_KEYS = [
  'users_default', 'events_default', 'state_default', 'ban', 'redact', 'kick', 'invite',
] as const;

/**
 * Creators of a room from its m.room.create event. v1-v10: `content.creator`;
 * v11: the sender; v12: the sender plus `content.additional_creators`.
 */
export function roomCreators(create: Pdu, version: RoomVersion): Set<string> {
  const out = new Set<string>();
  if (version.implicitRoomCreator) {
    out.add(create.sender);
  } else {
    const c = create.content?.creator;
    // A v1-v10 create without `creator` is rejected by the auth rules; falling
    // back to the sender keeps callers that handle such data from crashing.
    out.add(typeof c === 'string' ? c : create.sender);
  }
  if (version.privilegedCreators) {
    const extra = create.content?.additional_creators;
    if (Array.isArray(extra)) for (const u of extra) if (typeof u === 'string') out.add(u);
  }
  return out;
}

export function powerContext(create: Pdu | undefined, version: RoomVersion): PowerContext {
  return {
    creators: create ? roomCreators(create, version) : new Set(),
    privilegedCreators: version.privilegedCreators,
  };
}

const STRINGY_INT = /^\s*[+-]?\d+\s*$/;

/**
 * One power level value as the room version accepts it, or undefined when it
 * is not a valid level there. v1-v9 accept integer strings; v1-v5 (no strict
 * canonical JSON) also accept floats, truncated toward zero.
 */
export function parsePowerLevelValue(v: JsonValue | undefined, version: RoomVersion): number | undefined {
  if (typeof v === 'number') {
    if (Number.isInteger(v)) return version.integerPowerLevels && !Number.isSafeInteger(v) ? undefined : v;
    if (!version.strictCanonicalJson && Number.isFinite(v)) return Math.trunc(v);
    return undefined;
  }
  if (typeof v === 'string' && !version.integerPowerLevels && STRINGY_INT.test(v)) {
    const n = Number.parseInt(v.trim(), 10);
    return Number.isFinite(n) ? n : undefined;
  }
  return undefined;
}

function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function parseLevelMap(v: JsonValue | undefined, version: RoomVersion): Map<string, number> {
  const out = new Map<string, number>();
  if (!isObject(v)) return out;
  for (const [k, raw] of Object.entries(v)) {
    const n = parsePowerLevelValue(raw, version);
    if (n !== undefined) out.set(k, n);
  }
  return out;
}

// Parsing a large power levels event for every auth check would dominate state
// resolution, so parsed results are memoised per content object. Event content
// is treated as immutable once it is part of a PDU.
const parseCache = new WeakMap<JsonObject, { key: string; pl: PowerLevels }>();

/**
 * Parse `m.room.power_levels` content (or its absence) into levels with the
 * spec's defaults. `creators` are the room's creators (see roomCreators).
 */
export function parsePowerLevels(
  content: JsonObject | undefined,
  version: RoomVersion,
  creators: Iterable<string>,
): PowerLevels {
  const creatorSet = creators instanceof Set ? (creators as Set<string>) : new Set(creators);
  const ctx: PowerContext = { creators: creatorSet, privilegedCreators: version.privilegedCreators };
  if (content === undefined) {
    const users = new Map<string, number>();
    // v1-v11: "If the room contains no m.room.power_levels event, the room's
    // creator has a power level of 100". v12 creators are infinite anyway.
    if (!version.privilegedCreators) for (const c of creatorSet) users.set(c, IMPLICIT_CREATOR_LEVEL);
    return {
      users,
      usersDefault: PL_DEFAULTS.usersDefault,
      events: new Map(),
      eventsDefault: PL_DEFAULTS.eventsDefault,
      stateDefault: PL_DEFAULTS.stateDefault,
      ban: PL_DEFAULTS.ban,
      kick: PL_DEFAULTS.kick,
      redact: PL_DEFAULTS.redact,
      invite: PL_DEFAULTS.invite,
      notifications: new Map([['room', PL_DEFAULTS.notificationsRoom]]),
      fromEvent: false,
      ctx,
    };
  }
  const cacheKey = `${version.id}\u0000${[...creatorSet].sort().join('\u0000')}`;
  const hit = parseCache.get(content);
  if (hit && hit.key === cacheKey) return hit.pl;

  const num = (k: string, d: number): number => parsePowerLevelValue(content[k], version) ?? d;
  const notifications = parseLevelMap(content.notifications, version);
  if (!notifications.has('room')) notifications.set('room', PL_DEFAULTS.notificationsRoom);
  // Enumerating a large `users` object costs far more than the handful of
  // lookups an auth check makes, so the map is only built if asked for.
  const rawUsers = isObject(content.users) ? content.users : undefined;
  let usersMap: Map<string, number> | undefined;
  const pl: PowerLevels = {
    get users(): ReadonlyMap<string, number> {
      return (usersMap ??= parseLevelMap(rawUsers, version));
    },
    usersDefault: num('users_default', PL_DEFAULTS.usersDefault),
    events: parseLevelMap(content.events, version),
    eventsDefault: num('events_default', PL_DEFAULTS.eventsDefault),
    stateDefault: num('state_default', PL_DEFAULTS.stateDefault),
    ban: num('ban', PL_DEFAULTS.ban),
    kick: num('kick', PL_DEFAULTS.kick),
    redact: num('redact', PL_DEFAULTS.redact),
    invite: num('invite', PL_DEFAULTS.invite),
    notifications,
    fromEvent: true,
    ctx,
  };
  if (rawUsers) rawUserLevels.set(pl, { raw: rawUsers, version });
  parseCache.set(content, { key: cacheKey, pl });
  return pl;
}

const rawUserLevels = new WeakMap<PowerLevels, { raw: JsonObject; version: RoomVersion }>();

function explicitUserLevel(pl: PowerLevels, userId: string): number | undefined {
  const r = rawUserLevels.get(pl);
  if (!r) return pl.users.get(userId);
  return Object.prototype.hasOwnProperty.call(r.raw, userId) ? parsePowerLevelValue(r.raw[userId], r.version) : undefined;
}

/** A user's power level; v12 creators are `Infinity`. */
export function userPowerLevel(pl: PowerLevels, userId: string, ctx: PowerContext = pl.ctx): number {
  if (ctx.privilegedCreators && ctx.creators.has(userId)) return CREATOR_POWER_LEVEL;
  return explicitUserLevel(pl, userId) ?? pl.usersDefault;
}

/** The event type's *required power level* (server-server-api "Definitions"). */
export function requiredPowerForEvent(pl: PowerLevels, type: string, isState: boolean): number {
  return pl.events.get(type) ?? (isState ? pl.stateDefault : pl.eventsDefault);
}

export function canSendEvent(
  pl: PowerLevels, userId: string, type: string, isState: boolean, ctx: PowerContext = pl.ctx,
): boolean {
  return userPowerLevel(pl, userId, ctx) >= requiredPowerForEvent(pl, type, isState);
}

/** Level needed for a notification key such as `room` (@room); unknown keys default to 50. */
export function notificationPowerLevel(pl: PowerLevels, key: string): number {
  return pl.notifications.get(key) ?? PL_DEFAULTS.notificationsRoom;
}

/** Whether `userId` may trigger the notification `key` (push rule sender_notification_permission). */
export function canSetNotification(
  pl: PowerLevels, userId: string, key: string, ctx: PowerContext = pl.ctx,
): boolean {
  return userPowerLevel(pl, userId, ctx) >= notificationPowerLevel(pl, key);
}

// ---------------------------------------------------------------------------
// Identifiers needed by the validation rules. Kept local so core/auth does not
// depend on the id module's stricter, creation-time grammar: over federation
// the historical user ID grammar must still be accepted (appendices).

const IPV4 = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;
const IPV6_LITERAL = /^\[[0-9A-Fa-f:.]{2,45}\]$/;
const DNS_NAME = /^[0-9A-Za-z.-]{1,255}$/;

export function isValidServerName(s: string): boolean {
  let host = s;
  const m = /^(.*):(\d{1,5})$/.exec(s);
  if (m && !s.endsWith(']')) host = m[1]!;
  if (host.length === 0) return false;
  if (host.startsWith('[')) return IPV6_LITERAL.test(host);
  if (IPV4.test(host)) return host.split('.').every((p) => Number(p) <= 255);
  return DNS_NAME.test(host);
}

function utf8Length(s: string): number {
  let n = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0)!;
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}

// Power levels events repeat the same user IDs over and over; remembering the
// valid ones keeps validating a large `users` map cheap. Bounded by clearing.
const knownValidUserIds = new Set<string>();
const KNOWN_VALID_LIMIT = 100_000;

/** Historical user ID grammar: any localpart without `:` or NUL, a valid server name, <= 255 bytes. */
export function isValidUserId(s: string): boolean {
  if (knownValidUserIds.has(s)) return true;
  if (!checkUserIdGrammar(s)) return false;
  if (knownValidUserIds.size >= KNOWN_VALID_LIMIT) knownValidUserIds.clear();
  knownValidUserIds.add(s);
  return true;
}

function checkUserIdGrammar(s: string): boolean {
  if (typeof s !== 'string' || !s.startsWith('@')) return false;
  // A UTF-16 unit is at most 3 UTF-8 bytes, so short ids need no byte count.
  if (s.length > 85 && utf8Length(s) > 255) return false;
  const colon = s.indexOf(':');
  if (colon < 0) return false;
  if (s.slice(1, colon).includes('\u0000')) return false;
  return isValidServerName(s.slice(colon + 1));
}

// ---------------------------------------------------------------------------
// Validation of a new m.room.power_levels event (auth rule "If type is
// m.room.power_levels", numbered 10 in v1-v5 and v12, 9 in v6-v11).

function isIntegerLevel(v: JsonValue | undefined, version: RoomVersion): boolean {
  return parsePowerLevelValue(v, version) !== undefined;
}

// The same power levels event is validated on receipt, against the state
// before it, against current state and in every state resolution it takes
// part in; with thousands of users that is worth remembering per content.
const validationCache = new WeakMap<JsonObject, { key: string; result: string | undefined }>();

/**
 * The structural part of the rule: value types (v10+ strict integers), the
 * `users` map, and (v12) that creators are not listed. Returns a reason on
 * failure.
 */
export function validatePowerLevelsContent(
  content: JsonObject,
  version: RoomVersion,
  creators: Iterable<string> = [],
): string | undefined {
  const creatorList = version.privilegedCreators ? [...creators].sort() : [];
  const key = `${version.id}\u0000${creatorList.join('\u0000')}`;
  const hit = validationCache.get(content);
  if (hit && hit.key === key) return hit.result;
  const result = validateUncached(content, version, creatorList);
  validationCache.set(content, { key, result });
  return result;
}

function validateUncached(content: JsonObject, version: RoomVersion, creators: string[]): string | undefined {
  if (version.integerPowerLevels) {
    for (const k of PL_SCALAR_KEYS) {
      if (k in content && !isIntegerLevel(content[k], version)) return `power levels: ${k} is not an integer`;
    }
    for (const k of ['events', 'notifications'] as const) {
      if (!(k in content)) continue;
      const m = content[k];
      if (!isObject(m)) return `power levels: ${k} is not an object`;
      for (const [sub, v] of Object.entries(m)) {
        if (!isIntegerLevel(v, version)) return `power levels: ${k}.${sub} is not an integer`;
      }
    }
  }
  if ('users' in content) {
    const users = content.users;
    if (!isObject(users)) return 'power levels: users is not an object';
    for (const u in users) {
      if (!isValidUserId(u)) return `power levels: users key ${JSON.stringify(u)} is not a user ID`;
      if (!isIntegerLevel(users[u], version)) return `power levels: users.${u} is not an integer`;
    }
    if (version.privilegedCreators) {
      for (const c of creators) {
        if (Object.prototype.hasOwnProperty.call(users, c)) return `power levels: room creator ${c} may not be listed in users`;
      }
    }
  }
  return undefined;
}

const EMPTY: JsonObject = Object.freeze({}) as JsonObject;

function asLevelObject(v: JsonValue | undefined): JsonObject {
  return isObject(v) ? v : EMPTY;
}

const hasOwn = (o: JsonObject, k: string): boolean => Object.prototype.hasOwnProperty.call(o, k);

/**
 * Visits the entries of two level maps whose parsed values differ, as
 * (key, old, new) with undefined for absent/invalid. Identical raw values are
 * skipped without parsing, which is nearly every entry of a large map.
 */
function forEachChangedLevel(
  oldRaw: JsonValue | undefined,
  newRaw: JsonValue | undefined,
  version: RoomVersion,
  visit: (key: string, oldV: number | undefined, newV: number | undefined) => string | undefined,
): string | undefined {
  const oldM = asLevelObject(oldRaw);
  const newM = asLevelObject(newRaw);
  for (const k of Object.keys(oldM)) {
    const o = oldM[k];
    const n = hasOwn(newM, k) ? newM[k] : undefined;
    if (o === n) continue;
    const ov = parsePowerLevelValue(o, version);
    const nv = parsePowerLevelValue(n, version);
    if (ov === nv) continue;
    const why = visit(k, ov, nv);
    if (why) return why;
  }
  for (const k of Object.keys(newM)) {
    if (hasOwn(oldM, k)) continue;
    const nv = parsePowerLevelValue(newM[k], version);
    if (nv === undefined) continue;
    const why = visit(k, undefined, nv);
    if (why) return why;
  }
  return undefined;
}

/**
 * The "who may change what" part of the rule, given the previous power
 * levels content (undefined when the room has none: then anything goes) and
 * the sender's current level. Values are compared after parsing, so "50" and
 * 50 are the same level in versions that accept strings.
 */
export function checkPowerLevelsChange(
  previous: JsonObject | undefined,
  next: JsonObject,
  sender: string,
  senderLevel: number,
  version: RoomVersion,
): string | undefined {
  if (previous === undefined) return undefined;

  for (const k of PL_SCALAR_KEYS) {
    const oldV = parsePowerLevelValue(previous[k], version);
    const newV = parsePowerLevelValue(next[k], version);
    if (oldV === newV) continue;
    if (oldV !== undefined && oldV > senderLevel) return `cannot change ${k} from ${oldV}: above sender level ${senderLevel}`;
    if (newV !== undefined && newV > senderLevel) return `cannot set ${k} to ${newV}: above sender level ${senderLevel}`;
  }

  // v6 added `notifications` to the rule alongside `events`.
  const maps = version.limitNotificationsPowerLevels ? (['events', 'notifications'] as const) : (['events'] as const);
  for (const m of maps) {
    const why = forEachChangedLevel(previous[m], next[m], version, (key, oldV, newV) => {
      if (oldV !== undefined && oldV > senderLevel) return `cannot change ${m}.${key} from ${oldV}: above sender level ${senderLevel}`;
      if (newV !== undefined && newV > senderLevel) return `cannot set ${m}.${key} to ${newV}: above sender level ${senderLevel}`;
      return undefined;
    });
    if (why) return why;
  }

  return forEachChangedLevel(previous.users, next.users, version, (user, oldV, newV) => {
    if (oldV !== undefined && user !== sender && oldV >= senderLevel) {
      return `cannot change the level of ${user} (${oldV}): not below sender level ${senderLevel}`;
    }
    if (newV !== undefined && newV > senderLevel) return `cannot set ${user} to ${newV}: above sender level ${senderLevel}`;
    return undefined;
  });
}
