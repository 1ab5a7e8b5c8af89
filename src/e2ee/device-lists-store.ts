import { sql } from 'kysely';
import type { DbOrTx } from '../db/schema.js';
import { chunks } from './chunk.js';
import type { DeviceListChangeRow, RemoteDeviceListRow } from './tables.js';

/** `deviceId`: the device that changed; null for a change to the users' cross-signing keys. */
export async function recordDeviceListChanges(db: DbOrTx, pos: number, userIds: string[], deviceId: string | null = null): Promise<void> {
  for (const part of chunks(userIds, 300)) {
    await db
      .insertInto('device_list_changes')
      .values(part.map((user_id) => ({ pos, user_id, device_id: deviceId })))
      .onConflict((oc) => oc.columns(['pos', 'user_id']).doNothing())
      .execute();
  }
}

// Beyond this many candidates, reading the range and filtering here beats a huge IN list.
const MAX_IN_LIST = 500;

/** Users with a device list change in (fromPos, toPos], optionally only among `among`. */
export async function usersWithDeviceListChanges(db: DbOrTx, fromPos: number, toPos: number, among?: Set<string>): Promise<Set<string>> {
  const out = new Set<string>();
  if (toPos <= fromPos || (among && among.size === 0)) return out;
  const base = db
    .selectFrom('device_list_changes')
    .select('user_id')
    .distinct()
    .where('pos', '>', fromPos)
    .where('pos', '<=', toPos);
  if (among && among.size <= MAX_IN_LIST) {
    for (const part of chunks([...among])) {
      for (const r of await base.where('user_id', 'in', part).execute()) out.add(r.user_id);
    }
    return out;
  }
  for (const r of await base.execute()) if (!among || among.has(r.user_id)) out.add(r.user_id);
  return out;
}

/** Every change in (fromPos, toPos], in order, at most `limit`. */
export async function selectDeviceListChanges(db: DbOrTx, fromPos: number, toPos: number, limit: number): Promise<DeviceListChangeRow[]> {
  if (toPos <= fromPos) return [];
  return db
    .selectFrom('device_list_changes')
    .selectAll()
    .where('pos', '>', fromPos)
    .where('pos', '<=', toPos)
    .orderBy('pos')
    .limit(limit)
    .execute();
}

/** The position of the user's last device change before `beforePos` (all of them when omitted); 0 when none. */
export async function lastDeviceChange(db: DbOrTx, userId: string, beforePos = Number.MAX_SAFE_INTEGER): Promise<number> {
  const row = await db
    .selectFrom('device_list_changes')
    .select(sql<number | string | null>`max(pos)`.as('pos'))
    .where('user_id', '=', userId)
    .where('device_id', 'is not', null)
    .where('pos', '<', beforePos)
    .executeTakeFirst();
  return row?.pos === null || row?.pos === undefined ? 0 : Number(row.pos);
}

// ---- remote users' device lists ----

export async function getRemoteDeviceList(db: DbOrTx, userId: string): Promise<RemoteDeviceListRow | undefined> {
  return db.selectFrom('remote_device_lists').selectAll().where('user_id', '=', userId).executeTakeFirst();
}

export async function getRemoteDeviceLists(db: DbOrTx, userIds: string[]): Promise<RemoteDeviceListRow[]> {
  const out: RemoteDeviceListRow[] = [];
  for (const part of chunks(userIds)) out.push(...(await db.selectFrom('remote_device_lists').selectAll().where('user_id', 'in', part).execute()));
  return out;
}

export async function putRemoteDeviceList(db: DbOrTx, row: RemoteDeviceListRow): Promise<void> {
  await db
    .insertInto('remote_device_lists')
    .values(row)
    .onConflict((oc) => oc.column('user_id').doUpdateSet({ stream_id: row.stream_id, stale: row.stale }))
    .execute();
}

export async function anyCurrentRemoteDeviceList(db: DbOrTx): Promise<boolean> {
  return (await db.selectFrom('remote_device_lists').select('user_id').where('stale', '=', 0).limit(1).executeTakeFirst()) !== undefined;
}

export async function markRemoteDeviceListsStale(db: DbOrTx, userIds: string[]): Promise<void> {
  for (const part of chunks(userIds)) await db.updateTable('remote_device_lists').set({ stale: 1 }).where('user_id', 'in', part).execute();
}
