import { sql } from 'kysely';
import { prepared } from '../db/prepared.js';
import type { DbOrTx } from '../db/schema.js';
import { chunks } from './chunk.js';
import type { DeviceKeysRow, FallbackKeyRow, OneTimeKeyRow } from './tables.js';

/** A (user, device, algorithm) triple, as /keys/claim asks for it. */
export interface ClaimTarget {
  userId: string;
  deviceId: string;
  algorithm: string;
}

export interface ClaimedKey extends ClaimTarget {
  keyId: string;
  json: string;
}

// ---- device keys ----

export async function getDeviceKeysOfUsers(db: DbOrTx, userIds: string[]): Promise<DeviceKeysRow[]> {
  const out: DeviceKeysRow[] = [];
  for (const part of chunks(userIds)) {
    out.push(...(await db.selectFrom('device_keys').selectAll().where('user_id', 'in', part).execute()));
  }
  return out;
}

export async function getDeviceKeys(db: DbOrTx, userId: string, deviceId: string): Promise<DeviceKeysRow | undefined> {
  return db
    .selectFrom('device_keys')
    .selectAll()
    .where('user_id', '=', userId)
    .where('device_id', '=', deviceId)
    .executeTakeFirst();
}

export async function putDeviceKeys(db: DbOrTx, row: DeviceKeysRow): Promise<void> {
  await db
    .insertInto('device_keys')
    .values(row)
    .onConflict((oc) => oc.columns(['user_id', 'device_id']).doUpdateSet({ json: row.json, pos: row.pos }))
    .execute();
}

/** Drops the keys held for these devices; returns whether any device had identity keys. */
export async function deleteDeviceData(db: DbOrTx, userId: string, deviceIds: string[]): Promise<boolean> {
  let hadKeys = false;
  for (const part of chunks(deviceIds)) {
    const r = await db.deleteFrom('device_keys').where('user_id', '=', userId).where('device_id', 'in', part).executeTakeFirst();
    if (Number(r.numDeletedRows) > 0) hadKeys = true;
    await db.deleteFrom('one_time_keys').where('user_id', '=', userId).where('device_id', 'in', part).execute();
    await db.deleteFrom('fallback_keys').where('user_id', '=', userId).where('device_id', 'in', part).execute();
  }
  return hadKeys;
}

// ---- one-time keys ----

export async function findOneTimeKeys(
  db: DbOrTx,
  userId: string,
  deviceId: string,
  keyIds: string[],
): Promise<Pick<OneTimeKeyRow, 'algorithm' | 'key_id' | 'json'>[]> {
  const out: Pick<OneTimeKeyRow, 'algorithm' | 'key_id' | 'json'>[] = [];
  for (const part of chunks(keyIds)) {
    out.push(
      ...(await db
        .selectFrom('one_time_keys')
        .select(['algorithm', 'key_id', 'json'])
        .where('user_id', '=', userId)
        .where('device_id', '=', deviceId)
        .where('key_id', 'in', part)
        .execute()),
    );
  }
  return out;
}

export async function insertOneTimeKeys(db: DbOrTx, rows: OneTimeKeyRow[]): Promise<void> {
  for (const part of chunks(rows, 200)) {
    await db
      .insertInto('one_time_keys')
      .values(part)
      .onConflict((oc) => oc.columns(['user_id', 'device_id', 'algorithm', 'key_id']).doNothing())
      .execute();
  }
}

// Both run on every /sync of a device: prepared, so a woken sync does not build them anew.
const selectOneTimeKeyCounts = prepared((db, p: { userId: string; deviceId: string }) =>
  db
    .selectFrom('one_time_keys')
    .select(['algorithm', (eb) => eb.fn.countAll<number>().as('n')])
    .where('user_id', '=', p.userId)
    .where('device_id', '=', p.deviceId)
    .groupBy('algorithm'),
);

export async function countOneTimeKeys(db: DbOrTx, userId: string, deviceId: string): Promise<Record<string, number>> {
  const { rows } = await selectOneTimeKeyCounts.execute(db, { userId, deviceId });
  const out: Record<string, number> = {};
  for (const r of rows) out[r.algorithm] = Number(r.n);
  return out;
}

/**
 * countOneTimeKeys for several devices in one statement per few hundred, by `user\u0000device`.
 * One device (a sync woken alone) takes the prepared statement: a list is built and compiled anew.
 */
export async function countOneTimeKeysOfDevices(db: DbOrTx, devices: { userId: string; deviceId: string }[]): Promise<Map<string, Record<string, number>>> {
  if (devices.length === 1) {
    const d = devices[0]!;
    return new Map([[deviceKey(d.userId, d.deviceId), await countOneTimeKeys(db, d.userId, d.deviceId)]]);
  }
  const out = new Map<string, Record<string, number>>(devices.map((d) => [deviceKey(d.userId, d.deviceId), {}]));
  for (const part of chunks(devices, 300)) {
    const rows = await db
      .selectFrom('one_time_keys')
      .select(['user_id', 'device_id', 'algorithm', (eb) => eb.fn.countAll<number>().as('n')])
      .where(({ eb, refTuple, tuple }) => eb(refTuple('user_id', 'device_id'), 'in', part.map((d) => tuple(d.userId, d.deviceId))))
      .groupBy(['user_id', 'device_id', 'algorithm'])
      .execute();
    for (const r of rows) out.get(deviceKey(r.user_id, r.device_id))![r.algorithm] = Number(r.n);
  }
  return out;
}

/** The key of a device in the maps of the batch reads: `user\u0000device`. */
export function deviceKey(userId: string, deviceId: string): string {
  return `${userId}\u0000${deviceId}`;
}

/** For each target, the key that was uploaded first (ties broken by key id). */
export async function oldestOneTimeKeys(db: DbOrTx, targets: ClaimTarget[]): Promise<ClaimedKey[]> {
  const out: ClaimedKey[] = [];
  for (const part of chunks(targets, 300)) {
    const rows = await db
      .selectFrom((eb) =>
        eb
          .selectFrom('one_time_keys')
          .select([
            'user_id',
            'device_id',
            'algorithm',
            'key_id',
            'json',
            sql<number>`row_number() over (partition by user_id, device_id, algorithm order by seq, key_id)`.as('rn'),
          ])
          .where(({ eb: e, refTuple, tuple }) =>
            e(
              refTuple('user_id', 'device_id', 'algorithm'),
              'in',
              part.map((t) => tuple(t.userId, t.deviceId, t.algorithm)),
            ),
          )
          .as('k'),
      )
      .select(['k.user_id', 'k.device_id', 'k.algorithm', 'k.key_id', 'k.json'])
      .where('k.rn', '=', 1)
      .execute();
    for (const r of rows) out.push({ userId: r.user_id, deviceId: r.device_id, algorithm: r.algorithm, keyId: r.key_id, json: r.json });
  }
  return out;
}

/** Deletes the given keys; returns those this statement deleted (a concurrent claimer may have taken some). */
export async function takeOneTimeKeys(db: DbOrTx, keys: ClaimedKey[]): Promise<ClaimedKey[]> {
  const out: ClaimedKey[] = [];
  for (const part of chunks(keys, 200)) {
    const rows = await db
      .deleteFrom('one_time_keys')
      .where(({ eb, refTuple, tuple }) =>
        eb(
          refTuple('user_id', 'device_id', 'algorithm', 'key_id'),
          'in',
          part.map((k) => tuple(k.userId, k.deviceId, k.algorithm, k.keyId)),
        ),
      )
      .returning(['user_id', 'device_id', 'algorithm', 'key_id', 'json'])
      .execute();
    for (const r of rows) out.push({ userId: r.user_id, deviceId: r.device_id, algorithm: r.algorithm, keyId: r.key_id, json: r.json });
  }
  return out;
}

// ---- fallback keys ----

export async function getFallbackKeys(db: DbOrTx, userId: string, deviceId: string): Promise<FallbackKeyRow[]> {
  return db
    .selectFrom('fallback_keys')
    .selectAll()
    .where('user_id', '=', userId)
    .where('device_id', '=', deviceId)
    .execute();
}

export async function putFallbackKey(db: DbOrTx, row: FallbackKeyRow): Promise<void> {
  await db
    .insertInto('fallback_keys')
    .values(row)
    .onConflict((oc) =>
      oc.columns(['user_id', 'device_id', 'algorithm']).doUpdateSet({ key_id: row.key_id, json: row.json, used: row.used }),
    )
    .execute();
}

const selectUnusedFallback = prepared((db, p: { userId: string; deviceId: string }) =>
  db
    .selectFrom('fallback_keys')
    .select('algorithm')
    .where('user_id', '=', p.userId)
    .where('device_id', '=', p.deviceId)
    .where('used', '=', 0)
    .orderBy('algorithm'),
);

export async function unusedFallbackAlgorithms(db: DbOrTx, userId: string, deviceId: string): Promise<string[]> {
  const { rows } = await selectUnusedFallback.execute(db, { userId, deviceId });
  return rows.map((r) => r.algorithm);
}

/** unusedFallbackAlgorithms for several devices, by `user\u0000device` (deviceKey); one device as countOneTimeKeysOfDevices. */
export async function unusedFallbackAlgorithmsOfDevices(db: DbOrTx, devices: { userId: string; deviceId: string }[]): Promise<Map<string, string[]>> {
  if (devices.length === 1) {
    const d = devices[0]!;
    return new Map([[deviceKey(d.userId, d.deviceId), await unusedFallbackAlgorithms(db, d.userId, d.deviceId)]]);
  }
  const out = new Map<string, string[]>(devices.map((d) => [deviceKey(d.userId, d.deviceId), []]));
  for (const part of chunks(devices, 300)) {
    const rows = await db
      .selectFrom('fallback_keys')
      .select(['user_id', 'device_id', 'algorithm'])
      .where(({ eb, refTuple, tuple }) => eb(refTuple('user_id', 'device_id'), 'in', part.map((d) => tuple(d.userId, d.deviceId))))
      .where('used', '=', 0)
      .orderBy('algorithm')
      .execute();
    for (const r of rows) out.get(deviceKey(r.user_id, r.device_id))!.push(r.algorithm);
  }
  return out;
}

/** Hands out the fallback keys for the targets and marks them used. */
export async function useFallbackKeys(db: DbOrTx, targets: ClaimTarget[]): Promise<ClaimedKey[]> {
  const out: ClaimedKey[] = [];
  for (const part of chunks(targets, 300)) {
    const rows = await db
      .selectFrom('fallback_keys')
      .selectAll()
      .where(({ eb, refTuple, tuple }) =>
        eb(refTuple('user_id', 'device_id', 'algorithm'), 'in', part.map((t) => tuple(t.userId, t.deviceId, t.algorithm))),
      )
      .execute();
    const fresh = rows.filter((r) => r.used === 0);
    if (fresh.length > 0) {
      await db
        .updateTable('fallback_keys')
        .set({ used: 1 })
        .where(({ eb, refTuple, tuple }) =>
          eb(refTuple('user_id', 'device_id', 'algorithm'), 'in', fresh.map((r) => tuple(r.user_id, r.device_id, r.algorithm))),
        )
        .execute();
    }
    for (const r of rows) out.push({ userId: r.user_id, deviceId: r.device_id, algorithm: r.algorithm, keyId: r.key_id, json: r.json });
  }
  return out;
}

/** Every device key row of the user (a remote user's list replaced as a whole). */
export async function deleteDeviceKeysOfUser(db: DbOrTx, userId: string): Promise<void> {
  await db.deleteFrom('device_keys').where('user_id', '=', userId).execute();
}

export async function deleteDeviceKeysRow(db: DbOrTx, userId: string, deviceId: string): Promise<void> {
  await db.deleteFrom('device_keys').where('user_id', '=', userId).where('device_id', '=', deviceId).execute();
}
