import type { LRUCache } from 'lru-cache';
import { boundedCache } from '../bounded-cache.js';
import type { Requester } from '../http/requester.js';

export interface CachedToken {
  requester: Requester;
  expiresTs: number | null;
  /** When this node last wrote the device's last_seen_ts. */
  seenWrittenTs: number;
}

/**
 * Access token hash → requester, bounded. Entries are dropped by token
 * hash or for every token of a user (deactivation, password change), so
 * a second index from user to cached hashes is kept in step with the LRU.
 * `generation` moves on every drop: a lookup that started before a drop
 * must not put its (possibly revoked) result back.
 */
export class TokenCache {
  private readonly lru: LRUCache<string, CachedToken>;
  private readonly byUser = new Map<string, Set<string>>();
  generation = 0;

  constructor(max: number, label?: { owner: object; name: string }) {
    this.lru = boundedCache<string, CachedToken>(max, {
      dispose: (value, hash) => {
        const set = this.byUser.get(value.requester.userId);
        if (!set) return;
        set.delete(hash);
        if (set.size === 0) this.byUser.delete(value.requester.userId);
      },
    }, label);
  }

  get(hash: string): CachedToken | undefined {
    return this.lru.get(hash);
  }

  /** Caches a lookup unless something was dropped since `generation` was read. */
  set(hash: string, entry: CachedToken, generation: number): void {
    if (generation !== this.generation) return;
    this.lru.set(hash, entry);
    let set = this.byUser.get(entry.requester.userId);
    if (!set) this.byUser.set(entry.requester.userId, (set = new Set()));
    set.add(hash);
  }

  /** `key` is a token hash, or a user id (`@...`) for all of that user's tokens. */
  drop(key: string): void {
    this.generation++;
    if (!key.startsWith('@')) {
      this.lru.delete(key);
      return;
    }
    const hashes = this.byUser.get(key);
    if (!hashes) return;
    for (const h of [...hashes]) this.lru.delete(h);
    this.byUser.delete(key);
  }

  clear(): void {
    this.generation++;
    this.lru.clear();
    this.byUser.clear();
  }

  get size(): number {
    return this.lru.size;
  }
}
