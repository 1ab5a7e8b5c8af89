import type { DbOrTx, Dialect } from '../db/schema.js';
import { chunks } from './receipts-store.js';
import type { PresenceRow } from './tables.js';

/** sync_presence: one row per local user who has ever had a presence. */

export async function selectPresence(db: DbOrTx, userId: string): Promise<PresenceRow | undefined> {
  return db.selectFrom('sync_presence').selectAll().where('user_id', '=', userId).executeTakeFirst();
}

export async function upsertPresence(db: DbOrTx, row: PresenceRow): Promise<void> {
  await db
    .insertInto('sync_presence')
    .values(row)
    .onConflict((oc) =>
      oc.column('user_id').doUpdateSet({
        presence: row.presence,
        status_msg: row.status_msg,
        last_active_ts: row.last_active_ts,
        last_sync_ts: row.last_sync_ts,
        stream_pos: row.stream_pos,
      }),
    )
    .execute();
}

/** Activity timestamps only: no stream position, nobody needs waking. */
export async function updatePresenceTimes(db: DbOrTx, userId: string, lastActiveTs: number, lastSyncTs: number): Promise<void> {
  await db
    .updateTable('sync_presence')
    .set({ last_active_ts: lastActiveTs, last_sync_ts: lastSyncTs })
    .where('user_id', '=', userId)
    .execute();
}

/** Rows of the given users changed in (fromPos, toPos]. */
export async function selectPresenceChanges(
  db: DbOrTx,
  userIds: string[],
  fromPos: number,
  toPos: number,
): Promise<PresenceRow[]> {
  const out: PresenceRow[] = [];
  for (const chunk of chunks(userIds, 500)) {
    const rows = await db
      .selectFrom('sync_presence')
      .selectAll()
      .where('user_id', 'in', chunk)
      .where('stream_pos', '>', fromPos)
      .where('stream_pos', '<=', toPos)
      .execute();
    out.push(...rows);
  }
  return out;
}

/** Users that still look online or idle: candidates for the timeouts. */
export async function selectNotOffline(db: DbOrTx): Promise<PresenceRow[]> {
  return db.selectFrom('sync_presence').selectAll().where('presence', '!=', 'offline').execute();
}

/**
 * In a timeout's transaction: whether `seen`'s row is still as the sweep read it, locked until
 * commit on PostgreSQL, so that a sync on another node in between (which moved the timestamps)
 * is not overwritten by a timeout decided from the old ones.
 */
export async function lockPresenceIfUnchanged(trx: DbOrTx, dialect: Dialect, seen: PresenceRow): Promise<boolean> {
  let q = trx
    .selectFrom('sync_presence')
    .select('user_id')
    .where('user_id', '=', seen.user_id)
    .where('presence', '=', seen.presence)
    .where('last_active_ts', '=', seen.last_active_ts)
    .where('last_sync_ts', '=', seen.last_sync_ts)
    .where('stream_pos', '=', seen.stream_pos);
  if (dialect === 'postgres') q = q.forUpdate();
  return (await q.executeTakeFirst()) !== undefined;
}
