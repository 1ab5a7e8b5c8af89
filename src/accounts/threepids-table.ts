import type { DbOrTx } from '../db/schema.js';
import type { ThreepidIdServerBindRow, UserThreepidRow } from './tables.js';

/** SQL for `user_threepids` (addresses added to accounts) and `threepid_id_server_binds`. */

export async function selectThreepidsOf(db: DbOrTx, userId: string): Promise<UserThreepidRow[]> {
  return db.selectFrom('user_threepids').selectAll().where('user_id', '=', userId).orderBy('added_ts').execute();
}

export async function selectThreepidOwner(db: DbOrTx, medium: string, address: string): Promise<string | undefined> {
  const row = await db.selectFrom('user_threepids').select('user_id').where('medium', '=', medium).where('address', '=', address).executeTakeFirst();
  return row?.user_id;
}

export async function insertThreepid(db: DbOrTx, row: UserThreepidRow): Promise<void> {
  await db.insertInto('user_threepids').values(row).execute();
}

/** True when the user had the address. */
export async function deleteThreepid(db: DbOrTx, userId: string, medium: string, address: string): Promise<boolean> {
  const r = await db.deleteFrom('user_threepids').where('user_id', '=', userId).where('medium', '=', medium).where('address', '=', address).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}

export async function deleteThreepidsOf(db: DbOrTx, userId: string): Promise<void> {
  await db.deleteFrom('user_threepids').where('user_id', '=', userId).execute();
}

export async function insertIdServerBind(db: DbOrTx, row: ThreepidIdServerBindRow): Promise<void> {
  await db.insertInto('threepid_id_server_binds').values(row).onConflict((oc) => oc.doNothing()).execute();
}

export async function selectIdServerBinds(db: DbOrTx, userId: string, medium?: string, address?: string): Promise<ThreepidIdServerBindRow[]> {
  let q = db.selectFrom('threepid_id_server_binds').selectAll().where('user_id', '=', userId);
  if (medium !== undefined) q = q.where('medium', '=', medium);
  if (address !== undefined) q = q.where('address', '=', address);
  return q.execute();
}

export async function deleteIdServerBind(db: DbOrTx, row: ThreepidIdServerBindRow): Promise<void> {
  await db
    .deleteFrom('threepid_id_server_binds')
    .where('user_id', '=', row.user_id)
    .where('medium', '=', row.medium)
    .where('address', '=', row.address)
    .where('id_server', '=', row.id_server)
    .execute();
}
