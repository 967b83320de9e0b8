import { describe, expect, it } from 'vitest';
import type { RemoteAttrs } from '../../src/remote/sftp-session.js';
import { BlockCache } from '../../src/vfs/block-cache.js';
import { MetadataCache } from '../../src/vfs/metadata-cache.js';

const attrs = (size: number): RemoteAttrs => ({ mode: 0o100644, size, uid: 0, gid: 0, atimeMs: 0, mtimeMs: 0 });
const dirAttrs: RemoteAttrs = { ...attrs(4096), mode: 0o40755 };
const options = { attrTtlMs: 1000, dirTtlMs: 1000, negativeTtlMs: 1000, fillingWindowMs: 1000, maxEntries: 100 };

describe('MetadataCache', () => {
  it('fills attributes of every child from a listing (readdirplus)', () => {
    const cache = new MetadataCache(options);
    cache.setListing('d', [['a', attrs(1)], ['b', attrs(2)]]);
    expect(cache.getAttrs('d/a')?.size).toBe(1);
    expect([...cache.getListing('d')!.keys()]).toEqual(['a', 'b']);
  });

  it('patches only the affected entry of the parent listing when attributes change', () => {
    const cache = new MetadataCache(options);
    cache.setListing('d', [['a', attrs(1)], ['b', attrs(2)]]);
    cache.setAttrs('d/a', attrs(10));
    cache.staleAttrs('d/b');
    const listing = cache.getListing('d')!;
    expect(listing.get('a')?.size).toBe(10);
    expect(listing.has('b')).toBe(true);
    expect(listing.get('b')).toBeUndefined();
    expect(cache.getAttrs('d/b')).toBeUndefined();
  });

  it('records creation and removal in the parent listing and the negative cache', () => {
    const cache = new MetadataCache(options);
    cache.setListing('', [['x', attrs(1)]]);
    cache.markMissing('y');
    expect(cache.missingKind('y')).toBe('known');
    cache.added('y', attrs(5));
    expect(cache.missingKind('y')).toBeUndefined();
    expect([...cache.getListing('')!.keys()]).toEqual(['x', 'y']);
    cache.removed('x');
    expect(cache.missingKind('x')).toBe('known');
    expect([...cache.getListing('')!.keys()]).toEqual(['y']);
  });

  it('knows a name is missing from a directory it is filling, and only while it fills it', async () => {
    const cache = new MetadataCache({ ...options, fillingWindowMs: 200 });
    cache.setListing('d', [['a', attrs(1)]]);
    // Listed, but nothing added lately: someone else may have made the name since.
    expect(cache.missingKind('d/new')).toBeUndefined();
    cache.added('d/b', attrs(1));
    expect(cache.missingKind('d/new')).toBe('presumed');
    expect(cache.missingKind('d/a')).toBeUndefined();
    expect(cache.missingKind('d/b')).toBeUndefined();
    expect(cache.missingKind('elsewhere/new')).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(cache.missingKind('d/new')).toBeUndefined();

    cache.madeDirectory('made', dirAttrs);
    expect(cache.getListing('made')).toEqual(new Map());
    expect(cache.missingKind('made/first')).toBe('presumed');

    for (const off of [{ negativeTtlMs: 0 }, { fillingWindowMs: 0 }, { dirTtlMs: 0 }]) {
      const cache = new MetadataCache({ ...options, ...off });
      cache.madeDirectory('made', dirAttrs);
      cache.added('made/b', attrs(1));
      expect(cache.missingKind('made/first'), JSON.stringify(off)).toBeUndefined();
    }
  });

  it('forgets the parent directory attributes when a name is added or removed', () => {
    const cache = new MetadataCache(options);
    for (const [change, path] of [['added', 'd/new'], ['removed', 'd/old']] as const) {
      cache.setAttrs('d', attrs(4096));
      if (change === 'added') cache.added(path, attrs(1));
      else cache.removed(path);
      expect(cache.getAttrs('d'), change).toBeUndefined();
    }
    cache.setAttrs('top', attrs(1));
    cache.added('other', attrs(2));
    expect(cache.getAttrs('top')?.size).toBe(1);
  });

  it('drops a whole subtree and nothing beside it', () => {
    const cache = new MetadataCache(options);
    cache.setAttrs('a/b/c', attrs(1));
    cache.setListing('a/b', []);
    cache.setAttrs('ab', attrs(2));
    cache.dropTree('a');
    expect(cache.getAttrs('a/b/c')).toBeUndefined();
    expect(cache.getListing('a/b')).toBeUndefined();
    expect(cache.getAttrs('ab')?.size).toBe(2);
  });

  it('expires entries after their TTL and caches nothing with a TTL of 0', async () => {
    // lru-cache reads its clock from performance.now(), which fake timers leave alone.
    const cache = new MetadataCache({ ...options, attrTtlMs: 30 });
    cache.setAttrs('f', attrs(1));
    expect(cache.getAttrs('f')).toBeDefined();
    await new Promise((resolve) => setTimeout(resolve, 60));
    expect(cache.getAttrs('f')).toBeUndefined();
    const off = new MetadataCache({ ...options, attrTtlMs: 0, negativeTtlMs: 0 });
    off.setAttrs('f', attrs(1));
    off.markMissing('g');
    expect(off.getAttrs('f')).toBeUndefined();
    expect(off.missingKind('g')).toBeUndefined();
  });

  it('stays within its entry bound', () => {
    const cache = new MetadataCache({ ...options, maxEntries: 3 });
    for (let i = 0; i < 10; i++) cache.setAttrs(`f${i}`, attrs(i));
    const kept = Array.from({ length: 10 }, (_, i) => cache.getAttrs(`f${i}`)).filter(Boolean);
    expect(kept).toHaveLength(3);
  });
});

describe('BlockCache', () => {
  it('shares one fetch between concurrent readers and serves later reads from memory', async () => {
    const cache = new BlockCache(1024);
    let fetches = 0;
    const fetch = async () => {
      fetches++;
      return Buffer.from('data');
    };
    const first = cache.get('k', fetch);
    const second = cache.get('k', fetch);
    expect(first.hit).toBe(false);
    expect(second.hit).toBe(true);
    await Promise.all([first.block, second.block]);
    expect((await cache.get('k', fetch).block).toString()).toBe('data');
    expect(fetches).toBe(1);
  });

  it('evicts by bytes and does not keep a failed fetch', async () => {
    const cache = new BlockCache(10);
    await cache.get('a', async () => Buffer.alloc(6)).block;
    await cache.get('b', async () => Buffer.alloc(6)).block;
    expect(cache.peek('a')).toBeUndefined();
    expect(cache.bytes).toBe(6);
    await expect(cache.get('c', async () => { throw new Error('boom'); }).block).rejects.toThrow('boom');
    expect(cache.has('c')).toBe(false);
  });
});
