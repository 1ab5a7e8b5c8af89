import type { DbOrTx } from '../db/schema.js';
import type { SlidingConnectionRow, SlidingPositionRow } from './tables.js';
import './tables.js';

/** sliding_sync_connections and sliding_sync_positions: the per-connection state of MSC4186, in the database so any node can continue a connection. */

export async function selectConnection(db: DbOrTx, connKey: string): Promise<SlidingConnectionRow | undefined> {
  const row = await db.selectFrom('sliding_sync_connections').selectAll().where('conn_key', '=', connKey).executeTakeFirst();
  return row ? { ...row, created_ts: Number(row.created_ts), last_used_ts: Number(row.last_used_ts) } : undefined;
}

export async function selectConnectionKey(db: DbOrTx, userId: string, deviceId: string, connId: string): Promise<string | undefined> {
  const row = await db
    .selectFrom('sliding_sync_connections')
    .select('conn_key')
    .where('user_id', '=', userId)
    .where('device_id', '=', deviceId)
    .where('conn_id', '=', connId)
    .executeTakeFirst();
  return row?.conn_key;
}

export async function insertConnection(db: DbOrTx, row: SlidingConnectionRow): Promise<void> {
  await db.insertInto('sliding_sync_connections').values(row).execute();
}

export async function deleteConnections(db: DbOrTx, connKeys: string[]): Promise<void> {
  if (connKeys.length === 0) return;
  await db.deleteFrom('sliding_sync_positions').where('conn_key', 'in', connKeys).execute();
  await db.deleteFrom('sliding_sync_connections').where('conn_key', 'in', connKeys).execute();
}

export async function touchConnection(db: DbOrTx, connKey: string, ts: number): Promise<void> {
  await db.updateTable('sliding_sync_connections').set({ last_used_ts: ts }).where('conn_key', '=', connKey).execute();
}

/** A device's connections beyond the `keep` most recently used. */
export async function selectSurplusConnections(db: DbOrTx, userId: string, deviceId: string, keep: number): Promise<string[]> {
  const rows = await db
    .selectFrom('sliding_sync_connections')
    .select('conn_key')
    .where('user_id', '=', userId)
    .where('device_id', '=', deviceId)
    .orderBy('last_used_ts', 'desc')
    .orderBy('conn_key')
    .offset(keep)
    .limit(1000)
    .execute();
  return rows.map((r) => r.conn_key);
}

/** Connections of any user not used since `before` (a bounded batch). */
export async function selectIdleConnections(db: DbOrTx, before: number, limit: number): Promise<string[]> {
  const rows = await db
    .selectFrom('sliding_sync_connections')
    .select('conn_key')
    .where('last_used_ts', '<', before)
    .limit(limit)
    .execute();
  return rows.map((r) => r.conn_key);
}

export async function selectPosition(db: DbOrTx, connKey: string, posId: string): Promise<SlidingPositionRow | undefined> {
  const row = await db
    .selectFrom('sliding_sync_positions')
    .selectAll()
    .where('conn_key', '=', connKey)
    .where('pos_id', '=', posId)
    .executeTakeFirst();
  return row ? { ...row, created_ts: Number(row.created_ts) } : undefined;
}

export async function insertPosition(db: DbOrTx, row: SlidingPositionRow): Promise<void> {
  await db.insertInto('sliding_sync_positions').values(row).execute();
}

/**
 * Once the client names `posId`, every position it could still name is that
 * one or one computed from it: the others go.
 */
export async function deletePositionsOtherThan(db: DbOrTx, connKey: string, posId: string): Promise<void> {
  await db
    .deleteFrom('sliding_sync_positions')
    .where('conn_key', '=', connKey)
    .where('pos_id', '!=', posId)
    .where('parent_id', '!=', posId)
    .execute();
}

/** Children of `parentId` beyond the `keep` newest (answers to retried requests the client dropped). */
export async function deleteSurplusChildren(db: DbOrTx, connKey: string, parentId: string, keep: number): Promise<void> {
  const rows = await db
    .selectFrom('sliding_sync_positions')
    .select('pos_id')
    .where('conn_key', '=', connKey)
    .where('parent_id', '=', parentId)
    .orderBy('created_ts', 'desc')
    .orderBy('pos_id')
    .offset(keep)
    .limit(1000)
    .execute();
  if (rows.length === 0) return;
  await db
    .deleteFrom('sliding_sync_positions')
    .where('conn_key', '=', connKey)
    .where(
      'pos_id',
      'in',
      rows.map((r) => r.pos_id),
    )
    .execute();
}
