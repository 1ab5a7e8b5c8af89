import { EventEmitter } from 'node:events';
import type { Tx } from '../db/schema.js';
import type { AnnouncedStream, StreamName } from '../db/stream-positions.js';

/**
 * "Stream X reached position P". Published after the writing transaction
 * commits. `roomId` / `userIds` say who may care, so the notifier wakes only
 * those waiters; a consumer that missed messages catches up from the stream
 * tables by position, so the bus never carries data that exists nowhere else.
 * `everyone` marks an advance whose audience is unknown (another node's poke
 * was missed): every waiter behind `pos` looks again. Typing carries the
 * room's typists, so another node can answer without a read.
 */
export interface StreamAdvance {
  stream: AnnouncedStream;
  pos: number;
  roomId?: string;
  userIds?: string[];
  everyone?: boolean;
  /** Typing: the room's typists with their expiry (ms) after this change, as written to the table. */
  typists?: Array<[string, number]>;
}

/** A mutable cache entry that a write changed (DESIGN section 4). */
export interface CacheInvalidation {
  cache: string;
  /** The entry's key, or ALL_KEYS for every entry of the cache. */
  key: string;
}

/** A key that drops every entry of a cache (a node that lost track of the invalidation stream). */
export const ALL_KEYS = '*';

export interface Bus {
  /** Connects what needs connecting (the PostgreSQL listener); called once before serving. */
  start(): Promise<void>;
  publish(msg: StreamAdvance): void;
  onAdvance(fn: (msg: StreamAdvance) => void): () => void;
  /** After commit: drops the entries here and, through the poke, on other nodes at once. */
  invalidate(msg: CacheInvalidation): void;
  /**
   * In the writing transaction: records invalidations so every node applies
   * them even if this one dies before `invalidate` runs (a no-op with one node).
   */
  invalidateIn(trx: Tx, msgs: CacheInvalidation[]): Promise<void>;
  onInvalidate(fn: (msg: CacheInvalidation) => void): () => void;
  /**
   * `fn` rebuilds what this node derived from a stream's announcements, when
   * the stream's head shows announcements were missed (or are still on their
   * way): awaited before `settle()` resolves and before waiters are woken.
   * Only another node's writes can be missed, so with one node it never runs.
   */
  onMissed(stream: StreamName, fn: (head: number) => Promise<void> | void): void;
  /**
   * Resolves once every write committed before the call is reflected in this
   * node's caches: call before answering from a cache another node's write
   * may have made wrong.
   */
  settle(): Promise<void>;
  /** False while the bus cannot hear other nodes (listener down): the node is not ready. */
  readonly listening: boolean;
  close(): Promise<void>;
}

/** Single-node bus: an in-process emitter; every writer is in this process, so caches are always settled. */
export class LocalBus implements Bus {
  private readonly emitter = new EventEmitter();
  readonly listening = true;
  constructor() {
    this.emitter.setMaxListeners(0);
  }
  async start(): Promise<void> {}
  publish(msg: StreamAdvance): void {
    this.emitter.emit('advance', msg);
  }
  onAdvance(fn: (msg: StreamAdvance) => void): () => void {
    this.emitter.on('advance', fn);
    return () => this.emitter.off('advance', fn);
  }
  invalidate(msg: CacheInvalidation): void {
    this.emitter.emit('invalidate', msg);
  }
  async invalidateIn(): Promise<void> {}
  onMissed(): void {}
  onInvalidate(fn: (msg: CacheInvalidation) => void): () => void {
    this.emitter.on('invalidate', fn);
    return () => this.emitter.off('invalidate', fn);
  }
  async settle(): Promise<void> {}
  async close(): Promise<void> {
    this.emitter.removeAllListeners();
  }
}
