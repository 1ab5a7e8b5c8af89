/**
 * The `X-Matrix` Authorization header (spec: server-server API, "Request Authentication"): the
 * request's method, target, origin, destination and JSON body are signed with the origin's
 * signing key as one JSON object, and the signature travels in the header.
 */
import { signJson, verifyJsonSignature, signatureOf, type SigningKey } from '../core/signing.js';

export interface XMatrixAuth {
  origin: string;
  /** Absent in requests from servers older than spec v1.3. */
  destination?: string;
  key: string;
  sig: string;
}

/** The JSON object whose signature the header carries. */
export function requestJson(method: string, uri: string, origin: string, destination: string | undefined, content: unknown): Record<string, unknown> {
  const json: Record<string, unknown> = { method, uri, origin };
  if (destination !== undefined) json.destination = destination;
  if (content !== undefined) json.content = content;
  return json;
}

/** The header value for a request from `origin` to `destination`. */
export function signRequest(
  opts: { method: string; uri: string; origin: string; destination: string; content?: unknown },
  key: SigningKey,
): string {
  const signed = signJson(requestJson(opts.method, opts.uri, opts.origin, opts.destination, opts.content), opts.origin, key);
  const sig = signatureOf(signed, opts.origin, key.keyId)!;
  return `X-Matrix origin="${opts.origin}",destination="${opts.destination}",key="${key.keyId}",sig="${sig}"`;
}

/**
 * Parses the header as RFC 9110 auth parameters: names case-insensitive, values quoted (with
 * backslash escapes) or bare tokens (colons allowed, for older servers), unknown names ignored.
 * Undefined when it is not a well-formed X-Matrix header with origin, key and sig.
 */
export function parseXMatrix(header: string): XMatrixAuth | undefined {
  const m = /^X-Matrix +(.*)$/is.exec(header.trim());
  if (!m) return undefined;
  const params = new Map<string, string>();
  const rest = m[1]!;
  let i = 0;
  const skipSpace = () => {
    while (i < rest.length && (rest[i] === ' ' || rest[i] === '\t')) i++;
  };
  while (i < rest.length) {
    skipSpace();
    const name = /^[A-Za-z0-9!#$%&'*+.^_`|~-]+/.exec(rest.slice(i));
    if (!name) return undefined;
    i += name[0].length;
    skipSpace();
    if (rest[i] !== '=') return undefined;
    i++;
    skipSpace();
    let value = '';
    if (rest[i] === '"') {
      i++;
      let closed = false;
      while (i < rest.length) {
        const c = rest[i]!;
        if (c === '\\' && i + 1 < rest.length) {
          value += rest[i + 1];
          i += 2;
        } else if (c === '"') {
          i++;
          closed = true;
          break;
        } else {
          value += c;
          i++;
        }
      }
      if (!closed) return undefined;
    } else {
      const tok = /^[A-Za-z0-9!#$%&'*+.^_`|~:-]+/.exec(rest.slice(i));
      if (!tok) return undefined;
      value = tok[0];
      i += tok[0].length;
    }
    const key = name[0].toLowerCase();
    if (!params.has(key)) params.set(key, value);
    skipSpace();
    if (i < rest.length) {
      if (rest[i] !== ',') return undefined;
      i++;
    }
  }
  const origin = params.get('origin');
  const key = params.get('key');
  const sig = params.get('sig');
  if (!origin || !key || !sig) return undefined;
  return { origin, destination: params.get('destination'), key, sig };
}

/** Whether `auth.sig` signs this request with `publicKey`. */
export function verifyRequestSignature(
  auth: XMatrixAuth,
  req: { method: string; uri: string; destination: string; content: unknown },
  publicKey: Uint8Array,
): boolean {
  const json = requestJson(req.method, req.uri, auth.origin, auth.destination ?? req.destination, req.content);
  json.signatures = { [auth.origin]: { [auth.key]: auth.sig } };
  return verifyJsonSignature(json, auth.origin, auth.key, publicKey);
}
