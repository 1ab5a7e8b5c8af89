import type { DbOrTx } from '../db/schema.js';
import './tables.js';

/**
 * Typing notices, shared by the nodes (UNLOGGED on PostgreSQL: losable, no
 * WAL). One row per typist and room, with the 'typing' position of the
 * room's last change.
 */
export async function upsertTypist(trx: DbOrTx, row: { room_id: string; user_id: string; expires_ts: number; pos: number }): Promise<void> {
  await trx
    .insertInto('typing_notices')
    .values(row)
    .onConflict((oc) => oc.columns(['room_id', 'user_id']).doUpdateSet({ expires_ts: row.expires_ts, pos: row.pos }))
    .execute();
}

export async function deleteTypists(trx: DbOrTx, roomId: string, userIds: string[]): Promise<void> {
  if (userIds.length === 0) return;
  await trx.deleteFrom('typing_notices').where('room_id', '=', roomId).where('user_id', 'in', userIds).execute();
}

/** Moves a typist's expiry without a new position (the same notice, renewed). */
export async function extendTypist(db: DbOrTx, roomId: string, userId: string, expiresTs: number): Promise<void> {
  await db.updateTable('typing_notices').set({ expires_ts: expiresTs }).where('room_id', '=', roomId).where('user_id', '=', userId).execute();
}

export async function selectTypistsOfRoom(db: DbOrTx, roomId: string) {
  return db.selectFrom('typing_notices').select(['user_id', 'expires_ts']).where('room_id', '=', roomId).execute();
}

export async function selectAllTypists(db: DbOrTx) {
  return db.selectFrom('typing_notices').select(['room_id', 'user_id', 'expires_ts', 'pos']).execute();
}

/** Rooms with a notice that expired before `ts` (its writer did not clear it: a node went away). */
export async function selectRoomsWithExpired(db: DbOrTx, ts: number): Promise<string[]> {
  const rows = await db.selectFrom('typing_notices').select('room_id').distinct().where('expires_ts', '<', ts).execute();
  return rows.map((r) => r.room_id);
}

export async function deleteExpiredOfRoom(trx: DbOrTx, roomId: string, ts: number): Promise<void> {
  await trx.deleteFrom('typing_notices').where('room_id', '=', roomId).where('expires_ts', '<', ts).execute();
}
