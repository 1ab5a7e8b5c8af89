import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LeaseLostError, type Lease, type Leases } from '../../src/cluster/leases.js';
import type { LiveNode } from '../../src/cluster/node-registry.js';
import { ShardOwner } from '../../src/cluster/shard-owner.js';
import { shardOf, shardsOf } from '../../src/cluster/shard-policy.js';
import type { Tx } from '../../src/db/schema.js';
import { createLogger } from '../../src/logger.js';

// The shard owner's rounds against leases kept in memory (one table shared by the "nodes"), so
// each step is driven by hand; the PostgreSQL leases are exercised in federation-shards.test.ts.

class LeaseTable {
  readonly rows = new Map<string, { holder: string; epoch: number }>();
  /** A node died: its leases expire. */
  expire(holder: string): void {
    for (const [name, r] of this.rows) if (r.holder === holder) this.rows.delete(name);
  }
  heldBy(holder: string): number[] {
    return [...this.rows].filter(([, r]) => r.holder === holder).map(([n]) => Number(n.split(':')[1])).sort((a, b) => a - b);
  }
}

class TableLeases implements Leases {
  constructor(private readonly table: LeaseTable, private readonly me: string) {}
  async start(): Promise<void> {}
  private readonly epochs = new Map<string, number>();
  async acquire(name: string): Promise<Lease | null> {
    const r = this.table.rows.get(name);
    if (r && r.holder !== this.me) return null;
    if (r) return { name, epoch: r.epoch };
    const epoch = (this.epochs.get(name) ?? 0) + 1;
    this.epochs.set(name, epoch);
    this.table.rows.set(name, { holder: this.me, epoch });
    return { name, epoch };
  }
  stillHeld(lease: Lease): boolean {
    const r = this.table.rows.get(lease.name);
    return r?.holder === this.me && r.epoch === lease.epoch;
  }
  async fence(_trx: Tx, lease: Lease): Promise<void> {
    if (!this.stillHeld(lease)) throw new LeaseLostError(lease);
  }
  async release(lease: Lease): Promise<void> {
    if (this.stillHeld(lease)) this.table.rows.delete(lease.name);
  }
  heldNames(): string[] {
    return [...this.table.rows].filter(([, r]) => r.holder === this.me).map(([n]) => n);
  }
  async close(): Promise<void> {}
}

const logger = createLogger('silent');

function cluster() {
  const table = new LeaseTable();
  const alive: LiveNode[] = [];
  const owner = (nodeId: string, address: string) => {
    alive.push({ nodeId, address, silentMs: 0 });
    return new ShardOwner({
      name: 'federation.shard',
      leases: new TableLeases(table, nodeId),
      nodes: { nodeId, live: async () => [...alive] },
      logger,
      everyMs: 60_000,
      handoverMs: 1000,
    });
  };
  const leave = (nodeId: string) => alive.splice(alive.findIndex((n) => n.nodeId === nodeId), 1);
  return { table, alive, owner, leave };
}

test('three owners share the 64 shards evenly; a dead one’s go to the others; back at its address it gets them again', async () => {
  const { table, owner, leave } = cluster();
  const a = owner('a1', 'http://a');
  const b = owner('b1', 'http://b');
  const c = owner('c1', 'http://c');
  for (let round = 0; round < 2; round++) for (const o of [a, b, c]) await o.tick();
  const counts = ['a1', 'b1', 'c1'].map((n) => table.heldBy(n).length);
  assert.deepEqual([...counts].sort(), [21, 21, 22]);
  assert.equal(table.rows.size, 64);
  assert.deepEqual(c.heldShards(), table.heldBy('c1'));
  const cHad = table.heldBy('c1');

  // c dies: its heartbeats stop and its leases expire.
  leave('c1');
  table.expire('c1');
  // Two rounds: a shard that moves between the survivors is free only after its holder's round.
  for (let round = 0; round < 2; round++) for (const o of [a, b]) await o.tick();
  assert.deepEqual([table.heldBy('a1').length, table.heldBy('b1').length], [32, 32]);

  // c comes back (a new process, the same address): the others give its shards back.
  const c2 = owner('c2', 'http://c');
  await c2.tick();
  assert.ok(table.heldBy('c2').length < cHad.length, 'still held by the others');
  for (const o of [a, b]) await o.tick();
  await c2.tick();
  assert.deepEqual(table.heldBy('c2'), cHad);
  assert.equal(table.rows.size, 64);
});

test('work in flight in a shard finishes before its lease is given back, and the worker stops using it at once', async () => {
  const { table, owner } = cluster();
  const a = owner('a1', 'http://a');
  await a.tick();
  assert.equal(table.heldBy('a1').length, 64, 'alone, it holds every shard');
  // A destination in a shard that b will be given once it is alive.
  const bGets = new Set(shardsOf('http://b', ['http://a', 'http://b']));
  let n = 0;
  while (!bGets.has(shardOf(`remote${n}.example`))) n++;
  const dest = `remote${n}.example`;
  const view = a.leasesFor(dest);
  const lease = await view.acquire('ignored');
  assert.ok(lease && view.stillHeld(lease));
  await view.release(lease);
  assert.ok(view.stillHeld(lease), 'a worker does not give its shard away');

  let sawLeaseDuringHandover: boolean | null = null;
  let workerStopped: boolean | null = null;
  a.onLeaving(async (inLeaving) => {
    if (!inLeaving(dest)) return;
    workerStopped = !view.stillHeld(lease);
    await new Promise((r) => setTimeout(r, 50));
    sawLeaseDuringHandover = table.rows.get(lease.name)?.holder === 'a1';
  });
  const gained: string[] = [];
  const b = owner('b1', 'http://b');
  b.onGained((inGained) => {
    if (inGained(dest)) gained.push(dest);
  });
  await a.tick();
  assert.equal(workerStopped, true, 'the worker sees the shard as gone before the handover');
  assert.equal(sawLeaseDuringHandover, true, 'the lease stayed until the work was done');
  assert.equal(view.stillHeld(lease), false);
  assert.equal(table.heldBy('a1').length, 32);
  await b.tick();
  assert.deepEqual(gained, [dest], 'the new holder is told');
  assert.equal(table.heldBy('b1').length, 32);
});

test('an owner that does not see itself among the live keeps what it holds; stop gives everything back', async () => {
  const { table, owner, leave } = cluster();
  const a = owner('a1', 'http://a');
  await a.tick();
  leave('a1');
  await a.tick();
  assert.equal(table.heldBy('a1').length, 64);
  await a.stop();
  assert.equal(table.rows.size, 0, 'stop gives every shard back');
});
