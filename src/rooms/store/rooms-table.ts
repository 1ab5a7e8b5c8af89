import type { DbOrTx } from '../../db/schema.js';
import type { RoomRow } from '../tables.js';

export async function insertRoom(trx: DbOrTx, row: RoomRow): Promise<void> {
  await trx.insertInto('rooms').values(row).onConflict((oc) => oc.column('room_id').doNothing()).execute();
}

export async function selectRoom(db: DbOrTx, roomId: string): Promise<RoomRow | undefined> {
  return db.selectFrom('rooms').selectAll().where('room_id', '=', roomId).executeTakeFirst();
}

export async function selectRooms(db: DbOrTx, roomIds: string[]): Promise<RoomRow[]> {
  if (roomIds.length === 0) return [];
  return db.selectFrom('rooms').selectAll().where('room_id', 'in', roomIds).execute();
}
