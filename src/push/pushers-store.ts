import type { DbOrTx } from '../db/schema.js';
import type { PusherRow } from './tables.js';

export async function getPushers(db: DbOrTx, userId: string): Promise<PusherRow[]> {
  return db.selectFrom('pushers').selectAll().where('user_id', '=', userId).orderBy('ts').execute();
}

export async function putPusher(db: DbOrTx, row: PusherRow): Promise<void> {
  const { app_id, pushkey, user_id, ...rest } = row;
  void [app_id, pushkey, user_id];
  await db
    .insertInto('pushers')
    .values(row)
    .onConflict((oc) => oc.columns(['app_id', 'pushkey', 'user_id']).doUpdateSet(rest))
    .execute();
}

export async function deletePusher(db: DbOrTx, userId: string, appId: string, pushkey: string): Promise<void> {
  await db.deleteFrom('pushers').where('user_id', '=', userId).where('app_id', '=', appId).where('pushkey', '=', pushkey).execute();
}

/** Without `append`, a pushkey belongs to one user: other users' pushers for it go. */
export async function deletePushersOfOthers(db: DbOrTx, userId: string, appId: string, pushkey: string): Promise<void> {
  await db.deleteFrom('pushers').where('user_id', '!=', userId).where('app_id', '=', appId).where('pushkey', '=', pushkey).execute();
}

/** The user's pushers set by any device but `deviceId` (or by an unrecorded one). */
export async function deletePushersOfOtherDevices(db: DbOrTx, userId: string, deviceId: string): Promise<void> {
  await db
    .deleteFrom('pushers')
    .where('user_id', '=', userId)
    .where((eb) => eb.or([eb('device_id', 'is', null), eb('device_id', '<>', deviceId)]))
    .execute();
}

/** The user's pushers set by these devices. */
export async function deletePushersOfDevices(db: DbOrTx, userId: string, deviceIds: string[]): Promise<void> {
  await db.deleteFrom('pushers').where('user_id', '=', userId).where('device_id', 'in', deviceIds).execute();
}
