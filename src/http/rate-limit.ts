import { limitExceeded } from './errors.js';
import type { RateLimit } from '../config/schema.js';

/**
 * Token buckets keyed by (action, user or IP): `check` throws M_LIMIT_EXCEEDED
 * (with `retry_after_ms`) when `key` has used its budget for `action`. One
 * node keeps its buckets in memory; nodes sharing a database share them
 * through it (cluster/shared-rate-limiter.ts), so the allowance does not grow
 * with the number of nodes.
 */
export interface RateLimiter {
  check(action: string, key: string): void | Promise<void>;
}

interface Bucket {
  tokens: number;
  updated: number;
}

/** The error for a bucket holding `tokens` (< 1): when the next token will be there. */
export function limitError(tokens: number, limit: RateLimit) {
  return limitExceeded(Math.ceil(((1 - tokens) / limit.per_second) * 1000));
}

/**
 * This process's buckets. Bounded: when the map grows past `maxKeys`, full
 * buckets (idle clients) are dropped first.
 */
export class MemoryRateLimiter implements RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly limits: Record<string, RateLimit>,
    private readonly enabled: boolean,
    private readonly maxKeys = 50_000,
    private readonly now: () => number = Date.now,
  ) {}

  check(action: string, key: string): void {
    if (!this.enabled) return;
    const limit = this.limits[action];
    if (!limit) return;
    const id = `${action}\u0000${key}`;
    const t = this.now();
    let b = this.buckets.get(id);
    if (!b) {
      if (this.buckets.size >= this.maxKeys) this.evict(t);
      b = { tokens: limit.burst, updated: t };
      this.buckets.set(id, b);
    }
    b.tokens = Math.min(limit.burst, b.tokens + ((t - b.updated) / 1000) * limit.per_second);
    b.updated = t;
    if (b.tokens < 1) throw limitError(b.tokens, limit);
    b.tokens -= 1;
  }

  private evict(t: number): void {
    for (const [id, b] of this.buckets) {
      const action = id.slice(0, id.indexOf('\u0000'));
      const limit = this.limits[action];
      if (!limit || b.tokens + ((t - b.updated) / 1000) * limit.per_second >= limit.burst) this.buckets.delete(id);
    }
    if (this.buckets.size >= this.maxKeys) this.buckets.clear();
  }
}
