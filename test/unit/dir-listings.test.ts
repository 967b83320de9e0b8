import { describe, expect, it } from 'vitest';
import { DirListings, indexOf, offsetAfter } from '../../src/backends/fuse/dir-listings.js';

/** What a reader resuming at `offset` gets: the rest of the listing that offset points into. */
function resume(listings: DirListings<string>, ino: number, offset: number): string[] {
  const found = listings.find(ino, offset);
  if (!found) throw new Error(`listing at ${offset} is gone`);
  return found.entries.slice(indexOf(offset));
}

describe('DirListings (readdir without directory handles)', () => {
  it('hands out offsets that are never 0 and resume after the entry they follow', () => {
    const listings = new DirListings<string>();
    const number = listings.start(7, ['.', '..', 'a', 'b', 'c']);
    const first = offsetAfter(number, 0);
    expect(first).not.toBe(0);
    expect(indexOf(first)).toBe(1);
    expect(listings.find(7, offsetAfter(number, 3))).toEqual({ number, entries: ['.', '..', 'a', 'b', 'c'] });
  });

  it('keeps a reader in the listing it started when the same directory is listed anew after a change', () => {
    const listings = new DirListings<string>();
    const mine = listings.start(7, ['.', '..', 'a', 'b', 'c', 'd']);
    // The reader has had '.', '..' and 'a'; then 'a' is removed and someone lists the directory from the start.
    listings.start(7, ['.', '..', 'b', 'c', 'd']);
    expect(resume(listings, 7, offsetAfter(mine, 2))).toEqual(['b', 'c', 'd']);
  });

  it('finds nothing for another directory or a listing pushed out by newer ones', () => {
    const listings = new DirListings<string>(2);
    const a = listings.start(7, ['.', '..', 'x']);
    expect(listings.find(8, offsetAfter(a, 0))).toBeUndefined();
    expect(listings.find(7, offsetAfter(a, 2))).toBeDefined();
    listings.start(7, ['.', '..']);
    listings.start(7, ['.', '..']);
    expect(listings.find(7, offsetAfter(a, 0))).toBeUndefined();
  });

  it('numbers listings afresh after 2^21 - 1 of them, with every offset an exact double', () => {
    const listings = new DirListings<string>(1);
    let number = 0;
    for (let i = 0; i < 2 ** 21 - 1; i++) number = listings.start(1, []);
    expect(number).toBe(2 ** 21 - 1);
    expect(Number.isSafeInteger(offsetAfter(number, 2 ** 32 - 2))).toBe(true);
    expect(listings.start(1, [])).toBe(1);
  });
});
