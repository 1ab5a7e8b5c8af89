import type { DbOrTx, Tx } from '../db/schema.js';
import { nextPositions } from '../db/stream-positions.js';
import type { CacheInvalidation } from './bus.js';
import './tables.js';

/**
 * The cache invalidation stream: rows written in the transaction of the
 * change they describe, so they exist exactly when the change does. The
 * position is taken on the 'cache_invalidations' counter, whose row lock
 * is held until commit (position order is commit order). Its writers
 * (logouts, push rule edits) are rare, and take it before any other stream
 * position of their transaction (a logout's device-list change comes after),
 * so locks are always taken in the same order.
 */
export async function insertInvalidations(trx: Tx, msgs: CacheInvalidation[], now: number): Promise<void> {
  if (msgs.length === 0) return;
  const first = await nextPositions(trx, 'cache_invalidations', msgs.length);
  await trx
    .insertInto('cache_invalidations')
    .values(msgs.map((m, i) => ({ pos: first + i, cache: m.cache, key: m.key, created_ts: now })))
    .execute();
}

/** Rows in (after, upTo], oldest first, at most `limit`. */
export async function selectInvalidations(db: DbOrTx, after: number, upTo: number, limit: number) {
  return db
    .selectFrom('cache_invalidations')
    .select(['pos', 'cache', 'key'])
    .where('pos', '>', after)
    .where('pos', '<=', upTo)
    .orderBy('pos')
    .limit(limit)
    .execute();
}

/** Drops rows older than `beforeTs`: a node that was away longer flushes its caches instead. */
export async function pruneInvalidations(db: DbOrTx, beforeTs: number): Promise<number> {
  const r = await db.deleteFrom('cache_invalidations').where('created_ts', '<', beforeTs).executeTakeFirst();
  return Number(r.numDeletedRows);
}
