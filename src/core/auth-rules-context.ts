/**
 * What every file of the authorisation rules shares: the result type, the
 * state lookup a check reads, the hooks a caller may give, the context one
 * check runs in, and the small accessors of events and ids.
 */

import type { EventWithId, JsonObject, JsonValue, Pdu } from './types.js';
import type { RoomVersion } from './room-versions.js';
import { userPowerLevel, type PowerLevels } from './power-levels.js';

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

export const ALLOW: AuthResult = Object.freeze({ allowed: true }) as AuthResult;
export function reject(reason: string): AuthResult {
  return { allowed: false, reason };
}

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

export function isObject(v: JsonValue | undefined): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isStateEvent(pdu: Pdu): boolean {
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

/** What one run of `checkAuth` knows: the event, its room version, the state it is judged against, the room's create event and power levels. */
export interface AuthContext {
  event: EventWithId;
  pdu: Pdu;
  version: RoomVersion;
  state: AuthStateLookup;
  create: EventWithId;
  pl: PowerLevels;
  opts: AuthOptions;
}

export function levelOf(ctx: AuthContext, userId: string): number {
  return userPowerLevel(ctx.pl, userId);
}

export function membershipInState(ctx: AuthContext, userId: string): string | undefined {
  return membershipOf(ctx.state(M_MEMBER, userId));
}

export function joinRuleInState(ctx: AuthContext): string | undefined {
  const ev = ctx.state(M_JOIN_RULES, '');
  // The spec gives no default; a room without m.room.join_rules is treated as
  // invite-only, the most restrictive rule that still honours invites.
  if (!ev) return 'invite';
  const r = ev.pdu.content?.join_rule;
  return typeof r === 'string' ? r : undefined;
}
