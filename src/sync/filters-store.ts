import type { DbOrTx } from '../db/schema.js';
import './tables.js';

/** sync_filters: filters uploaded by users, immutable once written. */

export async function insertFilter(db: DbOrTx, userId: string, filterId: string, json: string): Promise<void> {
  await db
    .insertInto('sync_filters')
    .values({ user_id: userId, filter_id: filterId, filter_json: json })
    .onConflict((oc) => oc.columns(['user_id', 'filter_id']).doNothing())
    .execute();
}

export async function selectFilter(db: DbOrTx, userId: string, filterId: string): Promise<string | null> {
  const row = await db
    .selectFrom('sync_filters')
    .select('filter_json')
    .where('user_id', '=', userId)
    .where('filter_id', '=', filterId)
    .executeTakeFirst();
  return row?.filter_json ?? null;
}
