import { describe, expect, it } from 'vitest';
import type { RemoteAttrs } from '../../src/remote/sftp-session.js';
import { type ListingEntries, ListingFetcher } from '../../src/vfs/listing-fetcher.js';
import { MetadataCache } from '../../src/vfs/metadata-cache.js';

const file = (size: number): RemoteAttrs => ({ mode: 0o100644, size, uid: 0, gid: 0, atimeMs: 0, mtimeMs: 0 });
const dir = (): RemoteAttrs => ({ mode: 0o040755, size: 4096, uid: 0, gid: 0, atimeMs: 0, mtimeMs: 0 });

/** A remote whose listings the test answers by hand, recording what was asked in order. */
function controlledRemote() {
  const asked: string[] = [];
  const answers = new Map<string, (entries: ListingEntries) => void>();
  const fetch = (path: string) =>
    new Promise<ListingEntries>((resolve) => {
      asked.push(path);
      answers.set(path, resolve);
    });
  const answer = async (path: string, entries: ListingEntries) => {
    const resolve = answers.get(path);
    if (!resolve) throw new Error(`${path} was not asked for`);
    answers.delete(path);
    resolve(entries);
    await new Promise((r) => setImmediate(r));
  };
  return { asked, fetch, answer };
}

const newCache = () => new MetadataCache({ attrTtlMs: 10_000, dirTtlMs: 10_000, negativeTtlMs: 10_000, fillingWindowMs: 1000, maxEntries: 1000 });

describe('ListingFetcher', () => {
  it('shares one request between concurrent askers of the same directory and caches the answer', async () => {
    const remote = controlledRemote();
    const cache = newCache();
    const fetcher = new ListingFetcher(remote.fetch, cache, { ahead: 0, concurrency: 4 });
    const first = fetcher.get('d');
    const second = fetcher.get('d');
    expect(remote.asked).toEqual(['d']);
    await remote.answer('d', [['a', file(1)]]);
    expect(await first).toEqual([['a', file(1)]]);
    expect(await second).toEqual([['a', file(1)]]);
    expect([...cache.getListing('d')!.keys()]).toEqual(['a']);
  });

  it('does not cache a listing that was on its way while a local change happened, but still returns it', async () => {
    const remote = controlledRemote();
    const cache = newCache();
    const fetcher = new ListingFetcher(remote.fetch, cache, { ahead: 0, concurrency: 4 });
    const pending = fetcher.get('d');
    // Created locally after the server read the directory: the answer lacks it.
    cache.added('d/new', file(0));
    await remote.answer('d', [['old', file(1)]]);
    expect((await pending).map(([name]) => name)).toEqual(['old']);
    expect(cache.hasListing('d')).toBe(false);
  });

  it('fetches the subdirectories of a listing ahead, in listing order, a few at a time', async () => {
    const remote = controlledRemote();
    const cache = newCache();
    const fetcher = new ListingFetcher(remote.fetch, cache, { ahead: 10, concurrency: 2 });
    const entries: ListingEntries = [['s1', dir()], ['f', file(1)], ['s2', dir()], ['s3', dir()]];
    fetcher.ahead('', entries);
    expect(remote.asked).toEqual(['s1', 's2']);
    await remote.answer('s1', [['deep', dir()]]);
    // s1's own subdirectories are not known to the fetcher until someone lists s1 through it.
    expect(remote.asked).toEqual(['s1', 's2', 's3']);
    expect(cache.hasListing('s1')).toBe(true);
    await remote.answer('s2', []);
    await remote.answer('s3', []);
    expect(remote.asked).toEqual(['s1', 's2', 's3']);
  });

  it('goes deeper first: the subdirectories of the newest listing come before older wishes', async () => {
    const remote = controlledRemote();
    const cache = newCache();
    const fetcher = new ListingFetcher(remote.fetch, cache, { ahead: 10, concurrency: 1 });
    fetcher.ahead('', [['a', dir()], ['b', dir()]]);
    expect(remote.asked).toEqual(['a']);
    // A walker enters `a` and lists it while `b` still waits.
    fetcher.ahead('a', [['a1', dir()], ['a2', dir()]]);
    await remote.answer('a', [['a1', dir()], ['a2', dir()]]);
    await remote.answer('a/a1', []);
    await remote.answer('a/a2', []);
    expect(remote.asked).toEqual(['a', 'a/a1', 'a/a2', 'b']);
  });

  it('skips what is cached or already on its way, and fetches at most `ahead` per listing', async () => {
    const remote = controlledRemote();
    const cache = newCache();
    cache.setListing('cached', []);
    const fetcher = new ListingFetcher(remote.fetch, cache, { ahead: 2, concurrency: 8 });
    void fetcher.get('busy');
    fetcher.ahead('', [['cached', dir()], ['busy', dir()], ['x', dir()], ['y', dir()], ['z', dir()]]);
    expect(remote.asked).toEqual(['busy', 'x', 'y']);
  });

  it('fetches nothing ahead when turned off', () => {
    const remote = controlledRemote();
    const fetcher = new ListingFetcher(remote.fetch, newCache(), { ahead: 0, concurrency: 4 });
    fetcher.ahead('', [['s', dir()]]);
    expect(remote.asked).toEqual([]);
  });

  it('does not fetch ahead again a directory whose listing just failed, while a real listing still asks', async () => {
    const asked: string[] = [];
    const fetch = async (path: string): Promise<ListingEntries> => {
      asked.push(path);
      throw new Error(`opendir ${path}: permission denied`);
    };
    const fetcher = new ListingFetcher(fetch, newCache(), { ahead: 10, concurrency: 4, retryAfterMs: 60_000 });
    fetcher.ahead('', [['locked', dir()]]);
    await new Promise((r) => setImmediate(r));
    fetcher.ahead('', [['locked', dir()]]);
    await new Promise((r) => setImmediate(r));
    expect(asked).toEqual(['locked']);
    await expect(fetcher.get('locked')).rejects.toThrow(/permission denied/);
    expect(asked).toEqual(['locked', 'locked']);
  });
});
