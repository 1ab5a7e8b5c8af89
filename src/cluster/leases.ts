import type { Tx } from '../db/schema.js';

/**
 * Single-owner work (federation sending, pushers, background jobs) runs under
 * a lease with an epoch; progress writes check the epoch (CLUSTER.md 5).
 */
export interface Lease {
  name: string;
  epoch: number;
}

/** A fenced write found the lease gone (expired, or taken by another node at a later epoch). */
export class LeaseLostError extends Error {
  constructor(readonly lease: Lease) {
    super(`lease ${lease.name} (epoch ${lease.epoch}) is no longer held`);
    this.name = 'LeaseLostError';
  }
}

export interface Leases {
  /** Starts renewing the leases this node takes. */
  start(): Promise<void>;
  /** Returns the lease if this node holds it now (taking it when free), or null. */
  acquire(name: string): Promise<Lease | null>;
  /** True while the lease is still ours by the local clock; a fenced write checks the database too. */
  stillHeld(lease: Lease): boolean;
  /** In the progress write's transaction: throws LeaseLostError unless the lease is still ours at this epoch. */
  fence(trx: Tx, lease: Lease): Promise<void>;
  release(lease: Lease): Promise<void>;
  /** The names of the leases this node holds now (for operators). */
  heldNames(): string[];
  /** Stops renewing and gives every lease up. */
  close(): Promise<void>;
}

/** One node holds every lease. */
export class LocalLeases implements Leases {
  private readonly held = new Map<string, number>();
  async start(): Promise<void> {}
  async acquire(name: string): Promise<Lease> {
    const epoch = (this.held.get(name) ?? 0) + 1;
    this.held.set(name, epoch);
    return { name, epoch };
  }
  stillHeld(lease: Lease): boolean {
    return this.held.get(lease.name) === lease.epoch;
  }
  async fence(_trx: Tx, lease: Lease): Promise<void> {
    if (!this.stillHeld(lease)) throw new LeaseLostError(lease);
  }
  async release(lease: Lease): Promise<void> {
    if (this.held.get(lease.name) === lease.epoch) this.held.delete(lease.name);
  }
  heldNames(): string[] {
    return [...this.held.keys()];
  }
  async close(): Promise<void> {
    this.held.clear();
  }
}
