import type { Logger } from 'pino';
import type { RateLimit } from '../config/schema.js';
import type { Db } from '../db/schema.js';
import { limitError, type RateLimiter } from '../http/rate-limit.js';
import { LeasedChore } from './leased-chore.js';
import type { Leases } from './leases.js';
import { deleteFullBuckets, takeToken } from './rate-limit-table.js';

const PRUNE_EVERY_MS = 60_000;

/**
 * Rate limits for nodes sharing a PostgreSQL database: the buckets live in
 * an UNLOGGED table (rate-limit-table.ts), so a client spreading requests
 * over N nodes gets one node's allowance, not N. A check costs one round
 * trip. Once a minute the holder of a lease deletes the buckets that have
 * refilled, so the table holds only the clients active lately.
 */
export class SharedRateLimiter implements RateLimiter {
  private readonly pruner: LeasedChore;

  constructor(
    private readonly deps: { db: Db; leases: Leases; logger: Logger; limits: Record<string, RateLimit>; enabled: boolean },
  ) {
    this.pruner = new LeasedChore({
      leases: deps.leases,
      logger: deps.logger,
      lease: 'rate_limit_buckets_prune',
      everyMs: PRUNE_EVERY_MS,
      what: 'pruning rate limit buckets',
      run: async () => {
        let deleted = 0;
        for (const [action, limit] of Object.entries(deps.limits)) {
          deleted += await deleteFullBuckets(deps.db, action, limit.per_second, limit.burst);
        }
        return deleted;
      },
    });
  }

  async check(action: string, key: string): Promise<void> {
    if (!this.deps.enabled) return;
    const limit = this.deps.limits[action];
    if (!limit) return;
    const taken = await takeToken(this.deps.db, action, key, limit.per_second, limit.burst);
    if (!taken.allowed) throw limitError(taken.tokens, limit);
  }

  start(): void {
    if (this.deps.enabled) this.pruner.start();
  }

  stop(): void {
    this.pruner.stop();
  }

  prune(): Promise<number> {
    return this.pruner.runOnce();
  }
}
