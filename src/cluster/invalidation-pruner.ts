import type { Logger } from 'pino';
import type { Db } from '../db/schema.js';
import { pruneInvalidations } from './cache-invalidations-table.js';
import { LeasedChore } from './leased-chore.js';
import type { Leases } from './leases.js';

/** Rows are kept this long: a node away for longer finds its position pruned and flushes its caches instead. */
const KEEP_MS = 60 * 60_000;
const EVERY_MS = 60_000;

/**
 * Keeps the cache invalidation stream short: once a minute, the holder of
 * the lease deletes rows older than an hour, fenced by its epoch.
 */
export class InvalidationPruner extends LeasedChore {
  constructor(deps: { db: Db; leases: Leases; logger: Logger; now(): number }) {
    super({
      leases: deps.leases,
      logger: deps.logger,
      lease: 'cache_invalidations_prune',
      everyMs: EVERY_MS,
      what: 'pruning cache invalidations',
      run: (lease) =>
        deps.db.transaction().execute(async (trx) => {
          await deps.leases.fence(trx, lease);
          return pruneInvalidations(trx, deps.now() - KEEP_MS);
        }),
    });
  }

  prune(): Promise<number> {
    return this.runOnce();
  }
}
