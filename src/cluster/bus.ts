import { EventEmitter } from 'node:events';
import type { StreamName } from '../db/stream-positions.js';

/**
 * "Stream X reached position P". Published after the writing transaction
 * commits. `roomId` / `userIds` say who may care, so the notifier wakes only
 * those waiters; a consumer that missed messages catches up from the stream
 * tables by position, so the bus never carries data that exists nowhere else.
 */
export interface StreamAdvance {
  stream: StreamName;
  pos: number;
  roomId?: string;
  userIds?: string[];
}

/** A mutable cache entry that a write changed (DESIGN section 4). */
export interface CacheInvalidation {
  cache: string;
  key: string;
}

export interface Bus {
  publish(msg: StreamAdvance): void;
  onAdvance(fn: (msg: StreamAdvance) => void): () => void;
  invalidate(msg: CacheInvalidation): void;
  onInvalidate(fn: (msg: CacheInvalidation) => void): () => void;
  close(): Promise<void>;
}

/** Single-node bus: an in-process emitter. */
export class LocalBus implements Bus {
  private readonly emitter = new EventEmitter();
  constructor() {
    this.emitter.setMaxListeners(0);
  }
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
  onInvalidate(fn: (msg: CacheInvalidation) => void): () => void {
    this.emitter.on('invalidate', fn);
    return () => this.emitter.off('invalidate', fn);
  }
  async close(): Promise<void> {
    this.emitter.removeAllListeners();
  }
}
