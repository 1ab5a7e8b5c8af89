/**
 * Single-owner work (federation sending, pushers, background jobs) runs under
 * a lease with an epoch; progress writes check the epoch (CLUSTER.md 5).
 */
export interface Lease {
  name: string;
  epoch: number;
}

export interface Leases {
  /** Returns the lease if this node holds it now, or null. */
  acquire(name: string): Promise<Lease | null>;
  /** True while the lease is still ours; a fenced write checks the epoch too. */
  stillHeld(lease: Lease): boolean;
  release(lease: Lease): Promise<void>;
}

/** One node holds every lease. */
export class LocalLeases implements Leases {
  private readonly held = new Map<string, number>();
  async acquire(name: string): Promise<Lease> {
    const epoch = (this.held.get(name) ?? 0) + 1;
    this.held.set(name, epoch);
    return { name, epoch };
  }
  stillHeld(lease: Lease): boolean {
    return this.held.get(lease.name) === lease.epoch;
  }
  async release(lease: Lease): Promise<void> {
    if (this.held.get(lease.name) === lease.epoch) this.held.delete(lease.name);
  }
}
