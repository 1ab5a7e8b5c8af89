import type { Logger } from 'pino';
import type { Db } from '../db/schema.js';
import { pruneInvalidations } from './cache-invalidations-table.js';
import type { Leases } from './leases.js';

/** Rows are kept this long: a node away for longer finds its position pruned and flushes its caches instead. */
const KEEP_MS = 60 * 60_000;
const EVERY_MS = 60_000;

/**
 * Keeps the cache invalidation stream short: once a minute, the holder of
 * the lease deletes rows older than an hour, fenced by its epoch.
 */
export class InvalidationPruner {
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly deps: { db: Db; leases: Leases; logger: Logger; now(): number }) {}

  start(): void {
    this.timer ??= setInterval(() => void this.prune(), EVERY_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  async prune(): Promise<number> {
    try {
      const lease = await this.deps.leases.acquire('cache_invalidations_prune');
      if (!lease) return 0;
      return await this.deps.db.transaction().execute(async (trx) => {
        await this.deps.leases.fence(trx, lease);
        return pruneInvalidations(trx, this.deps.now() - KEEP_MS);
      });
    } catch (err) {
      this.deps.logger.warn({ err }, 'pruning cache invalidations failed');
      return 0;
    }
  }
}
