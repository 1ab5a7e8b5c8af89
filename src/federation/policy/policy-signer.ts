/**
 * Asking a room's Policy Server to sign an event before it is sent (spec: server-server API,
 * "Asking for a Policy Server signature on an event", `POST /_matrix/policy/v1/sign`). The
 * signature is checked against the public key in the room's `m.room.policy` before it is added.
 */
import { hasPolicySignature, POLICY_KEY_ID, type PolicyServer } from '../../core/policy-server.js';
import type { RoomVersion } from '../../core/room-versions.js';
import type { Pdu } from '../../core/types.js';
import { MatrixError } from '../../http/errors.js';
import { FederationRequestError, type FederationClient } from '../client.js';

const SIGN_TIMEOUT_MS = 10_000;

/** The event with the Policy Server's signature added; a refusal or a bad answer is a Matrix error for the sender. */
export async function signByPolicyServer(client: FederationClient, serverName: string, policy: PolicyServer, pdu: Pdu, version: RoomVersion): Promise<Pdu> {
  if (policy.via === serverName) {
    // The room names this server, which checks nothing: it cannot recommend the event.
    throw new MatrixError(403, 'M_FORBIDDEN', 'The room names this server as its policy server, and it is not one');
  }
  let answer: unknown;
  try {
    answer = await client.request(policy.via, { method: 'POST', path: '/_matrix/policy/v1/sign', body: pdu, timeoutMs: SIGN_TIMEOUT_MS });
  } catch (e) {
    if (e instanceof FederationRequestError && e.status >= 400 && e.status < 500 && e.errcode) {
      // The Policy Server's refusal goes to the client as it was given (spec: "verbatim").
      const error = (e.body as { error?: unknown }).error;
      throw new MatrixError(e.status === 429 ? 429 : 400, e.errcode, typeof error === 'string' ? error : 'The policy server refused the event');
    }
    throw new MatrixError(502, 'M_UNKNOWN', `The room's policy server ${policy.via} could not be asked: ${(e as Error).message}`);
  }
  const sig = (answer as Record<string, Record<string, unknown> | undefined> | null)?.[policy.via]?.[POLICY_KEY_ID];
  if (typeof sig !== 'string') throw new MatrixError(502, 'M_UNKNOWN', `The room's policy server ${policy.via} gave no signature`);
  const signatures = { ...pdu.signatures };
  signatures[policy.via] = { ...signatures[policy.via], [POLICY_KEY_ID]: sig };
  const signed: Pdu = { ...pdu, signatures };
  if (!hasPolicySignature(signed, version, policy)) {
    throw new MatrixError(502, 'M_UNKNOWN', `The room's policy server ${policy.via} gave a signature that does not match the room's policy key`);
  }
  return signed;
}
