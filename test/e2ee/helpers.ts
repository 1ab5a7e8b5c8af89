import { randomBytes } from 'node:crypto';
import { encodeUnpaddedBase64 } from '../../src/core/base64.js';
import { canonicalJsonWithout } from '../../src/core/canonical-json.js';
import { signingKeyFromSeed, signString, type SigningKey } from '../../src/core/signing.js';
import type { TestServer, TestUser } from '../helpers/server.js';

/** An Ed25519 key pair as a client holds it; `pub` is the unpadded base64 public key. */
export interface ClientKey {
  key: SigningKey;
  pub: string;
}

export function newClientKey(): ClientKey {
  const key = signingKeyFromSeed('ed25519:k', randomBytes(32));
  return { key, pub: encodeUnpaddedBase64(key.publicKey) };
}

/** Adds `signatures[userId][keyId]` over the object's canonical JSON (spec appendices, "Signing JSON"). */
export function sign<T extends Record<string, unknown>>(obj: T, userId: string, keyId: string, k: ClientKey): T {
  const sig = signString(canonicalJsonWithout(obj, new Set(['signatures', 'unsigned'])), k.key);
  const signatures = { ...((obj.signatures as Record<string, Record<string, string>>) ?? {}) };
  signatures[userId] = { ...(signatures[userId] ?? {}), [keyId]: sig };
  return { ...obj, signatures };
}

/** A device's identity keys object, self-signed with its Ed25519 key. */
export function deviceKeys(user: TestUser, ed = newClientKey()): Record<string, unknown> {
  const obj = {
    user_id: user.userId,
    device_id: user.deviceId,
    algorithms: ['m.olm.v1.curve25519-aes-sha2', 'm.megolm.v1.aes-sha2'],
    keys: {
      [`curve25519:${user.deviceId}`]: encodeUnpaddedBase64(randomBytes(32)),
      [`ed25519:${user.deviceId}`]: ed.pub,
    },
  };
  return sign(obj, user.userId, `ed25519:${user.deviceId}`, ed);
}

export function otk(user: TestUser, fallback = false): Record<string, unknown> {
  const obj: Record<string, unknown> = { key: encodeUnpaddedBase64(randomBytes(32)) };
  if (fallback) obj.fallback = true;
  return sign(obj, user.userId, `ed25519:${user.deviceId}`, newClientKey());
}

/** `count` signed_curve25519 one-time keys with ids `<prefix>0`, `<prefix>1`, ... */
export function otks(user: TestUser, count: number, prefix = 'AAAA'): Record<string, Record<string, unknown>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (let i = 0; i < count; i++) out[`signed_curve25519:${prefix}${i}`] = otk(user);
  return out;
}

/** Another login (a new device) for an existing user. */
export async function newDevice(server: TestServer, user: TestUser): Promise<TestUser> {
  const localpart = user.userId.slice(1, user.userId.indexOf(':'));
  const res = await server.request('POST', '/_matrix/client/v3/login', {
    body: { type: 'm.login.password', identifier: { type: 'm.id.user', user: localpart }, password: user.password },
  });
  if (res.status !== 200) throw new Error(`login failed: ${res.status} ${JSON.stringify(res.body)}`);
  return { ...user, accessToken: res.body.access_token, deviceId: res.body.device_id };
}
