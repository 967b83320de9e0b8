import { LRUCache } from 'lru-cache';

/**
 * An LRUCache bounded by entry count that grows with use and never runs empty
 * by deletion.
 *
 * The bound is given as maxSize with every entry of size 1, not as `max`:
 * with `max` lru-cache preallocates its slot arrays for the full count, which
 * for the metadata caches (200,000 entries each) made a fresh mount's heap
 * about 30 MB. The garbage collector scans all of it in every full
 * collection, and Buffer traffic triggers one every ~80 ms during a large
 * write: without those arrays a 512 MiB write costs the daemon about a fifth
 * less CPU.
 *
 * lru-cache resets every slot when the last entry is deleted, O(slots); with
 * caches in the hundreds of thousands that turned each create (a "missing"
 * entry deleted as the file appears) into a millisecond. A pinned entry that
 * nothing reads keeps the cache from ever dropping to empty that way.
 */
export class BoundedCache<V extends {}> {
  private static readonly PIN = '\0pin';
  private readonly lru: LRUCache<string, V>;

  constructor(
    options: { max: number; ttl?: number },
    private readonly pinValue: V,
  ) {
    this.lru = new LRUCache<string, V>({
      maxSize: Math.max(2, options.max + 1),
      sizeCalculation: () => 1,
      ...(options.ttl ? { ttl: options.ttl } : {}),
    });
    this.pin();
  }

  private pin(): void {
    if (!this.lru.has(BoundedCache.PIN)) this.lru.set(BoundedCache.PIN, this.pinValue, { ttl: 0, noUpdateTTL: true });
  }

  get(key: string): V | undefined {
    return this.lru.get(key);
  }

  has(key: string): boolean {
    return this.lru.has(key);
  }

  /** `ttl` (ms) instead of the cache's own, for an entry that must not outlive the one it replaces. */
  set(key: string, value: V, ttl?: number): void {
    this.lru.set(key, value, ttl === undefined ? undefined : { ttl });
    // A full cache evicts its least recently used entry, which is the pin
    // first; putting it back evicts the oldest real entry instead, so the
    // bound stays `max` real entries.
    this.pin();
  }

  /** Milliseconds the entry has left; 0 when it is not there. */
  remainingTtl(key: string): number {
    return this.lru.has(key) ? this.lru.getRemainingTTL(key) : 0;
  }

  delete(key: string): void {
    this.lru.delete(key);
  }

  keys(): string[] {
    return [...this.lru.keys()].filter((key) => key !== BoundedCache.PIN);
  }

  clear(): void {
    this.lru.clear();
    this.pin();
  }

  get size(): number {
    return this.lru.size - (this.lru.has(BoundedCache.PIN) ? 1 : 0);
  }
}
