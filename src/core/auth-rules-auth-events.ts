/**
 * The auth events of an event (server-server-api "Auth events selection"):
 * which state an event's auth_events are drawn from, the rules on that list
 * itself, and a lookup over a list of events.
 */

import type { EventWithId, Pdu } from './types.js';
import { stateKey } from './types.js';
import type { RoomVersion } from './room-versions.js';
import {
  ALLOW,
  isObject,
  isStateEvent,
  M_CREATE,
  M_JOIN_RULES,
  M_MEMBER,
  M_POWER_LEVELS,
  M_THIRD_PARTY_INVITE,
  reject,
  type AuthResult,
  type AuthStateLookup,
} from './auth-rules-context.js';

/** A lookup over a list of events keyed by (type, state_key); later entries win. */
export function authStateFromEvents(events: Iterable<EventWithId>): AuthStateLookup {
  const m = new Map<string, EventWithId>();
  for (const e of events) if (isStateEvent(e.pdu)) m.set(stateKey(e.pdu.type, e.pdu.state_key!), e);
  return (type, sk) => m.get(stateKey(type, sk));
}

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
