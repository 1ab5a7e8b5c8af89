import { canonicalJson, canonicalJsonWithout } from '../core/canonical-json.js';
import type { JsonObject, JsonValue } from '../core/types.js';
import { badJson, invalidParam } from '../http/errors.js';
import type { CrossSigningUsage } from './tables.js';

/** One uploaded one-time or fallback key: `<algorithm>:<key_id>` → a key string or a signed key object. */
export interface UploadedKey {
  algorithm: string;
  keyId: string;
  json: string;
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Canonical form when there is one (comparisons), else plain JSON. */
export function comparableJson(v: unknown): string {
  try {
    return canonicalJson(v);
  } catch {
    return JSON.stringify(v);
  }
}

const SIGNING_FIELDS: ReadonlySet<string> = new Set(['signatures', 'unsigned']);

/** Whether two signed objects are the same object apart from their signatures. */
export function sameSignedContent(a: object, b: object): boolean {
  try {
    return canonicalJsonWithout(a, SIGNING_FIELDS) === canonicalJsonWithout(b, SIGNING_FIELDS);
  } catch {
    return false;
  }
}

export function parseKeyMap(map: unknown, field: string): UploadedKey[] {
  if (map === undefined || map === null) return [];
  if (!isObject(map)) throw badJson(`${field} must be an object`);
  const out: UploadedKey[] = [];
  for (const [name, value] of Object.entries(map)) {
    const colon = name.indexOf(':');
    if (colon <= 0 || colon === name.length - 1) {
      throw invalidParam(`${field}: key name "${name}" is not <algorithm>:<key_id>`);
    }
    if (typeof value === 'string') {
      // An unsigned key (e.g. `curve25519`) is just its base64.
    } else if (isObject(value)) {
      if (typeof value.key !== 'string') throw badJson(`${field}.${name}.key must be a string`);
      if (value.signatures !== undefined && !isObject(value.signatures)) {
        throw badJson(`${field}.${name}.signatures must be an object`);
      }
    } else {
      throw badJson(`${field}.${name} must be a key string or a key object`);
    }
    out.push({ algorithm: name.slice(0, colon), keyId: name.slice(colon + 1), json: JSON.stringify(value) });
  }
  return out;
}

/** Checks the shape of uploaded device keys and that they belong to the uploading device. */
export function checkDeviceKeys(dk: unknown, userId: string, deviceId: string): JsonObject {
  if (!isObject(dk)) throw badJson('device_keys must be an object');
  if (typeof dk.user_id !== 'string' || typeof dk.device_id !== 'string') {
    throw badJson('device_keys needs user_id and device_id');
  }
  if (dk.user_id !== userId) throw invalidParam(`device_keys.user_id must be ${userId}`);
  if (dk.device_id !== deviceId) throw invalidParam(`device_keys.device_id must be ${deviceId}`);
  if (!Array.isArray(dk.algorithms) || !dk.algorithms.every((a: JsonValue) => typeof a === 'string')) {
    throw badJson('device_keys.algorithms must be a list of strings');
  }
  if (!isObject(dk.keys) || !Object.values(dk.keys).every((k) => typeof k === 'string')) {
    throw badJson('device_keys.keys must map key ids to strings');
  }
  if (!isObject(dk.signatures)) throw badJson('device_keys.signatures must be an object');
  return dk;
}

export interface CrossSigningKey {
  usage: CrossSigningUsage;
  publicKey: string;
  obj: JsonObject;
}

/** Checks an uploaded cross-signing key: owner, usage and its single `ed25519:<public key>` entry. */
export function checkCrossSigningKey(v: unknown, usage: CrossSigningUsage, userId: string): CrossSigningKey {
  const field = `${usage}_key`;
  if (!isObject(v)) throw badJson(`${field} must be an object`);
  if (v.user_id !== userId) throw invalidParam(`${field}.user_id must be ${userId}`);
  if (!Array.isArray(v.usage) || !v.usage.includes(usage)) throw invalidParam(`${field}.usage must include "${usage}"`);
  if (!isObject(v.keys)) throw badJson(`${field}.keys must be an object`);
  const entries = Object.entries(v.keys);
  if (entries.length !== 1) throw invalidParam(`${field}.keys must hold exactly one key`);
  const [keyId, pub] = entries[0];
  if (typeof pub !== 'string' || keyId !== `ed25519:${pub}`) {
    throw invalidParam(`${field}.keys must be {"ed25519:<public key>": "<public key>"}`);
  }
  if (v.signatures !== undefined && !isObject(v.signatures)) throw badJson(`${field}.signatures must be an object`);
  return { usage, publicKey: pub, obj: v };
}
