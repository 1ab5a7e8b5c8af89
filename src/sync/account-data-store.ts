import type { DbOrTx } from '../db/schema.js';
import type { AccountDataRow } from './tables.js';

/** sync_account_data: one row per (user, room or '' for global, type). */

export async function upsertAccountData(
  db: DbOrTx,
  row: AccountDataRow,
): Promise<void> {
  await db
    .insertInto('sync_account_data')
    .values(row)
    .onConflict((oc) =>
      oc.columns(['user_id', 'room_id', 'type']).doUpdateSet({ content: row.content, stream_pos: row.stream_pos }),
    )
    .execute();
}

export async function selectAccountData(db: DbOrTx, userId: string, roomId: string, type: string): Promise<string | null> {
  const row = await db
    .selectFrom('sync_account_data')
    .select('content')
    .where('user_id', '=', userId)
    .where('room_id', '=', roomId)
    .where('type', '=', type)
    .executeTakeFirst();
  return row?.content ?? null;
}

/** Every row of the user changed in (fromPos, toPos]; fromPos 0 gives all of them. */
export async function selectAccountDataChanges(
  db: DbOrTx,
  userId: string,
  fromPos: number,
  toPos: number,
): Promise<AccountDataRow[]> {
  return db
    .selectFrom('sync_account_data')
    .selectAll()
    .where('user_id', '=', userId)
    .where('stream_pos', '>', fromPos)
    .where('stream_pos', '<=', toPos)
    .orderBy('stream_pos')
    .execute();
}
