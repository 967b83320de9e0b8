import { LRUCache } from 'lru-cache';

/**
 * Directory listings in progress, for readdir without directory handles.
 *
 * The kernel sends no opendir (and no releasedir) once the filesystem has
 * answered one with ENOSYS, so a reader's pages cannot hang off a handle.
 * A readdir at offset 0 takes a new listing; the offsets handed back carry
 * that listing's number, so a reader goes on through the listing it started
 * even when another reader of the same directory starts anew, after a
 * change, in between.
 */
export class DirListings<Entry> {
  /**
   * Listings go only when newer ones push them out, also once read to the
   * end: the kernel's readdir cache hands out the offsets of the listing
   * that filled it to later readers, which come back here with them when
   * that cache is dropped halfway.
   */
  private readonly listings: LRUCache<number, { ino: number; entries: Entry[] }>;
  private lastNumber = 0;

  constructor(kept = 32) {
    this.listings = new LRUCache({ max: kept });
  }

  /** Stores a new listing of `ino`; gives its number. */
  start(ino: number, entries: Entry[]): number {
    this.lastNumber = this.lastNumber >= MAX_NUMBER ? 1 : this.lastNumber + 1;
    this.listings.set(this.lastNumber, { ino, entries });
    return this.lastNumber;
  }

  /** The listing an offset handed out for `ino` points into, if it is still kept. */
  find(ino: number, offset: number): { number: number; entries: Entry[] } | undefined {
    const number = Math.floor(offset / SPAN);
    const listing = this.listings.get(number);
    return listing?.ino === ino ? { number, entries: listing.entries } : undefined;
  }
}

/** Entries per listing an offset can address, and listings numbered before the numbers wrap: 2^32 × 2^21 stays within a double's exact integers. */
const SPAN = 2 ** 32;
const MAX_NUMBER = 2 ** 21 - 1;

/** The offset of the entry after `index` in listing `number`; never 0, which asks for a new listing. */
export function offsetAfter(number: number, index: number): number {
  return number * SPAN + index + 1;
}

/** Where in its listing an offset resumes. */
export function indexOf(offset: number): number {
  return offset % SPAN;
}
