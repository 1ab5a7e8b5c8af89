import { randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { MatrixError, invalidParam } from '../http/errors.js';

/**
 * Passwords are hashed with scrypt (node:crypto, run on the libuv thread
 * pool so the event loop keeps serving). N=2^14, r=8, p=1 costs about 60 ms
 * and 16 MiB on the reference machine (2^15 measured ~130 ms: too slow for
 * the login path). The parameters are stored with each hash, so raising
 * them later keeps old hashes verifiable.
 */
const PARAMS = { N: 2 ** 14, r: 8, p: 1 } as const;
const KEY_LENGTH = 32;
const SALT_LENGTH = 16;
/** The parameters we accept when reading a stored hash (guards against a corrupt row pinning the CPU). */
const MAX_N = 2 ** 20;

function derive(password: string, salt: Buffer, p: { N: number; r: number; p: number }, length: number): Promise<Buffer> {
  const opts: ScryptOptions = { N: p.N, r: p.r, p: p.p, maxmem: 256 * p.N * p.r * p.p + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scrypt(password.normalize('NFKC'), salt, length, opts, (err, key) => (err ? reject(err) : resolve(key)));
  });
}

/** `scrypt$N$r$p$salt$hash` with base64url salt and hash. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(SALT_LENGTH);
  const key = await derive(password, salt, PARAMS, KEY_LENGTH);
  return ['scrypt', PARAMS.N, PARAMS.r, PARAMS.p, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/**
 * Checks a password against a stored hash. With no stored hash (unknown
 * user, deactivated user) the same scrypt work is done against a throwaway
 * salt, so the answer time does not tell whether the account exists.
 */
export async function verifyPassword(password: string, stored: string | null | undefined): Promise<boolean> {
  const parsed = stored ? parseHash(stored) : null;
  if (!parsed) {
    await derive(password, randomBytes(SALT_LENGTH), PARAMS, KEY_LENGTH);
    return false;
  }
  const key = await derive(password, parsed.salt, parsed, parsed.hash.length);
  return timingSafeEqual(key, parsed.hash);
}

function parseHash(stored: string): { N: number; r: number; p: number; salt: Buffer; hash: Buffer } | null {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return null;
  const [N, r, p] = parts.slice(1, 4).map(Number);
  if (!Number.isInteger(N) || N < 2 || N > MAX_N || (N & (N - 1)) !== 0) return null;
  if (!Number.isInteger(r) || r < 1 || r > 32 || !Number.isInteger(p) || p < 1 || p > 16) return null;
  const salt = Buffer.from(parts[4], 'base64url');
  const hash = Buffer.from(parts[5], 'base64url');
  if (salt.length === 0 || hash.length < 16) return null;
  return { N, r, p, salt, hash };
}

/** Longest password accepted; anything longer is a mistake or an attack on the hashing budget. */
export const MAX_PASSWORD_LENGTH = 512;

/** Rejects passwords that cannot be right before any work is done with them. */
export function checkNewPassword(password: string): void {
  if (password.length === 0) throw new MatrixError(400, 'M_WEAK_PASSWORD', 'The password must not be empty');
  if (password.length > MAX_PASSWORD_LENGTH) throw invalidParam(`The password must be at most ${MAX_PASSWORD_LENGTH} characters`);
}
