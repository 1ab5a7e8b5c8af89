import { randomInt } from 'node:crypto';
import { isValidLocalpart } from '../core/ids.js';
import { invalidUsername } from '../http/errors.js';

/**
 * New localparts are lower-cased: the spec forbids upper case in user ids
 * and asks servers to downcase usernames when creating users (appendices,
 * "User Identifiers"), so `Alice` registers `@alice`.
 */
export function normaliseLocalpart(name: string): string {
  return name.toLowerCase();
}

/** Checks a localpart for a new account: the strict grammar and the 255-byte user id limit. */
export function checkNewLocalpart(localpart: string, serverName: string): void {
  if (localpart.length === 0) throw invalidUsername('User ID cannot be empty');
  if (!isValidLocalpart(localpart, serverName)) {
    throw invalidUsername('User ID can only contain characters a-z, 0-9, or =_-./+ and must be at most 255 bytes with the server name');
  }
}

/**
 * What `/register` accepts on top of the grammar: a leading `_` is left to
 * bridges and application services, and all-digit names to generated ids.
 */
export function checkRegistrationLocalpart(localpart: string, serverName: string): void {
  checkNewLocalpart(localpart, serverName);
  if (localpart.startsWith('_')) throw invalidUsername('User ID may not begin with _');
  if (/^[0-9]+$/.test(localpart)) throw invalidUsername('Numeric user IDs are reserved');
}

const GENERATED_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

/** A localpart for a registration without a username: a letter first, so it is never all digits. */
export function generateLocalpart(): string {
  let s = GENERATED_ALPHABET[randomInt(26)];
  for (let i = 0; i < 11; i++) s += GENERATED_ALPHABET[randomInt(GENERATED_ALPHABET.length)];
  return s;
}

/**
 * The user id a login identifier names: a full user id or a localpart.
 * Localparts on this server are lower case, so the name is matched as such.
 * Undefined when the id belongs to another server or cannot be a user id.
 */
export function userIdFromIdentifier(user: string, serverName: string): string | undefined {
  if (user.startsWith('@')) {
    const colon = user.indexOf(':');
    if (colon < 0 || user.slice(colon + 1) !== serverName) return undefined;
    return `@${user.slice(1, colon).toLowerCase()}:${serverName}`;
  }
  if (user.length === 0 || user.includes(':')) return undefined;
  return `@${user.toLowerCase()}:${serverName}`;
}
