import type { Logger } from 'pino';
import type { Tx } from '../db/schema.js';
import type { Lease, Leases } from './leases.js';
import type { LiveNode } from './node-registry.js';
import { maxHeld, SHARDS, shardOf, shardsOf } from './shard-policy.js';

/**
 * What a sharded role (the federation sender) asks of the shard owner: per
 * key, the leases its worker sees (its shard's lease while this node holds
 * it), and news of shards gained and given back.
 */
export interface KeyShards {
  /** The leases the worker for `key` sees: `acquire` answers with its shard's lease, or null where another node has it. */
  leasesFor(key: string): Leases;
  /** Called with a test for "is this key in a shard just gained": wake the work waiting there. */
  onGained(fn: (inGained: (key: string) => boolean) => void): () => void;
  /** Awaited (for at most the handover time) before shards are given back: let work in flight there finish. */
  onLeaving(fn: (inLeaving: (key: string) => boolean) => Promise<void>): () => void;
}

export interface ShardOwnerOptions {
  /** Lease names are `${name}:${shard}`. */
  name: string;
  leases: Leases;
  nodes: { readonly nodeId: string; live(): Promise<LiveNode[]> };
  logger: Logger;
  /** How often the live nodes are read and shards taken or given back. */
  everyMs: number;
  /** How long work in flight in a shard given back may take to finish before its lease is dropped. */
  handoverMs: number;
  shards?: number;
}

/**
 * Takes and gives back the shard leases of one role (CLUSTER.md 5). Every
 * `everyMs` it reads the live nodes (their heartbeats), computes the shards
 * this node is given (shard-policy.ts: rendezvous-preferred, even shares),
 * gives back those it holds but is no longer given, once their work in
 * flight is done, and takes those it is given that are free, never holding
 * more than `maxHeld`. A node that died keeps its shards until its leases
 * expire and its heartbeats are missed; then the others are given them. A
 * node that comes back under the same name (its address) is given the same
 * shards again, and the others give them back.
 */
export class ShardOwner implements KeyShards {
  private readonly shards: number;
  private readonly held = new Map<number, Lease>();
  private readonly leaving = new Set<number>();
  private readonly gainedFns = new Set<(inGained: (key: string) => boolean) => void>();
  private readonly leavingFns = new Set<(inLeaving: (key: string) => boolean) => Promise<void>>();
  private timer: NodeJS.Timeout | null = null;
  private ticking: Promise<void> | null = null;
  private stopped = false;

  constructor(private readonly opts: ShardOwnerOptions) {
    this.shards = opts.shards ?? SHARDS;
  }

  /** Takes this node's shards (first round awaited), then keeps the share up to date. */
  async start(): Promise<void> {
    this.stopped = false;
    await this.tick();
    this.timer ??= setInterval(() => void this.tick(), this.opts.everyMs);
    this.timer.unref();
  }

  /** Stops, and gives every shard back at once (work in flight has stopped with the role). */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    await this.ticking;
    const leases = [...this.held.values()];
    this.held.clear();
    await Promise.allSettled(leases.map((l) => this.opts.leases.release(l)));
  }

  /** The shards this node holds and works on now. */
  heldShards(): number[] {
    return [...this.held.keys()].filter((s) => this.working(s) !== null).sort((a, b) => a - b);
  }

  leasesFor(key: string): Leases {
    const shard = shardOf(key, this.shards);
    const { leases } = this.opts;
    return {
      start: async () => {},
      acquire: async () => this.working(shard),
      stillHeld: (lease: Lease) => this.working(shard)?.epoch === lease.epoch && this.working(shard)?.name === lease.name,
      fence: (trx: Tx, lease: Lease) => leases.fence(trx, lease),
      // The shard's lease is the owner's to give back, not one key's.
      release: async () => {},
      // The shard lease itself shows among the node's leases (leases.heldNames()).
      heldNames: () => [],
      close: async () => {},
    };
  }

  onGained(fn: (inGained: (key: string) => boolean) => void): () => void {
    this.gainedFns.add(fn);
    return () => this.gainedFns.delete(fn);
  }

  onLeaving(fn: (inLeaving: (key: string) => boolean) => Promise<void>): () => void {
    this.leavingFns.add(fn);
    return () => this.leavingFns.delete(fn);
  }

  /** One round; rounds never overlap. */
  tick(): Promise<void> {
    this.ticking ??= this.round()
      .catch((err) => this.opts.logger.warn({ err, role: this.opts.name }, 'shard round failed'))
      .finally(() => (this.ticking = null));
    return this.ticking;
  }

  /** The shard's lease while this node holds it and is not giving it back. */
  private working(shard: number): Lease | null {
    const lease = this.held.get(shard);
    if (!lease || this.leaving.has(shard) || !this.opts.leases.stillHeld(lease)) return null;
    return lease;
  }

  private async round(): Promise<void> {
    if (this.stopped) return;
    const live = await this.opts.nodes.live();
    const names = nodeNames(live);
    const me = names.get(this.opts.nodes.nodeId);
    // Not among the live (its heartbeat is late): keep what it holds until it is seen again.
    if (me === undefined) return;
    const given = new Set(shardsOf(me, [...names.values()], this.shards));
    for (const [shard, lease] of this.held) {
      if (!this.opts.leases.stillHeld(lease)) {
        this.held.delete(shard);
        this.opts.logger.warn({ role: this.opts.name, shard, epoch: lease.epoch }, 'shard lost');
      }
    }
    const giveBack = [...this.held.keys()].filter((s) => !given.has(s));
    if (giveBack.length > 0) await this.giveBack(giveBack);
    const limit = maxHeld(names.size, this.shards);
    const gained: number[] = [];
    for (const shard of given) {
      if (this.stopped || this.held.size >= limit) break;
      if (this.held.has(shard)) continue;
      const lease = await this.opts.leases.acquire(`${this.opts.name}:${shard}`);
      if (!lease) continue;
      if (this.stopped) {
        await this.opts.leases.release(lease);
        break;
      }
      this.held.set(shard, lease);
      gained.push(shard);
    }
    if (gained.length === 0) return;
    this.opts.logger.info({ role: this.opts.name, gained, holding: this.held.size }, 'shards taken');
    const set = new Set(gained);
    const inGained = (key: string) => set.has(shardOf(key, this.shards));
    for (const fn of this.gainedFns) fn(inGained);
  }

  private async giveBack(shards: number[]): Promise<void> {
    for (const s of shards) this.leaving.add(s);
    const set = new Set(shards);
    const inLeaving = (key: string) => set.has(shardOf(key, this.shards));
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<void>((resolve) => {
      timer = setTimeout(resolve, this.opts.handoverMs);
    });
    await Promise.race([Promise.allSettled([...this.leavingFns].map((fn) => fn(inLeaving))), timeout]);
    clearTimeout(timer);
    for (const s of shards) {
      const lease = this.held.get(s);
      this.held.delete(s);
      this.leaving.delete(s);
      if (lease) await this.opts.leases.release(lease);
    }
    this.opts.logger.info({ role: this.opts.name, given_back: shards, holding: this.held.size }, 'shards given back');
  }
}

/**
 * The name each live node is known by in the shard policy: its address,
 * which it keeps across restarts, so a node that comes back is given its
 * shards again; its node id where it has no address or shares it.
 */
export function nodeNames(live: LiveNode[]): Map<string, string> {
  const count = new Map<string, number>();
  for (const n of live) if (n.address) count.set(n.address, (count.get(n.address) ?? 0) + 1);
  return new Map(live.map((n) => [n.nodeId, n.address && count.get(n.address) === 1 ? n.address : n.nodeId]));
}
