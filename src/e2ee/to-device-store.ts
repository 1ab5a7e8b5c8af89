import type { DbOrTx } from '../db/schema.js';
import { chunks } from './chunk.js';
import type { ToDeviceRow } from './tables.js';

/** Records a /sendToDevice transaction id; false when this device already used it. */
export async function claimToDeviceTxn(db: DbOrTx, sender: string, senderDevice: string, txnId: string, ts: number): Promise<boolean> {
  const rows = await db
    .insertInto('to_device_txns')
    .values({ sender, sender_device: senderDevice, txn_id: txnId, ts })
    .onConflict((oc) => oc.columns(['sender', 'sender_device', 'txn_id']).doNothing())
    .returning('txn_id')
    .execute();
  return rows.length > 0;
}

export async function pruneToDeviceTxns(db: DbOrTx, olderThan: number): Promise<void> {
  await db.deleteFrom('to_device_txns').where('ts', '<', olderThan).execute();
}

/** The devices of `userIds` with at least `min` undelivered messages, as [user id, device id] pairs. */
export async function devicesWithQueued(db: DbOrTx, userIds: string[], min: number): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for (const part of chunks(userIds)) {
    const rows = await db
      .selectFrom('to_device')
      .select(['user_id', 'device_id'])
      .where('user_id', 'in', part)
      .groupBy(['user_id', 'device_id'])
      .having((eb) => eb.fn.countAll(), '>=', min)
      .execute();
    for (const r of rows) out.push([r.user_id, r.device_id]);
  }
  return out;
}

export async function insertToDevice(db: DbOrTx, rows: ToDeviceRow[]): Promise<void> {
  for (const part of chunks(rows, 200)) await db.insertInto('to_device').values(part).execute();
}

/** Messages in (fromPos, toPos], oldest first, at most `limit`. */
export async function readToDevice(
  db: DbOrTx,
  userId: string,
  deviceId: string,
  fromPos: number,
  toPos: number,
  limit: number,
): Promise<Pick<ToDeviceRow, 'pos' | 'sender' | 'type' | 'content'>[]> {
  return db
    .selectFrom('to_device')
    .select(['pos', 'sender', 'type', 'content'])
    .where('user_id', '=', userId)
    .where('device_id', '=', deviceId)
    .where('pos', '>', fromPos)
    .where('pos', '<=', toPos)
    .orderBy('pos')
    .limit(limit)
    .execute();
}

export async function deleteToDeviceUpTo(db: DbOrTx, userId: string, deviceId: string, pos: number): Promise<void> {
  await db
    .deleteFrom('to_device')
    .where('user_id', '=', userId)
    .where('device_id', '=', deviceId)
    .where('pos', '<=', pos)
    .execute();
}

export async function deleteToDevice(db: DbOrTx, userId: string, deviceIds: string[]): Promise<void> {
  for (const part of chunks(deviceIds)) {
    await db.deleteFrom('to_device').where('user_id', '=', userId).where('device_id', 'in', part).execute();
  }
}
