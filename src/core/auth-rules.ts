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
 * This file holds the order of the rules and the rules for non-member events;
 * beside it: auth-rules-membership.ts (m.room.member),
 * auth-rules-third-party-invite.ts, auth-rules-auth-events.ts (selection and
 * the list rules) and auth-rules-context.ts (what they share).
 *
 * Event signatures are outside this module: `join_authorised_via_users_server`
 * is checked through the optional hook in `AuthOptions`; without it only the
 * structure is checked (a signature from the right server is present). A
 * third-party invite's `signed` object is verified against the public
 * keys of its `m.room.third_party_invite` event (pure Ed25519, no key lookup),
 * unless a hook is given.
 */

import type { EventWithId, Pdu } from './types.js';
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
import {
  ALLOW,
  domainOf,
  isObject,
  isStateEvent,
  levelOf,
  M_ALIASES,
  M_CREATE,
  M_MEMBER,
  M_POWER_LEVELS,
  M_REDACTION,
  M_THIRD_PARTY_INVITE,
  membershipInState,
  prevEventIds,
  redactsOf,
  reject,
  type AuthContext,
  type AuthOptions,
  type AuthResult,
  type AuthStateLookup,
} from './auth-rules-context.js';
import { authStateFromEvents, checkAuthEventList } from './auth-rules-auth-events.js';
import { checkMemberEvent } from './auth-rules-membership.js';

export {
  authEventIds,
  domainOf,
  eventRefId,
  M_ALIASES,
  M_CREATE,
  M_JOIN_RULES,
  M_MEMBER,
  M_POWER_LEVELS,
  M_REDACTION,
  M_THIRD_PARTY_INVITE,
  prevEventIds,
  redactsOf,
  type AuthOptions,
  type AuthResult,
  type AuthStateLookup,
} from './auth-rules-context.js';
export { authEventSelection, authStateFromEvents, checkAuthEventList } from './auth-rules-auth-events.js';

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

/** Rule "If the event has a state_key that starts with an @ and does not match the sender". */
function impersonatesUserStateKey(pdu: Pdu): boolean {
  return isStateEvent(pdu) && pdu.state_key!.startsWith('@') && pdu.state_key !== pdu.sender;
}

function checkPowerLevelsEvent(ctx: AuthContext): AuthResult {
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
function checkRedactionV1(ctx: AuthContext): AuthResult {
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
  const ctx: AuthContext = { event, pdu, version, state: authState, create: roomCreate, pl, opts };

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
