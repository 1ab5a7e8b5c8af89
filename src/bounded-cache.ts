import { LRUCache } from 'lru-cache';

const one = (): number => 1;

/** Lookups a cache answered from memory and lookups it did not, since it was made. */
export interface CacheCounts {
  hits: number;
  misses: number;
  size: number;
  max: number;
}

/** An LRU cache that counts its lookups for the metrics: `get` only (`peek` serves housekeeping). */
export class CountingCache<K extends {}, V extends {}> extends LRUCache<K, V> {
  hits = 0;
  misses = 0;

  override get(k: K, opts?: LRUCache.GetOptions<K, V, unknown>): V | undefined {
    const v = super.get(k, opts);
    if (v === undefined) this.misses++;
    else this.hits++;
    return v;
  }

  counts(): CacheCounts {
    return { hits: this.hits, misses: this.misses, size: this.size, max: this.maxSize };
  }
}

/**
 * Named caches per owner (a server's Context): several servers may share one process (tests), so
 * each server's metrics read only its own caches. Weak: a stopped server's caches are not kept.
 */
const named = new WeakMap<object, Map<string, CountingCache<{}, {}>>>();

/** The caches made with a name for `owner`, by name. */
export function cachesOf(owner: object): ReadonlyMap<string, CountingCache<{}, {}>> {
  return named.get(owner) ?? new Map();
}

/**
 * An LRU cache of at most `max` entries that grows as it fills. lru-cache's
 * own `max` option allocates arrays of that length up front, which for a
 * dozen caches sized for a busy server is megabytes of idle memory on a
 * small one; counting entries through `maxSize` keeps the bound without it.
 * With `label`, the cache's hit counts are reported under `label.name` for `label.owner`.
 */
export function boundedCache<K extends {}, V extends {}>(
  max: number,
  opts: Omit<LRUCache.Options<K, V, unknown>, 'max' | 'maxSize' | 'sizeCalculation'> = {},
  label?: { owner: object; name: string },
): CountingCache<K, V> {
  const cache = new CountingCache<K, V>({ ...opts, maxSize: Math.max(1, max), sizeCalculation: one });
  if (label) {
    let byName = named.get(label.owner);
    if (!byName) named.set(label.owner, (byName = new Map()));
    byName.set(label.name, cache as unknown as CountingCache<{}, {}>);
  }
  return cache;
}
