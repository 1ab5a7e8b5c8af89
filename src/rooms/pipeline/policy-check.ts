/**
 * Policy Servers in the pipeline (spec: server-server API, "Policy Servers"): local events of a
 * room that uses one are signed by it before they are stored, and received events without its
 * valid signature are soft-failed. Whether a room uses one is read from its current state.
 */
import { hasPolicySignature, needsPolicySignature, policyServerInRoom, policyServerOf, type PolicyServer } from '../../core/policy-server.js';
import type { RoomVersion } from '../../core/room-versions.js';
import { stateKey, type Pdu } from '../../core/types.js';
import type { StoredEvent } from '../events/stored-event.js';
import type { RoomHead } from '../state/room-head.js';

const POLICY_KEY = stateKey('m.room.policy', '');

/** Federation's way of asking a Policy Server to sign an event (policy-signer.ts). */
export type PolicySigner = (policy: PolicyServer, pdu: Pdu, version: RoomVersion) => Promise<Pdu>;

/** The Policy Server the room uses now: null without a valid m.room.policy, or while its server has no joined member. */
export async function roomPolicyServer(head: RoomHead, load: (ids: string[]) => Promise<Map<string, StoredEvent>>): Promise<PolicyServer | null> {
  const id = head.state.get(POLICY_KEY);
  if (id === undefined) return null;
  const ev = (await load([id])).get(id);
  const policy = ev ? policyServerOf(ev.pdu.content) : null;
  return policy && policyServerInRoom(policy.via, head.members) ? policy : null;
}

/** Whether a received event is recommended for inclusion: true unless the room's Policy Server did not sign it. */
export async function policyRecommends(head: RoomHead, pdu: Pdu, load: (ids: string[]) => Promise<Map<string, StoredEvent>>): Promise<boolean> {
  if (!needsPolicySignature(pdu)) return true;
  const policy = await roomPolicyServer(head, load);
  return policy === null || hasPolicySignature(pdu, head.version, policy);
}
