import { describe, expect, it } from 'vitest';
import { BoundedCache } from '../../src/vfs/bounded-cache.js';

describe('BoundedCache', () => {
  it('hides its pinned entry from keys and size', () => {
    const cache = new BoundedCache<number>({ max: 10 }, 0);
    expect(cache.keys()).toEqual([]);
    expect(cache.size).toBe(0);
    cache.set('a', 1);
    cache.delete('a');
    expect(cache.keys()).toEqual([]);
    expect(cache.get('a')).toBeUndefined();
  });

  it('keeps at most max real entries, evicting the least recently used', () => {
    const cache = new BoundedCache<number>({ max: 3 }, 0);
    for (const key of ['a', 'b', 'c', 'd', 'e']) cache.set(key, 1);
    expect(cache.size).toBe(3);
    expect(cache.keys().sort()).toEqual(['c', 'd', 'e']);
  });

  it('expires entries after the ttl and survives clear', async () => {
    const cache = new BoundedCache<number>({ max: 5, ttl: 20 }, 0);
    cache.set('x', 1);
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(cache.get('x')).toBeUndefined();
    cache.set('y', 2);
    cache.clear();
    expect(cache.size).toBe(0);
    cache.set('z', 3);
    expect(cache.get('z')).toBe(3);
  });

  it('allocates for the entries it holds, not for its bound', () => {
    // With preallocated slots, ten million would take hundreds of MB up front.
    const before = process.memoryUsage().heapUsed;
    const caches = [1, 2, 3, 4].map(() => new BoundedCache<number>({ max: 10_000_000, ttl: 1000 }, 0));
    for (const cache of caches) for (let i = 0; i < 1000; i++) cache.set(`k${i}`, i);
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(16 * 1024 * 1024);
    expect(caches[0]!.get('k999')).toBe(999);
  });
});
