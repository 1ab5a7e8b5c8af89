import type { DbOrTx } from '../db/schema.js';
import type { RoomAliasRow } from './tables.js';

/** Inserts the mapping; false when the alias is already taken. */
export async function insertAlias(db: DbOrTx, row: RoomAliasRow): Promise<boolean> {
  const res = await db
    .insertInto('room_aliases')
    .values(row)
    .onConflict((oc) => oc.column('room_alias').doNothing())
    .executeTakeFirst();
  return Number(res.numInsertedOrUpdatedRows ?? 0) > 0;
}

export async function selectAlias(db: DbOrTx, alias: string): Promise<RoomAliasRow | undefined> {
  return db.selectFrom('room_aliases').selectAll().where('room_alias', '=', alias).executeTakeFirst();
}

export async function deleteAlias(db: DbOrTx, alias: string): Promise<void> {
  await db.deleteFrom('room_aliases').where('room_alias', '=', alias).execute();
}

export async function selectAliasesOfRoom(db: DbOrTx, roomId: string): Promise<string[]> {
  const rows = await db.selectFrom('room_aliases').select('room_alias').where('room_id', '=', roomId).orderBy('created_ts').execute();
  return rows.map((r) => r.room_alias);
}

/** Points every alias of `from` at `to` (a room upgrade moves the local aliases). */
export async function moveAliases(db: DbOrTx, from: string, to: string): Promise<void> {
  await db.updateTable('room_aliases').set({ room_id: to }).where('room_id', '=', from).execute();
}
