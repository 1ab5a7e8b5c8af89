import type { DbOrTx } from '../db/schema.js';
import type { RefreshTokenRow } from './tables.js';

export async function insertRefreshToken(db: DbOrTx, row: RefreshTokenRow): Promise<void> {
  await db.insertInto('refresh_tokens').values(row).execute();
}

export async function findRefreshToken(db: DbOrTx, hash: string): Promise<RefreshTokenRow | undefined> {
  return db.selectFrom('refresh_tokens').selectAll().where('token_hash', '=', hash).executeTakeFirst();
}

export async function setNextRefreshToken(db: DbOrTx, id: string, nextId: string): Promise<void> {
  await db.updateTable('refresh_tokens').set({ next_token_id: nextId }).where('id', '=', id).execute();
}

/** Deletes the refresh token that was exchanged for `id` (its predecessor); returns the deleted ids. */
export async function deletePredecessorOf(db: DbOrTx, id: string): Promise<string[]> {
  const rows = await db.deleteFrom('refresh_tokens').where('next_token_id', '=', id).returning('id').execute();
  return rows.map((r) => r.id);
}

export async function deleteRefreshTokenById(db: DbOrTx, id: string): Promise<void> {
  await db.deleteFrom('refresh_tokens').where('id', '=', id).execute();
}

/** Deletes the refresh tokens of some devices (all of the user's when `deviceIds` is undefined). */
export async function deleteRefreshTokensOfDevices(db: DbOrTx, userId: string, deviceIds?: string[], keepId?: string): Promise<void> {
  if (deviceIds && deviceIds.length === 0) return;
  let q = db.deleteFrom('refresh_tokens').where('user_id', '=', userId);
  if (deviceIds) q = q.where('device_id', 'in', deviceIds);
  if (keepId) q = q.where('id', '<>', keepId);
  await q.execute();
}
