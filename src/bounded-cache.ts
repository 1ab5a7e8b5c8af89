import { LRUCache } from 'lru-cache';

const one = (): number => 1;

/**
 * An LRU cache of at most `max` entries that grows as it fills. lru-cache's
 * own `max` option allocates arrays of that length up front, which for a
 * dozen caches sized for a busy server is megabytes of idle memory on a
 * small one; counting entries through `maxSize` keeps the bound without it.
 */
export function boundedCache<K extends {}, V extends {}>(
  max: number,
  opts: Omit<LRUCache.Options<K, V, unknown>, 'max' | 'maxSize' | 'sizeCalculation'> = {},
): LRUCache<K, V> {
  return new LRUCache<K, V>({ ...opts, maxSize: Math.max(1, max), sizeCalculation: one });
}
