import type { Logger } from 'pino';
import type { Db, Dialect, Tx } from '../db/schema.js';
import { LeaseLostError, type Lease, type Leases } from './leases.js';
import { checkLease, dropLease, renewLeases, takeLease } from './leases-table.js';

export interface PgLeasesOptions {
  db: Db;
  dialect: Dialect;
  nodeId: string;
  logger: Logger;
  /** How long a lease lasts past its last renewal, by the database's clock (15 s). */
  ttlMs?: number;
  /** How often held leases are renewed (5 s). */
  renewMs?: number;
  /** This node stops using a lease this long after its last successful renewal, by its own monotonic clock (10 s). */
  selfFenceMs?: number;
}

interface Held {
  epoch: number;
  /** performance.now() of the last successful take or renewal. */
  renewedAt: number;
}

/**
 * Leases shared by the nodes through rows in the database (CLUSTER.md 5).
 * Expiry is judged by the database's clock; this node also stops trusting
 * a lease `selfFenceMs` after its last renewal (before the others may take
 * it at `ttlMs`), and every progress write is fenced by the epoch in its own
 * transaction, so a holder that was paused or cut off cannot commit work
 * after another node took over.
 */
export class PgLeases implements Leases {
  private readonly held = new Map<string, Held>();
  /**
   * Leases another node held when last asked, and until when (performance.now()) this node does
   * not ask again: work that tries for its lease on every wake-up (a pusher, a destination's
   * queue) would otherwise cost the database a statement per event on every node but the
   * holder. A lease given up by a clean stop is taken over at most `askAgainMs` later.
   */
  private readonly refused = new Map<string, number>();
  private readonly askAgainMs: number;
  private readonly ttlMs: number;
  private readonly renewMs: number;
  private readonly selfFenceMs: number;
  private timer: NodeJS.Timeout | null = null;
  private renewing: Promise<void> | null = null;

  constructor(private readonly opts: PgLeasesOptions) {
    this.ttlMs = opts.ttlMs ?? 15_000;
    this.renewMs = opts.renewMs ?? 5_000;
    this.selfFenceMs = opts.selfFenceMs ?? 10_000;
    this.askAgainMs = Math.min(this.renewMs, this.ttlMs / 3);
  }

  async start(): Promise<void> {
    this.timer ??= setInterval(() => {
      this.renewing ??= this.renewAll().finally(() => (this.renewing = null));
    }, this.renewMs);
    this.timer.unref();
  }

  async acquire(name: string): Promise<Lease | null> {
    const h = this.held.get(name);
    if (h && this.fresh(h)) return { name, epoch: h.epoch };
    if ((this.refused.get(name) ?? -Infinity) > performance.now()) return null;
    const epoch = await takeLease(this.opts.db, this.opts.dialect, name, this.opts.nodeId, this.ttlMs);
    if (epoch === null) {
      this.held.delete(name);
      this.refused.set(name, performance.now() + this.askAgainMs);
      return null;
    }
    this.refused.delete(name);
    this.held.set(name, { epoch, renewedAt: performance.now() });
    this.opts.logger.info({ lease: name, epoch }, 'lease taken');
    return { name, epoch };
  }

  stillHeld(lease: Lease): boolean {
    const h = this.held.get(lease.name);
    return h !== undefined && h.epoch === lease.epoch && this.fresh(h);
  }

  async fence(trx: Tx, lease: Lease): Promise<void> {
    if (await checkLease(trx, this.opts.dialect, lease.name, this.opts.nodeId, lease.epoch)) return;
    this.forget(lease);
    throw new LeaseLostError(lease);
  }

  async release(lease: Lease): Promise<void> {
    this.forget(lease);
    await dropLease(this.opts.db, lease.name, this.opts.nodeId, lease.epoch);
  }

  heldNames(): string[] {
    return [...this.held].filter(([, h]) => this.fresh(h)).map(([name]) => name);
  }

  async close(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.renewing;
    const leases = [...this.held].map(([name, h]) => ({ name, epoch: h.epoch }));
    await Promise.allSettled(leases.map((l) => this.release(l)));
  }

  /** Renews every held lease in one statement; one that could not be renewed is lost (another node may have it). */
  async renewAll(): Promise<void> {
    const held = [...this.held].map(([name, h]) => ({ name, epoch: h.epoch, h }));
    if (held.length === 0) return;
    // Measured from before the statement: the database's expiry is later than this.
    const sentAt = performance.now();
    let renewed: Set<string>;
    try {
      renewed = await renewLeases(this.opts.db, this.opts.dialect, this.opts.nodeId, held, this.ttlMs);
    } catch (err) {
      // Unreachable database: keep trying until the self-fence stops the role.
      this.opts.logger.warn({ err }, 'lease renewal failed');
      return;
    }
    for (const { name, epoch, h } of held) {
      // Released (or taken again) while the statement ran: not this round's business.
      if (this.held.get(name) !== h) continue;
      if (renewed.has(name)) h.renewedAt = sentAt;
      else {
        this.forget({ name, epoch });
        this.opts.logger.warn({ lease: name, epoch }, 'lease lost');
      }
    }
  }

  private fresh(h: Held): boolean {
    return performance.now() - h.renewedAt < this.selfFenceMs;
  }

  private forget(lease: Lease): void {
    if (this.held.get(lease.name)?.epoch === lease.epoch) this.held.delete(lease.name);
  }
}
