import type { DbOrTx } from '../db/schema.js';
import type { AccessTokenRow } from './tables.js';

export interface TokenOwner {
  id: string;
  user_id: string;
  device_id: string;
  expires_ts: number | null;
  refresh_token_id: string | null;
  is_admin: number;
  deactivated: number;
  locked: number;
  suspended: number;
  is_guest: number;
}

export async function insertAccessToken(db: DbOrTx, row: AccessTokenRow): Promise<void> {
  await db.insertInto('access_tokens').values(row).execute();
}

/** The token and its user in one query. */
export async function findAccessToken(db: DbOrTx, hash: string): Promise<TokenOwner | undefined> {
  return db
    .selectFrom('access_tokens as t')
    .innerJoin('users as u', 'u.user_id', 't.user_id')
    .select(['t.id', 't.user_id', 't.device_id', 't.expires_ts', 't.refresh_token_id', 'u.is_admin', 'u.deactivated', 'u.locked', 'u.suspended', 'u.is_guest'])
    .where('t.token_hash', '=', hash)
    .executeTakeFirst();
}

/**
 * Deletes the access tokens of some devices (all of the user's when
 * `deviceIds` is undefined). Returns the deleted tokens' hashes so cached
 * copies can be dropped.
 */
export async function deleteAccessTokensOfDevices(db: DbOrTx, userId: string, deviceIds?: string[]): Promise<string[]> {
  if (deviceIds && deviceIds.length === 0) return [];
  let q = db.deleteFrom('access_tokens').where('user_id', '=', userId);
  if (deviceIds) q = q.where('device_id', 'in', deviceIds);
  const rows = await q.returning('token_hash').execute();
  return rows.map((r) => r.token_hash);
}

export async function deleteAccessTokensOfRefreshTokens(db: DbOrTx, refreshTokenIds: string[]): Promise<string[]> {
  if (refreshTokenIds.length === 0) return [];
  const rows = await db.deleteFrom('access_tokens').where('refresh_token_id', 'in', refreshTokenIds).returning('token_hash').execute();
  return rows.map((r) => r.token_hash);
}
