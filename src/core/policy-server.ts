/**
 * Policy Servers (spec v1.18, server-server API "Policy Servers"): a room may name, in its
 * `m.room.policy` state event, a server that checks every event before it is sent. While that
 * server has a joined member, each event (except the `m.room.policy` state event itself) needs the
 * Policy Server's ed25519 signature under the key id `ed25519:policy_server`, made with the public
 * key the state event holds; an event without it is not recommended for inclusion.
 */
import { decodeBase64 } from './base64.js';
import { isEventSignedBy } from './event-format.js';
import { serverNameOf } from './ids.js';
import type { RoomVersion } from './room-versions.js';
import type { Pdu } from './types.js';

export const POLICY_KEY_ID = 'ed25519:policy_server';

export interface PolicyServer {
  via: string;
  /** The ed25519 public key of `m.room.policy`, decoded. */
  publicKey: Uint8Array;
}

/** The Policy Server an `m.room.policy` state event names: null unless `via` and `public_keys.ed25519` are strings. */
export function policyServerOf(content: unknown): PolicyServer | null {
  if (typeof content !== 'object' || content === null) return null;
  const { via, public_keys: keys } = content as { via?: unknown; public_keys?: unknown };
  if (typeof via !== 'string' || via.length === 0 || typeof keys !== 'object' || keys === null) return null;
  const ed25519 = (keys as { ed25519?: unknown }).ed25519;
  if (typeof ed25519 !== 'string') return null;
  let publicKey: Uint8Array;
  try {
    publicKey = decodeBase64(ed25519);
  } catch {
    return null;
  }
  return publicKey.length === 32 ? { via, publicKey } : null;
}

/** Whether the server named by `via` has a joined member: without one the room does not use it. */
export function policyServerInRoom(via: string, members: Iterable<[string, { membership: string }]>): boolean {
  for (const [userId, m] of members) if (m.membership === 'join' && serverNameOf(userId) === via) return true;
  return false;
}

/** Every event needs the Policy Server's signature but the `m.room.policy` state event with an empty state key. */
export function needsPolicySignature(pdu: Pdu): boolean {
  return !(pdu.type === 'm.room.policy' && pdu.state_key === '');
}

/** Whether the event carries a valid signature of the Policy Server's key (over its redacted form). */
export function hasPolicySignature(pdu: Pdu, version: RoomVersion, policy: PolicyServer): boolean {
  return isEventSignedBy(pdu, version, policy.via, (server, keyId) => (server === policy.via && keyId === POLICY_KEY_ID ? policy.publicKey : undefined));
}
