/**
 * Checks a server's key response (spec: server-server API, "Publishing Keys"; keys.yaml): it
 * names the expected server, its keys are well formed, and it is signed by the server's own
 * verify keys (every signature by a listed key must hold, and at least one must be there). A
 * key's validity is the lesser of `valid_until_ts` and seven days after fetching.
 */
import { decodeBase64, encodeUnpaddedBase64 } from '../../core/base64.js';
import { verifyJsonSignature } from '../../core/signing.js';
import type { ServerKeyRow } from '../tables.js';

const MAX_VALIDITY_MS = 7 * 24 * 3600_000;

export class KeyResponseInvalid extends Error {}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function publicKey(v: unknown): Uint8Array | undefined {
  if (!isRecord(v) || typeof v.key !== 'string') return undefined;
  try {
    const k = decodeBase64(v.key);
    return k.length === 32 ? k : undefined;
  } catch {
    return undefined;
  }
}

/** The rows to store for a verified response of `server`; throws KeyResponseInvalid. */
export function verifyKeyResponse(json: unknown, server: string, now: number): ServerKeyRow[] {
  if (!isRecord(json)) throw new KeyResponseInvalid('not a JSON object');
  if (json.server_name !== server) throw new KeyResponseInvalid(`response is for ${String(json.server_name)}, not ${server}`);
  if (!isRecord(json.verify_keys)) throw new KeyResponseInvalid('no verify_keys');
  if (!Number.isSafeInteger(json.valid_until_ts)) throw new KeyResponseInvalid('no valid_until_ts');
  const current = new Map<string, Uint8Array>();
  for (const [id, v] of Object.entries(json.verify_keys)) {
    const k = publicKey(v);
    if (!k || !id.startsWith('ed25519:')) continue;
    current.set(id, k);
  }
  const sigs = isRecord(json.signatures) && isRecord(json.signatures[server]) ? Object.keys(json.signatures[server]) : [];
  const byListedKeys = sigs.filter((id) => current.has(id));
  if (byListedKeys.length === 0) throw new KeyResponseInvalid('not signed by any of its own verify keys');
  for (const id of byListedKeys) {
    if (!verifyJsonSignature(json, server, id, current.get(id)!)) throw new KeyResponseInvalid(`bad self-signature by ${id}`);
  }
  const validUntil = Math.min(json.valid_until_ts as number, now + MAX_VALIDITY_MS);
  const text = JSON.stringify(json);
  const rows: ServerKeyRow[] = [];
  for (const [id, k] of current) {
    rows.push({ server_name: server, key_id: id, public_key: encodeUnpaddedBase64(k), valid_until_ts: validUntil, expired_ts: null, fetched_ts: now, response_json: text });
  }
  if (isRecord(json.old_verify_keys)) {
    for (const [id, v] of Object.entries(json.old_verify_keys)) {
      const k = publicKey(v);
      const expired = isRecord(v) ? v.expired_ts : undefined;
      if (!k || !Number.isSafeInteger(expired) || current.has(id) || !id.startsWith('ed25519:')) continue;
      rows.push({ server_name: server, key_id: id, public_key: encodeUnpaddedBase64(k), valid_until_ts: expired as number, expired_ts: expired as number, fetched_ts: now, response_json: text });
    }
  }
  return rows;
}
