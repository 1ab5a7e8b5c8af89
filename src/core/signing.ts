/**
 * Ed25519 signing of JSON (spec: appendices, "Signing JSON", "Checking for a
 * Signature") and the server's signing key file.
 */

import { Buffer } from 'node:buffer';
import { createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { decodeBase64, encodeUnpaddedBase64 } from './base64.js';
import { canonicalJsonWithout } from './canonical-json.js';

export interface SigningKey {
  /** `ed25519:<version>` */
  keyId: string;
  /** The 32-byte Ed25519 seed (private key). */
  seed: Uint8Array;
  /** The 32-byte Ed25519 public key. */
  publicKey: Uint8Array;
}

export class SigningKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SigningKeyError';
  }
}

// node:crypto takes raw Ed25519 keys only wrapped in DER; these are the fixed
// ASN.1 headers for a 32-byte seed (PKCS#8) and public key (SPKI).
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** Key versions use [a-zA-Z0-9_] (spec: server keys, `verify_keys`). */
const KEY_VERSION = /^[A-Za-z0-9_]+$/;
const VERSION_ALPHABET = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** Signing covers everything except these (spec: "Signing Details"). */
const UNSIGNED_KEYS: ReadonlySet<string> = new Set(['signatures', 'unsigned']);

// Building a KeyObject costs far more than a signature; cache them per key.
const privateKeyObjects = new WeakMap<SigningKey, KeyObject>();
/**
 * Public keys by their bytes: callers often decode the same key afresh for every signature
 * (a key ring reading it from its store), and making the key object costs about as much as the
 * check itself. Bounded: emptied when it holds more keys than any server here talks to at once.
 */
const publicKeyObjects = new Map<string, KeyObject>();
const MAX_PUBLIC_KEYS = 4096;

function privateKeyObject(key: SigningKey): KeyObject {
  let obj = privateKeyObjects.get(key);
  if (obj === undefined) {
    obj = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, key.seed]), format: 'der', type: 'pkcs8' });
    privateKeyObjects.set(key, obj);
  }
  return obj;
}

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  const id = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString('base64');
  let obj = publicKeyObjects.get(id);
  if (obj === undefined) {
    obj = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]), format: 'der', type: 'spki' });
    if (publicKeyObjects.size >= MAX_PUBLIC_KEYS) publicKeyObjects.clear();
    publicKeyObjects.set(id, obj);
  }
  return obj;
}

function keyVersionOf(keyId: string): string {
  if (!keyId.startsWith('ed25519:')) throw new SigningKeyError(`unsupported key algorithm in ${keyId}`);
  const version = keyId.slice('ed25519:'.length);
  if (!KEY_VERSION.test(version)) throw new SigningKeyError(`invalid key version in ${keyId}`);
  return version;
}

export function signingKeyFromSeed(keyId: string, seed: Uint8Array): SigningKey {
  keyVersionOf(keyId);
  if (seed.length !== 32) throw new SigningKeyError('an Ed25519 seed is 32 bytes');
  const key: SigningKey = { keyId, seed: Uint8Array.from(seed), publicKey: new Uint8Array(0) };
  const spki = createPublicKey(privateKeyObject(key)).export({ format: 'der', type: 'spki' });
  key.publicKey = Uint8Array.from(spki.subarray(SPKI_ED25519_PREFIX.length));
  return key;
}

/** A fresh key; the default version is `a_` and four random letters, unlikely to clash with an old key. */
export function generateSigningKey(version?: string): SigningKey {
  const v = version ?? randomVersion();
  return signingKeyFromSeed(`ed25519:${v}`, randomBytes(32));
}

function randomVersion(): string {
  let out = 'a_';
  for (const b of randomBytes(4)) out += VERSION_ALPHABET[b % VERSION_ALPHABET.length];
  return out;
}

export function publicKeyBase64(key: SigningKey): string {
  return encodeUnpaddedBase64(key.publicKey);
}

/** Ed25519 signature of a string's UTF-8 bytes, unpadded Base64. */
export function signString(data: string, key: SigningKey): string {
  return encodeUnpaddedBase64(sign(null, Buffer.from(data, 'utf8'), privateKeyObject(key)));
}

/** Whether `signature` (Base64) is a valid Ed25519 signature of `data`'s UTF-8 bytes. */
export function verifyString(data: string, signature: string, publicKey: Uint8Array): boolean {
  if (publicKey.length !== 32) return false;
  let sig: Uint8Array;
  try {
    sig = decodeBase64(signature);
  } catch {
    return false;
  }
  if (sig.length !== 64) return false;
  try {
    return verify(null, Buffer.from(data, 'utf8'), publicKeyObject(publicKey), sig);
  } catch {
    // A malformed public key makes node:crypto throw; that is just a failed check.
    return false;
  }
}

export type Signatures = Record<string, Record<string, string>>;

/** `T` with `signatures` typed as a full map (any existing type for it replaced). */
export type WithSignatures<T> = {
  [K in keyof T as K extends 'signatures' ? never : K]: T[K];
} & { signatures: Signatures };

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A copy of `obj` with this server's signature added under
 * `signatures[serverName][keyId]`, keeping any other signatures and
 * `unsigned`. Throws CanonicalJsonError if `obj` has no canonical form.
 */
export function signJson<T extends object>(obj: T, serverName: string, key: SigningKey): WithSignatures<T> {
  const signature = signString(canonicalJsonWithout(obj, UNSIGNED_KEYS), key);
  return withSignature(obj, serverName, key.keyId, signature);
}

/** A copy of `obj` with one signature added, other signatures kept. */
export function withSignature<T extends object>(
  obj: T,
  serverName: string,
  keyId: string,
  signature: string,
): WithSignatures<T> {
  const existing = (obj as { signatures?: unknown }).signatures;
  const signatures: Signatures = isRecord(existing) ? { ...(existing as Signatures) } : {};
  const mine = signatures[serverName];
  signatures[serverName] = { ...(isRecord(mine) ? mine : {}), [keyId]: signature };
  return { ...obj, signatures } as WithSignatures<T>;
}

/** The Base64 signature `obj` carries from `serverName` under `keyId`, if any. */
export function signatureOf(obj: object, serverName: string, keyId: string): string | undefined {
  const sigs = (obj as { signatures?: unknown }).signatures;
  if (!isRecord(sigs)) return undefined;
  const byServer = sigs[serverName];
  if (!isRecord(byServer)) return undefined;
  const sig = byServer[keyId];
  return typeof sig === 'string' ? sig : undefined;
}

/**
 * Checks one signature on `obj` (spec: "Checking for a Signature"). Anything
 * that prevents checking (missing signature, bad Base64, unknown algorithm,
 * no canonical form) is a failure, never an exception.
 */
export function verifyJsonSignature(obj: object, serverName: string, keyId: string, publicKey: Uint8Array): boolean {
  if (!keyId.startsWith('ed25519:')) return false;
  const signature = signatureOf(obj, serverName, keyId);
  if (signature === undefined) return false;
  let json: string;
  try {
    json = canonicalJsonWithout(obj, UNSIGNED_KEYS);
  } catch {
    return false;
  }
  return verifyString(json, signature, publicKey);
}

/**
 * Whether any signature on `signed` (a third-party invite's `signed` object, signed by the
 * identity server) verifies with any of `publicKeys` (standard or URL-safe Base64 Ed25519 keys
 * from `m.room.third_party_invite`), whatever server name and key id it is filed under: the
 * keys are the identity server's, the names in `signatures` are only labels (server-server API,
 * "Verifying the invite").
 */
export function verifySignedByAnyKey(signed: object, publicKeys: readonly string[]): boolean {
  const sigs = (signed as { signatures?: unknown }).signatures;
  if (!isRecord(sigs)) return false;
  const keys: Uint8Array[] = [];
  for (const k of publicKeys) {
    try {
      keys.push(decodeBase64(k));
    } catch {
      // A key that is not Base64 verifies nothing.
    }
  }
  for (const [server, byKey] of Object.entries(sigs)) {
    if (!isRecord(byKey)) continue;
    for (const keyId of Object.keys(byKey)) {
      if (keys.some((pk) => verifyJsonSignature(signed, server, keyId, pk))) return true;
    }
  }
  return false;
}

/** Synapse's signing key file: one `ed25519 <version> <unpadded base64 seed>` line. */
export function encodeSigningKeyFile(key: SigningKey): string {
  return `ed25519 ${keyVersionOf(key.keyId)} ${encodeUnpaddedBase64(key.seed)}\n`;
}

/**
 * Reads a signing key file. Such files may list several keys, one per line;
 * the first is the one to sign with, and every line must be well formed.
 */
export function decodeSigningKeyFile(text: string): SigningKey {
  const keys = decodeSigningKeys(text);
  if (keys.length === 0) throw new SigningKeyError('signing key file holds no key');
  return keys[0]!;
}

export function decodeSigningKeys(text: string): SigningKey[] {
  const keys: SigningKey[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '') continue;
    const parts = line.split(/\s+/);
    if (parts.length !== 3 || parts[0] !== 'ed25519') throw new SigningKeyError('malformed signing key line');
    let seed: Uint8Array;
    try {
      seed = decodeBase64(parts[2]!);
    } catch {
      throw new SigningKeyError('signing key seed is not valid base64');
    }
    keys.push(signingKeyFromSeed(`ed25519:${parts[1]}`, seed));
  }
  return keys;
}
