/**
 * Received events of a room that uses a Policy Server and that lack its valid signature: the
 * Policy Server is asked again before they are checked (spec: server-server API, "Validating
 * Policy Server signatures": the homeserver SHOULD ask for a new signature, since the Policy
 * Server's key may have rotated since it signed). A signature obtained is added to the PDU;
 * signatures are not part of an event's hashes or id, so the event is the same one. An event the
 * Policy Server still does not sign is left as it came, and the inbound path soft-fails it.
 */
import { hasPolicySignature, needsPolicySignature, type PolicyServer } from '../../core/policy-server.js';
import type { RoomVersion } from '../../core/room-versions.js';
import type { Pdu } from '../../core/types.js';
import { roomPolicyServer, type PolicySigner } from '../../rooms/pipeline/policy-check.js';
import type { RoomsCore } from '../../rooms/room-core.js';

/** Whether the raw PDU needs asking: a well-formed object without a valid Policy Server signature. */
function lacksSignature(raw: unknown, version: RoomVersion, policy: PolicyServer): raw is Pdu {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return false;
  const pdu = raw as Pdu;
  if (typeof pdu.signatures !== 'object' || pdu.signatures === null || !needsPolicySignature(pdu)) return false;
  try {
    return !hasPolicySignature(pdu, version, policy);
  } catch {
    // Too malformed to check: the inbound path rejects it on its own terms.
    return false;
  }
}

/**
 * The room's raw PDUs, those lacking a valid Policy Server signature replaced by a copy that
 * carries one where the Policy Server gives it. The asks go out together; a refusal, a timeout or
 * an unusable answer leaves the PDU as it was.
 */
export async function askPolicyServerAgain(core: RoomsCore, signer: PolicySigner | null, roomId: string, version: RoomVersion, raws: unknown[]): Promise<unknown[]> {
  if (!signer) return raws;
  const head = await core.heads.get(roomId);
  if (!head) return raws;
  const policy = await roomPolicyServer(head, (ids) => core.events.getMany(ids));
  if (!policy || policy.via === core.ctx.serverName) return raws;
  return Promise.all(
    raws.map(async (raw) => {
      if (!lacksSignature(raw, version, policy)) return raw;
      try {
        return await signer(policy, raw, version);
      } catch {
        return raw;
      }
    }),
  );
}
