import { checkPduFormat } from '../../core/pdu-format.js';
import { verifyEventSignatures } from '../../core/event-format.js';
import { checkContentHash } from '../../core/hashes.js';
import { redactPdu } from '../../core/redaction.js';
import type { RoomVersion } from '../../core/room-versions.js';
import type { Pdu } from '../../core/types.js';
import type { KeyRing, VerifyKey } from './key-ring.js';

/** A received PDU that passed checks 1-3: valid, signed, and redacted if its content hash did not match. */
export interface CheckedPdu {
  eventId: string;
  pdu: Pdu;
  /** The content hash did not match: `pdu` is the redacted form. */
  redactedOnReceipt: boolean;
}

export type CheckOutcome = { ok: true; event: CheckedPdu } | { ok: false; eventId?: string; reason: string };

/**
 * Checks 1-3 on receipt of a PDU (spec: server-server API, "Checks performed
 * on receipt of a PDU"): a valid event of the room version, else dropped;
 * valid signatures of the servers that must sign it, else dropped; a matching
 * content hash, else the event goes on redacted ("Validating hashes and
 * signatures on received events").
 */
export async function checkReceived(raw: unknown, version: RoomVersion, roomId: string, keyRing: KeyRing): Promise<CheckOutcome> {
  const format = checkPduFormat(raw, version, roomId);
  if (!format.ok) return { ok: false, reason: format.reason };
  const { pdu, eventId } = format;

  const wanted = new Map<string, string[]>();
  for (const [server, sigs] of Object.entries(pdu.signatures)) wanted.set(server, Object.keys(sigs));
  const keys = new Map<string, Map<string, VerifyKey>>();
  await Promise.all([...wanted].map(async ([server, ids]) => keys.set(server, await keyRing.getKeys(server, ids))));
  const signatures = verifyEventSignatures(pdu, version, (server, keyId) => {
    const k = keys.get(server)?.get(keyId);
    if (!k) return undefined;
    // rooms/v5: a key is only valid for events sent before its valid_until_ts.
    if (version.enforceKeyValidity && pdu.origin_server_ts > k.validUntilTs) return undefined;
    return k.key;
  });
  if (!signatures.ok) return { ok: false, eventId, reason: `signature check failed: ${signatures.reason}` };

  if (!checkContentHash(pdu)) {
    return { ok: true, event: { eventId, pdu: redactPdu(pdu, version), redactedOnReceipt: true } };
  }
  return { ok: true, event: { eventId, pdu, redactedOnReceipt: false } };
}
