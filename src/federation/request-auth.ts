/**
 * Checks the X-Matrix Authorization header of an inbound federation request (spec: server-server
 * API, "Request Authentication"): well formed, addressed to this server when it names a
 * destination, and signed over method, target, origin, destination and body by a current key of
 * the origin. Every failure is 401 M_UNAUTHORIZED and changes nothing.
 */
import type { FastifyRequest } from 'fastify';
import { isValidServerName } from '../core/ids.js';
import { MatrixError } from '../http/errors.js';
import type { FederationKeyRing } from './keys/federation-key-ring.js';
import { parseXMatrix, verifyRequestSignature } from './x-matrix.js';

export const unauthorized = (msg: string) => new MatrixError(401, 'M_UNAUTHORIZED', msg);

/** The request's body as the origin signed it: absent when the request had none. */
function signedContent(req: FastifyRequest): unknown {
  const length = req.headers['content-length'];
  const hasBody = (length !== undefined && length !== '0') || req.headers['transfer-encoding'] !== undefined;
  return hasBody ? req.body : undefined;
}

/** The authenticated origin server's name; throws 401 M_UNAUTHORIZED. */
export async function authenticateServer(req: FastifyRequest, serverName: string, keyRing: FederationKeyRing): Promise<string> {
  const header = req.headers.authorization;
  if (!header) throw unauthorized('Missing X-Matrix Authorization header');
  const auth = parseXMatrix(header);
  if (!auth) throw unauthorized('Malformed X-Matrix Authorization header');
  if (!isValidServerName(auth.origin)) throw unauthorized('Invalid origin server name');
  if (auth.destination !== undefined && auth.destination !== serverName) {
    throw unauthorized(`This request is addressed to ${auth.destination}, not to this server`);
  }
  if (auth.origin === serverName) throw unauthorized('Requests from this server to itself are not accepted');
  const key = await keyRing.requestKey(auth.origin, auth.key);
  if (!key) throw unauthorized(`Unknown key ${auth.key} of ${auth.origin}`);
  const ok = verifyRequestSignature(auth, { method: req.method, uri: req.url, destination: serverName, content: signedContent(req) }, key);
  if (!ok) throw unauthorized('Invalid request signature');
  return auth.origin;
}
