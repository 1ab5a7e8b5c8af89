import type { DbOrTx } from '../db/schema.js';
import type { DeviceRow } from './tables.js';

export async function getDevice(db: DbOrTx, userId: string, deviceId: string): Promise<DeviceRow | undefined> {
  return db.selectFrom('devices').selectAll().where('user_id', '=', userId).where('device_id', '=', deviceId).executeTakeFirst();
}

export async function listDevices(db: DbOrTx, userId: string): Promise<DeviceRow[]> {
  return db.selectFrom('devices').selectAll().where('user_id', '=', userId).orderBy('device_id').execute();
}

/** Inserts a device; false when the user already has one with that id. */
export async function insertDevice(db: DbOrTx, row: DeviceRow): Promise<boolean> {
  const r = await db
    .insertInto('devices')
    .values(row)
    .onConflict((oc) => oc.columns(['user_id', 'device_id']).doNothing())
    .returning('device_id')
    .executeTakeFirst();
  return r !== undefined;
}

export async function setDeviceDisplayName(db: DbOrTx, userId: string, deviceId: string, name: string): Promise<boolean> {
  const r = await db
    .updateTable('devices')
    .set({ display_name: name })
    .where('user_id', '=', userId)
    .where('device_id', '=', deviceId)
    .executeTakeFirst();
  return Number(r.numUpdatedRows) > 0;
}

export async function touchDevice(db: DbOrTx, userId: string, deviceId: string, ts: number, ip?: string): Promise<void> {
  await db
    .updateTable('devices')
    .set(ip === undefined ? { last_seen_ts: ts } : { last_seen_ts: ts, last_seen_ip: ip })
    .where('user_id', '=', userId)
    .where('device_id', '=', deviceId)
    .execute();
}

/** Deletes the listed devices (all of the user's devices when `deviceIds` is undefined); returns the ids that existed. */
export async function deleteDevices(db: DbOrTx, userId: string, deviceIds?: string[]): Promise<string[]> {
  if (deviceIds && deviceIds.length === 0) return [];
  let q = db.deleteFrom('devices').where('user_id', '=', userId);
  if (deviceIds) q = q.where('device_id', 'in', deviceIds);
  const rows = await q.returning('device_id').execute();
  return rows.map((r) => r.device_id);
}

export async function listDeviceIds(db: DbOrTx, userId: string): Promise<string[]> {
  const rows = await db.selectFrom('devices').select('device_id').where('user_id', '=', userId).execute();
  return rows.map((r) => r.device_id);
}

/** Every device of several users, in one query. */
export async function listDevicesOfUsers(db: DbOrTx, userIds: string[]): Promise<DeviceRow[]> {
  if (userIds.length === 0) return [];
  return db.selectFrom('devices').selectAll().where('user_id', 'in', userIds).execute();
}
