/**
 * Authorisation rules for room versions 1-12 (spec: rooms/fragments/
 * v1-auth-rules.md, v3-auth-rules.md, v8-auth-rules.md, rooms/v6, v7, v10,
 * v11, v12; server-server-api "Auth events selection").
 *
 * `checkAuth` evaluates the state-dependent rules against a lookup of the
 * relevant state (the event's auth events, the state before it, or the
 * current state: the pipeline calls it three times). The rules about the
 * *list* of auth events itself (duplicates, unexpected entries, room ids) are
 * in `checkAuthEventList`, which the pipeline runs once on receipt.
 *
 * Event signatures are outside this module: `join_authorised_via_users_server`
 * is checked through the optional hook in `AuthOptions`; without it only the
 * structure is checked (a signature from the right server is present). A
 * third-party invite's `signed` object is verified here against the public
 * keys of its `m.room.third_party_invite` event (pure Ed25519, no key lookup),
 * unless a hook is given.
 */

import type { EventWithId, JsonObject, JsonValue, Pdu } from './types.js';
import { stateKey } from './types.js';
import { verifySignedByAnyKey } from './signing.js';
import { getRoomVersion, type RoomVersion } from './room-versions.js';
import {
  checkPowerLevelsChange,
  isValidUserId,
  parsePowerLevels,
  requiredPowerForEvent,
  roomCreators,
  userPowerLevel,
  validatePowerLevelsContent,
  type PowerLevels,
} from './power-levels.js';

export type AuthResult = { allowed: true } | { allowed: false; reason: string };
export type AuthStateLookup = (type: string, stateKey: string) => EventWithId | undefined;

export interface AuthOptions {
  /**
   * Whether any signature in `signed` (content.third_party_invite.signed)
   * verifies with one of the invite's public keys (base64 ed25519). Default:
   * `verifySignedByAnyKey`.
   */
  verifyThirdPartyInvite?: (signed: JsonObject, publicKeys: string[]) => boolean;
  /** Whether `pdu` carries a valid signature from `serverName`. */
  isSignedBy?: (pdu: Pdu, serverName: string) => boolean;
}

export const M_CREATE = 'm.room.create';
export const M_MEMBER = 'm.room.member';
export const M_POWER_LEVELS = 'm.room.power_levels';
export const M_JOIN_RULES = 'm.room.join_rules';
export const M_THIRD_PARTY_INVITE = 'm.room.third_party_invite';
export const M_ALIASES = 'm.room.aliases';
export const M_REDACTION = 'm.room.redaction';

const ALLOW: AuthResult = Object.freeze({ allowed: true }) as AuthResult;
function reject(reason: string): AuthResult {
  return { allowed: false, reason };
}

// ---------------------------------------------------------------------------
// Small accessors

/** Event id of a prev_events/auth_events entry: v1/v2 use [id, hashes] pairs. */
export function eventRefId(ref: string | [string, JsonObject]): string {
  return typeof ref === 'string' ? ref : ref[0];
}

export function authEventIds(pdu: Pdu): string[] {
  return Array.isArray(pdu.auth_events) ? pdu.auth_events.map(eventRefId) : [];
}

export function prevEventIds(pdu: Pdu): string[] {
  return Array.isArray(pdu.prev_events) ? pdu.prev_events.map(eventRefId) : [];
}

/** Server part of a `@user:server`, `!room:server` or `$event:server` id (after the first colon). */
export function domainOf(id: string): string | undefined {
  const i = typeof id === 'string' ? id.indexOf(':') : -1;
  return i < 0 ? undefined : id.slice(i + 1);
}

function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isStateEvent(pdu: Pdu): boolean {
  return typeof pdu.state_key === 'string';
}

function membershipOf(ev: EventWithId | undefined): string | undefined {
  const m = ev?.pdu.content?.membership;
  return typeof m === 'string' ? m : undefined;
}

/**
 * The target of a redaction: top-level `redacts` until v10, `content.redacts`
 * from v11 (rooms/v11 "Moving the redacts property").
 */
export function redactsOf(pdu: Pdu, version: RoomVersion): string | undefined {
  const r = version.redaction === 'v11' ? pdu.content?.redacts : pdu.redacts;
  return typeof r === 'string' ? r : undefined;
}

/** A lookup over a list of events keyed by (type, state_key); later entries win. */
export function authStateFromEvents(events: Iterable<EventWithId>): AuthStateLookup {
  const m = new Map<string, EventWithId>();
  for (const e of events) if (isStateEvent(e.pdu)) m.set(stateKey(e.pdu.type, e.pdu.state_key!), e);
  return (type, sk) => m.get(stateKey(type, sk));
}

// ---------------------------------------------------------------------------
// Auth events selection (server-server-api)

/** The (type, state_key) pairs an event's auth_events should be drawn from. */
export function authEventSelection(pdu: Pdu, version: RoomVersion): Array<[string, string]> {
  if (pdu.type === M_CREATE) return [];
  const out: Array<[string, string]> = [];
  // v12: the room id is the create event's hash, so it is never an auth event.
  if (!version.roomIdIsCreateEventHash) out.push([M_CREATE, '']);
  out.push([M_POWER_LEVELS, '']);
  out.push([M_MEMBER, pdu.sender]);
  if (pdu.type === M_MEMBER && typeof pdu.state_key === 'string') {
    const content = isObject(pdu.content) ? pdu.content : {};
    const membership = content.membership;
    out.push([M_MEMBER, pdu.state_key]);
    if (membership === 'join' || membership === 'invite' || membership === 'knock') out.push([M_JOIN_RULES, '']);
    if (membership === 'invite' && isObject(content.third_party_invite)) {
      const signed = content.third_party_invite.signed;
      if (isObject(signed) && typeof signed.token === 'string') out.push([M_THIRD_PARTY_INVITE, signed.token]);
    }
    const via = content.join_authorised_via_users_server;
    if (membership === 'join' && version.restrictedJoinRuleSupported && typeof via === 'string') {
      out.push([M_MEMBER, via]);
    }
  }
  return dedupeKeys(out);
}

function dedupeKeys(keys: Array<[string, string]>): Array<[string, string]> {
  const seen = new Set<string>();
  return keys.filter(([t, k]) => {
    const key = stateKey(t, k);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

/**
 * Rules on the event's own auth_events list ("Considering the event's
 * auth_events"): no duplicate (type, state_key), nothing outside the
 * selection, same room, and (before v12) a create event present. Whether the
 * entries were themselves rejected is the caller's knowledge.
 */
export function checkAuthEventList(pdu: Pdu, authEvents: EventWithId[], version: RoomVersion): AuthResult {
  if (pdu.type === M_CREATE) return ALLOW;
  const allowed = new Set(authEventSelection(pdu, version).map(([t, k]) => stateKey(t, k)));
  const seen = new Set<string>();
  let sawCreate = false;
  for (const a of authEvents) {
    if (!isStateEvent(a.pdu)) return reject(`auth event ${a.eventId} is not a state event`);
    const k = stateKey(a.pdu.type, a.pdu.state_key!);
    if (seen.has(k)) return reject(`duplicate auth event for (${a.pdu.type}, ${a.pdu.state_key})`);
    seen.add(k);
    if (!allowed.has(k)) return reject(`unexpected auth event (${a.pdu.type}, ${a.pdu.state_key})`);
    if (a.pdu.type === M_CREATE) sawCreate = true;
    if (a.pdu.room_id !== pdu.room_id) return reject(`auth event ${a.eventId} is from another room`);
  }
  if (!version.roomIdIsCreateEventHash && !sawCreate) return reject('no m.room.create event among auth events');
  return ALLOW;
}

// ---------------------------------------------------------------------------
// The rules

interface Ctx {
  event: EventWithId;
  pdu: Pdu;
  version: RoomVersion;
  state: AuthStateLookup;
  create: EventWithId;
  pl: PowerLevels;
  opts: AuthOptions;
}

function levelOf(ctx: Ctx, userId: string): number {
  return userPowerLevel(ctx.pl, userId);
}

function membershipInState(ctx: Ctx, userId: string): string | undefined {
  return membershipOf(ctx.state(M_MEMBER, userId));
}

function joinRuleInState(ctx: Ctx): string | undefined {
  const ev = ctx.state(M_JOIN_RULES, '');
  // The spec gives no default; a room without m.room.join_rules is treated as
  // invite-only, the most restrictive rule that still honours invites.
  if (!ev) return 'invite';
  const r = ev.pdu.content?.join_rule;
  return typeof r === 'string' ? r : undefined;
}

/** Rule 1: m.room.create. */
function checkCreateEvent(pdu: Pdu, version: RoomVersion): AuthResult {
  if (prevEventIds(pdu).length > 0) return reject('create event has prev_events');
  if (version.roomIdIsCreateEventHash) {
    // v12: the room id is derived from this event, so it must not carry one.
    if (pdu.room_id !== undefined) return reject('v12 create event must not have a room_id');
  } else if (domainOf(pdu.room_id) !== domainOf(pdu.sender)) {
    return reject('room_id domain does not match sender domain');
  }
  const content = isObject(pdu.content) ? pdu.content : {};
  if ('room_version' in content) {
    const rv = content.room_version;
    if (typeof rv !== 'string' || getRoomVersion(rv) === undefined) return reject('unrecognised room_version');
  }
  if (version.privilegedCreators && 'additional_creators' in content) {
    const extra = content.additional_creators;
    if (!Array.isArray(extra) || !extra.every((u) => typeof u === 'string' && isValidUserId(u))) {
      return reject('additional_creators is not an array of user IDs');
    }
  }
  if (!version.implicitRoomCreator && typeof content.creator !== 'string') return reject('create event has no creator');
  return ALLOW;
}

/** v12 rule 2: room_id is the create event's id with `!` for `$`. */
function roomIdMatchesCreate(pdu: Pdu, create: EventWithId): boolean {
  return typeof pdu.room_id === 'string' && pdu.room_id.startsWith('!') && create.eventId.startsWith('$')
    && pdu.room_id.slice(1) === create.eventId.slice(1);
}

/** "m.federate set to false and the sender domain differs from the creator's". */
function federationForbidden(pdu: Pdu, create: Pdu): boolean {
  return create.content?.['m.federate'] === false && domainOf(pdu.sender) !== domainOf(create.sender);
}

/** v1-v5 rule 4: m.room.aliases is authorised by the sender's domain alone. */
function checkAliasesEvent(pdu: Pdu): AuthResult {
  if (!isStateEvent(pdu)) return reject('aliases event has no state_key');
  if (domainOf(pdu.sender) !== pdu.state_key) return reject("aliases state_key does not match sender's domain");
  return ALLOW;
}

/** "If the only previous event is an m.room.create and the state_key is the creator". */
function isCreatorsFirstJoin(ctx: Ctx): boolean {
  const prev = prevEventIds(ctx.pdu);
  if (prev.length !== 1 || prev[0] !== ctx.create.eventId) return false;
  const create = ctx.create.pdu;
  const creator = ctx.version.implicitRoomCreator ? create.sender : create.content?.creator;
  return ctx.pdu.state_key === creator;
}

function joinRuleAdmitsInvitees(ctx: Ctx, rule: string | undefined): boolean {
  return rule === 'invite' || (ctx.version.knockingSupported && rule === 'knock');
}

function isRestrictedRule(ctx: Ctx, rule: string | undefined): boolean {
  return (ctx.version.restrictedJoinRuleSupported && rule === 'restricted')
    || (ctx.version.knockRestrictedJoinRuleSupported && rule === 'knock_restricted');
}

function isKnockableRule(ctx: Ctx, rule: string | undefined): boolean {
  return rule === 'knock' || (ctx.version.knockRestrictedJoinRuleSupported && rule === 'knock_restricted');
}

function checkJoin(ctx: Ctx): AuthResult {
  const { pdu } = ctx;
  if (isCreatorsFirstJoin(ctx)) return ALLOW;
  if (pdu.sender !== pdu.state_key) return reject('cannot join on behalf of another user');
  const current = membershipInState(ctx, pdu.sender);
  if (current === 'ban') return reject('sender is banned');
  const rule = joinRuleInState(ctx);
  if (joinRuleAdmitsInvitees(ctx, rule)) {
    return current === 'invite' || current === 'join' ? ALLOW : reject(`join rule is ${rule} and sender is not invited`);
  }
  if (isRestrictedRule(ctx, rule)) {
    if (current === 'invite' || current === 'join') return ALLOW;
    return checkRestrictedJoinAuthoriser(ctx);
  }
  if (rule === 'public') return ALLOW;
  return reject(`join rule ${String(rule)} does not allow joining`);
}

/** The authorising user must be joined and able to invite. */
function checkRestrictedJoinAuthoriser(ctx: Ctx): AuthResult {
  const via = ctx.pdu.content?.join_authorised_via_users_server;
  if (typeof via !== 'string') return reject('restricted join without join_authorised_via_users_server');
  if (membershipInState(ctx, via) !== 'join') return reject('join_authorised_via_users_server is not joined');
  if (levelOf(ctx, via) < ctx.pl.invite) return reject('join_authorised_via_users_server cannot invite');
  return ALLOW;
}

/** v8+ rule: the member event must be signed by the authorising user's server. */
function isSignedByAuthoriser(ctx: Ctx, via: JsonValue): boolean {
  if (typeof via !== 'string') return false;
  const server = domainOf(via);
  if (server === undefined) return false;
  if (ctx.opts.isSignedBy) return ctx.opts.isSignedBy(ctx.pdu, server);
  const sigs = ctx.pdu.signatures?.[server];
  return typeof sigs === 'object' && sigs !== null && Object.keys(sigs).length > 0;
}

function thirdPartyInvitePublicKeys(content: JsonObject): string[] {
  const keys: string[] = [];
  if (typeof content.public_key === 'string') keys.push(content.public_key);
  if (Array.isArray(content.public_keys)) {
    for (const k of content.public_keys) if (isObject(k) && typeof k.public_key === 'string') keys.push(k.public_key);
  }
  return keys;
}

function checkThirdPartyInvite(ctx: Ctx, tpi: JsonValue): AuthResult {
  const { pdu } = ctx;
  if (membershipInState(ctx, pdu.state_key!) === 'ban') return reject('target user is banned');
  const signed = isObject(tpi) ? tpi.signed : undefined;
  if (!isObject(signed)) return reject('third_party_invite has no signed property');
  if (typeof signed.mxid !== 'string' || typeof signed.token !== 'string') return reject('signed lacks mxid or token');
  if (signed.mxid !== pdu.state_key) return reject('signed.mxid does not match state_key');
  const inviteEv = ctx.state(M_THIRD_PARTY_INVITE, signed.token);
  if (!inviteEv) return reject('no m.room.third_party_invite for token');
  if (inviteEv.pdu.sender !== pdu.sender) return reject('sender does not match third party invite sender');
  const keys = thirdPartyInvitePublicKeys(isObject(inviteEv.pdu.content) ? inviteEv.pdu.content : {});
  const verify = ctx.opts.verifyThirdPartyInvite ?? verifySignedByAnyKey;
  return verify(signed, keys) ? ALLOW : reject('no signature in signed matches a public key of the third-party invite');
}

function checkInvite(ctx: Ctx): AuthResult {
  const { pdu } = ctx;
  const tpi = pdu.content?.third_party_invite;
  if (tpi !== undefined) return checkThirdPartyInvite(ctx, tpi);
  if (membershipInState(ctx, pdu.sender) !== 'join') return reject('inviter is not joined');
  const target = membershipInState(ctx, pdu.state_key!);
  if (target === 'join' || target === 'ban') return reject(`target is already ${target}`);
  return levelOf(ctx, pdu.sender) >= ctx.pl.invite ? ALLOW : reject('sender is below the invite level');
}

function checkLeave(ctx: Ctx): AuthResult {
  const { pdu } = ctx;
  const target = membershipInState(ctx, pdu.state_key!);
  if (pdu.sender === pdu.state_key) {
    const ok = target === 'invite' || target === 'join' || (ctx.version.knockingSupported && target === 'knock');
    return ok ? ALLOW : reject(`cannot leave from membership ${String(target)}`);
  }
  if (membershipInState(ctx, pdu.sender) !== 'join') return reject('sender is not joined');
  const senderLevel = levelOf(ctx, pdu.sender);
  if (target === 'ban' && senderLevel < ctx.pl.ban) return reject('sender is below the ban level and cannot unban');
  if (senderLevel >= ctx.pl.kick && levelOf(ctx, pdu.state_key!) < senderLevel) return ALLOW;
  return reject('sender cannot kick the target');
}

function checkBan(ctx: Ctx): AuthResult {
  const { pdu } = ctx;
  if (membershipInState(ctx, pdu.sender) !== 'join') return reject('sender is not joined');
  const senderLevel = levelOf(ctx, pdu.sender);
  if (senderLevel >= ctx.pl.ban && levelOf(ctx, pdu.state_key!) < senderLevel) return ALLOW;
  return reject('sender cannot ban the target');
}

function checkKnock(ctx: Ctx): AuthResult {
  const { pdu } = ctx;
  if (!isKnockableRule(ctx, joinRuleInState(ctx))) return reject('join rule does not allow knocking');
  if (pdu.sender !== pdu.state_key) return reject('cannot knock on behalf of another user');
  const current = membershipInState(ctx, pdu.sender);
  if (current === 'ban' || current === 'invite' || current === 'join') return reject(`cannot knock from ${current}`);
  return ALLOW;
}

function checkMemberEvent(ctx: Ctx): AuthResult {
  const { pdu, version } = ctx;
  const membership = pdu.content?.membership;
  if (!isStateEvent(pdu) || typeof membership !== 'string') return reject('member event lacks state_key or membership');
  if (version.restrictedJoinRuleSupported && pdu.content && 'join_authorised_via_users_server' in pdu.content) {
    if (!isSignedByAuthoriser(ctx, pdu.content.join_authorised_via_users_server!)) {
      return reject("not signed by join_authorised_via_users_server's server");
    }
  }
  switch (membership) {
    case 'join': return checkJoin(ctx);
    case 'invite': return checkInvite(ctx);
    case 'leave': return checkLeave(ctx);
    case 'ban': return checkBan(ctx);
    case 'knock': if (version.knockingSupported) return checkKnock(ctx); break;
  }
  return reject(`unknown membership ${membership}`);
}

/** Rule "If the event has a state_key that starts with an @ and does not match the sender". */
function impersonatesUserStateKey(pdu: Pdu): boolean {
  return isStateEvent(pdu) && pdu.state_key!.startsWith('@') && pdu.state_key !== pdu.sender;
}

function checkPowerLevelsEvent(ctx: Ctx): AuthResult {
  const { pdu, version } = ctx;
  const content = isObject(pdu.content) ? pdu.content : {};
  const creators = version.privilegedCreators ? ctx.pl.ctx.creators : [];
  const invalid = validatePowerLevelsContent(content, version, creators);
  if (invalid) return reject(invalid);
  const current = ctx.state(M_POWER_LEVELS, '');
  if (!current) return ALLOW;
  const previous = isObject(current.pdu.content) ? current.pdu.content : {};
  const why = checkPowerLevelsChange(previous, content, pdu.sender, levelOf(ctx, pdu.sender), version);
  return why ? reject(why) : ALLOW;
}

/** v1/v2 rule 11: redactions need the redact level or the same event-id domain. */
function checkRedactionV1(ctx: Ctx): AuthResult {
  if (levelOf(ctx, ctx.pdu.sender) >= ctx.pl.redact) return ALLOW;
  const target = redactsOf(ctx.pdu, ctx.version);
  const targetDomain = target === undefined ? undefined : domainOf(target);
  if (targetDomain !== undefined && targetDomain === domainOf(ctx.event.eventId)) return ALLOW;
  return reject('sender is below the redact level and the redacted event is from another server');
}

/**
 * Whether `event` is allowed by the room version's authorisation rules given
 * the relevant state. `create` is the room's m.room.create event: v12 needs it
 * because it is never in the auth events; earlier versions use the one in
 * `authState` when present (and reject when neither exists).
 */
export function checkAuth(
  event: EventWithId,
  authState: AuthStateLookup,
  version: RoomVersion,
  create: EventWithId | undefined,
  opts: AuthOptions = {},
): AuthResult {
  const pdu = event.pdu;
  if (pdu.type === M_CREATE) return checkCreateEvent(pdu, version);

  let roomCreate: EventWithId | undefined;
  if (version.roomIdIsCreateEventHash) {
    roomCreate = create;
    if (!roomCreate) return reject('no m.room.create event for the room');
    if (!roomIdMatchesCreate(pdu, roomCreate)) return reject('room_id is not derived from the create event');
  } else {
    roomCreate = authState(M_CREATE, '') ?? create;
    if (!roomCreate) return reject('no m.room.create event in the room state');
    if (roomCreate.pdu.room_id !== pdu.room_id) return reject('m.room.create is from another room');
  }

  if (federationForbidden(pdu, roomCreate.pdu)) return reject('room does not federate with the sender\'s server');

  if (version.specialCaseAliasesAuth && pdu.type === M_ALIASES) return checkAliasesEvent(pdu);

  const plEvent = authState(M_POWER_LEVELS, '');
  const pl = parsePowerLevels(
    isObject(plEvent?.pdu.content) ? plEvent!.pdu.content : undefined,
    version,
    roomCreators(roomCreate.pdu, version),
  );
  const ctx: Ctx = { event, pdu, version, state: authState, create: roomCreate, pl, opts };

  if (pdu.type === M_MEMBER) return checkMemberEvent(ctx);

  if (membershipInState(ctx, pdu.sender) !== 'join') return reject('sender is not joined');

  if (pdu.type === M_THIRD_PARTY_INVITE) {
    return levelOf(ctx, pdu.sender) >= pl.invite ? ALLOW : reject('sender is below the invite level');
  }

  const required = requiredPowerForEvent(pl, pdu.type, isStateEvent(pdu));
  if (required > levelOf(ctx, pdu.sender)) return reject(`sender needs power level ${required} to send ${pdu.type}`);

  if (impersonatesUserStateKey(pdu)) return reject('state_key names another user');

  if (pdu.type === M_POWER_LEVELS) return checkPowerLevelsEvent(ctx);

  if (pdu.type === M_REDACTION && version.eventIdFormat === 'v1') return checkRedactionV1(ctx);

  return ALLOW;
}

/**
 * "Handling redactions" (v3+): whether a redaction that passed auth should be
 * applied to `original`. v1/v2 rooms applied the same test inside the auth
 * rules using event-id domains; it is repeated here so callers need one call.
 */
export function shouldApplyRedaction(
  redaction: EventWithId,
  original: EventWithId,
  pl: PowerLevels,
  version: RoomVersion,
): boolean {
  if (redactsOf(redaction.pdu, version) !== original.eventId) return false;
  if (redaction.pdu.room_id !== original.pdu.room_id) return false;
  if (userPowerLevel(pl, redaction.pdu.sender) >= pl.redact) return true;
  if (version.eventIdFormat === 'v1') return domainOf(redaction.eventId) === domainOf(original.eventId);
  return domainOf(redaction.pdu.sender) === domainOf(original.pdu.sender);
}

/**
 * Receipt check 4 ("passes authorisation rules based on the event's auth
 * events"): the auth_events list rules followed by the rules evaluated
 * against those events. `create` is required for v12 rooms (it is never among
 * the auth events there); before v12 it is taken from `authEvents`.
 */
export function checkAuthAgainstAuthEvents(
  event: EventWithId,
  authEvents: EventWithId[],
  version: RoomVersion,
  create?: EventWithId,
  opts: AuthOptions = {},
): AuthResult {
  const list = checkAuthEventList(event.pdu, authEvents, version);
  if (!list.allowed) return list;
  return checkAuth(event, authStateFromEvents(authEvents), version, create, opts);
}
