import type { DbOrTx } from '../db/schema.js';

export async function publishRoom(db: DbOrTx, roomId: string, ts: number): Promise<void> {
  await db
    .insertInto('published_rooms')
    .values({ room_id: roomId, published_ts: ts })
    .onConflict((oc) => oc.column('room_id').doNothing())
    .execute();
}

export async function unpublishRoom(db: DbOrTx, roomId: string): Promise<void> {
  await db.deleteFrom('published_rooms').where('room_id', '=', roomId).execute();
}

export async function isPublished(db: DbOrTx, roomId: string): Promise<boolean> {
  const row = await db.selectFrom('published_rooms').select('room_id').where('room_id', '=', roomId).executeTakeFirst();
  return row !== undefined;
}

export async function selectPublishedRooms(db: DbOrTx): Promise<string[]> {
  const rows = await db.selectFrom('published_rooms').select('room_id').execute();
  return rows.map((r) => r.room_id);
}
