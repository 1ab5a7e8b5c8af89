import { randomBytes, randomInt, timingSafeEqual } from 'node:crypto';
import { sha256 } from '../core/sha256.js';

/** Access and refresh tokens: a recognisable prefix and 256 random bits. */
export function newAccessToken(): string {
  return `hat_${randomBytes(32).toString('base64url')}`;
}

export function newRefreshToken(): string {
  return `hrt_${randomBytes(32).toString('base64url')}`;
}

/** Row ids for tokens and sessions. */
export function newId(): string {
  return randomBytes(16).toString('base64url');
}

/** Tokens are looked up by this digest, so the database never holds a usable token. */
export function tokenHash(token: string): string {
  return sha256(token, 'hex');
}

const DEVICE_ID_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** Ten upper-case letters, as most servers (and their users' screenshots) show device ids. */
export function newDeviceId(): string {
  let id = '';
  for (let i = 0; i < 10; i++) id += DEVICE_ID_ALPHABET[randomInt(DEVICE_ID_ALPHABET.length)];
  return id;
}

/** Compares two secrets without leaking where they differ: both sides are hashed to a fixed length first. */
export function secretsEqual(a: string, b: string): boolean {
  const ha = sha256(a);
  const hb = sha256(b);
  return timingSafeEqual(ha, hb);
}
