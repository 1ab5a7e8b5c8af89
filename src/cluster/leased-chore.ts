import type { Logger } from 'pino';
import type { Lease, Leases } from './leases.js';

export interface LeasedChoreOptions {
  leases: Leases;
  logger: Logger;
  /** The lease that makes one node at a time do the work. */
  lease: string;
  everyMs: number;
  /** What the work is, for the log line of a failed run ("pruning ..."). */
  what: string;
  /** One run, as the lease's holder; how many rows (or things) it dealt with. */
  run(lease: Lease): Promise<number>;
}

/**
 * Periodic upkeep that one node of a cluster does at a time (pruning a table, say): each run
 * takes the lease or, when another node holds it, does nothing; a failed run is logged and the
 * next one tries again.
 */
export class LeasedChore {
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly opts: LeasedChoreOptions) {}

  start(): void {
    this.timer ??= setInterval(() => void this.runOnce(), this.opts.everyMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** One run now; 0 when another node holds the lease or the run failed. */
  async runOnce(): Promise<number> {
    try {
      const lease = await this.opts.leases.acquire(this.opts.lease);
      if (!lease) return 0;
      return await this.opts.run(lease);
    } catch (err) {
      this.opts.logger.warn({ err }, `${this.opts.what} failed`);
      return 0;
    }
  }
}
