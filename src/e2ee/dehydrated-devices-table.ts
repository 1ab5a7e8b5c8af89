/** dehydrated_devices: each user's dehydrated device (MSC3814) and its opaque, client-encrypted data. */
import type { DbOrTx } from '../db/schema.js';

declare module '../db/schema.js' {
  interface Tables {
    dehydrated_devices: DehydratedDeviceRow;
  }
}

export interface DehydratedDeviceRow {
  user_id: string;
  device_id: string;
  /** The client's `device_data` object as JSON. */
  device_data: string;
}

export async function selectDehydratedDevice(db: DbOrTx, userId: string): Promise<DehydratedDeviceRow | undefined> {
  return db.selectFrom('dehydrated_devices').selectAll().where('user_id', '=', userId).executeTakeFirst();
}

export async function upsertDehydratedDevice(db: DbOrTx, row: DehydratedDeviceRow): Promise<void> {
  await db
    .insertInto('dehydrated_devices')
    .values(row)
    .onConflict((oc) => oc.column('user_id').doUpdateSet({ device_id: row.device_id, device_data: row.device_data }))
    .execute();
}

export async function deleteDehydratedDevice(db: DbOrTx, userId: string): Promise<void> {
  await db.deleteFrom('dehydrated_devices').where('user_id', '=', userId).execute();
}
