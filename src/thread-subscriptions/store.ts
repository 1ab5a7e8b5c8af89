import type { DbOrTx } from '../db/schema.js';
import type { ThreadSubscriptionRow } from './tables.js';

export async function selectSubscription(db: DbOrTx, userId: string, roomId: string, threadRoot: string): Promise<ThreadSubscriptionRow | undefined> {
  const r = await db
    .selectFrom('thread_subscriptions')
    .selectAll()
    .where('user_id', '=', userId)
    .where('room_id', '=', roomId)
    .where('thread_root', '=', threadRoot)
    .executeTakeFirst();
  return r && numeric(r);
}

/** PostgreSQL answers bigint columns as strings. */
function numeric(r: ThreadSubscriptionRow): ThreadSubscriptionRow {
  return { ...r, subscribed: Number(r.subscribed), automatic: Number(r.automatic), stream_pos: Number(r.stream_pos), unsubscribed_after: r.unsubscribed_after === null ? null : Number(r.unsubscribed_after) };
}

export async function upsertSubscription(db: DbOrTx, row: ThreadSubscriptionRow): Promise<void> {
  await db
    .insertInto('thread_subscriptions')
    .values(row)
    .onConflict((oc) =>
      oc.columns(['user_id', 'room_id', 'thread_root']).doUpdateSet({
        subscribed: row.subscribed,
        automatic: row.automatic,
        unsubscribed_after: row.unsubscribed_after,
        stream_pos: row.stream_pos,
      }),
    )
    .execute();
}

/** The user's changes with `after < stream_pos < before`, newest first, at most `limit`. */
export async function selectChanges(db: DbOrTx, userId: string, after: number, before: number, limit: number): Promise<ThreadSubscriptionRow[]> {
  const rows = await db
    .selectFrom('thread_subscriptions')
    .selectAll()
    .where('user_id', '=', userId)
    .where('stream_pos', '>', after)
    .where('stream_pos', '<', before)
    .orderBy('stream_pos', 'desc')
    .limit(limit)
    .execute();
  return rows.map(numeric);
}

/** The user's latest change position (0 when none). */
export async function selectLatestPos(db: DbOrTx, userId: string): Promise<number> {
  const r = await db
    .selectFrom('thread_subscriptions')
    .select((eb) => eb.fn.max('stream_pos').as('pos'))
    .where('user_id', '=', userId)
    .executeTakeFirst();
  return r?.pos === null || r?.pos === undefined ? 0 : Number(r.pos);
}

/** The users subscribed to a thread. */
export async function selectSubscribers(db: DbOrTx, roomId: string, threadRoot: string): Promise<string[]> {
  const rows = await db
    .selectFrom('thread_subscriptions')
    .select('user_id')
    .where('room_id', '=', roomId)
    .where('thread_root', '=', threadRoot)
    .where('subscribed', '=', 1)
    .execute();
  return rows.map((r) => r.user_id);
}
