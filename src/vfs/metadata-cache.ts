import { BoundedCache } from './bounded-cache.js';
import type { RemoteAttrs } from '../remote/sftp-session.js';
import { isInside, parentOf } from './paths.js';

export interface MetadataCacheOptions {
  attrTtlMs: number;
  dirTtlMs: number;
  negativeTtlMs: number;
  /**
   * While this mount keeps adding names to a directory (the last one less
   * than this long ago), names missing from its cached listing count as
   * missing without asking the remote. 0 turns it off.
   */
  fillingWindowMs: number;
  /** Bound on each of the three caches, in entries. */
  maxEntries: number;
}

/** A cached listing: child name → its attributes, or undefined once those went stale. */
export type Listing = Map<string, RemoteAttrs | undefined>;

/** Directories being filled at once: a few suffice (tar and cp -r fill one or two at a time). */
const FILLING_MAX = 256;

const lru = <V extends {}>(max: number, ttl: number, pin: V) => new BoundedCache<V>({ max, ttl: Math.max(1, ttl) }, pin);

/**
 * What the remote looked like a moment ago: attributes, listings and names
 * known not to exist, each with its own TTL. A TTL of 0 turns a cache off.
 * The update methods keep the three consistent with a local change, touching
 * only the entries that change affects.
 */
export class MetadataCache {
  private readonly attrs: BoundedCache<RemoteAttrs>;
  private readonly dirs: BoundedCache<Listing>;
  private readonly missing: BoundedCache<true>;
  /** Directories this mount added a name to within the filling window. */
  private readonly filling: BoundedCache<true>;
  hits = 0;
  misses = 0;
  /**
   * Counts local changes (creates, removes, writes, renames): a listing
   * fetched across one may miss it, and is then not cached.
   */
  epoch = 0;

  constructor(private readonly options: MetadataCacheOptions) {
    this.attrs = lru<RemoteAttrs>(options.maxEntries, options.attrTtlMs, { mode: 0, size: 0, uid: 0, gid: 0, atimeMs: 0, mtimeMs: 0 });
    this.dirs = lru<Listing>(options.maxEntries, options.dirTtlMs, new Map());
    this.missing = lru<true>(options.maxEntries, options.negativeTtlMs, true);
    this.filling = lru<true>(FILLING_MAX, options.fillingWindowMs, true);
  }

  private count<T>(value: T | undefined): T | undefined {
    if (value === undefined) this.misses++;
    else this.hits++;
    return value;
  }

  getAttrs(path: string): RemoteAttrs | undefined {
    return this.count(this.attrs.get(path));
  }

  /**
   * Whether a name is known not to exist: 'known' when the remote said so
   * within the negative TTL; 'presumed' when it is absent from the listing
   * of a directory this mount is filling, where a name someone else created
   * on the remote meanwhile is not seen until the window has passed.
   */
  missingKind(path: string): 'known' | 'presumed' | undefined {
    const answer = this.missing.get(path) !== undefined ? 'known' : this.absentWhileFilling(path) ? 'presumed' : undefined;
    this.count(answer);
    return answer;
  }

  private absentWhileFilling(path: string): boolean {
    if (path === '' || this.options.negativeTtlMs <= 0) return false;
    const parent = parentOf(path);
    const listing = this.filling.get(parent) ? this.dirs.get(parent) : undefined;
    return listing !== undefined && !listing.has(basename(path));
  }

  getListing(path: string): Listing | undefined {
    return this.count(this.dirs.get(path));
  }

  /** Whether a listing is cached, without counting a hit or a miss. */
  hasListing(path: string): boolean {
    return this.dirs.get(path) !== undefined;
  }

  /** Fresh attributes from the remote: cache them and patch the parent's listing. */
  setAttrs(path: string, attrs: RemoteAttrs): void {
    if (this.options.attrTtlMs > 0) this.attrs.set(path, attrs);
    this.missing.delete(path);
    if (path !== '') this.dirs.get(parentOf(path))?.set(basename(path), attrs);
  }

  /** Attributes a local change gave the path (a write that grew it), known without asking. */
  changedAttrs(path: string, attrs: RemoteAttrs): void {
    this.epoch++;
    this.setAttrs(path, attrs);
  }

  /** The attributes changed in a way we cannot compute: the next reader asks the remote. */
  staleAttrs(path: string): void {
    this.epoch++;
    this.attrs.delete(path);
    if (path === '') return;
    const listing = this.dirs.get(parentOf(path));
    if (listing?.has(basename(path))) listing.set(basename(path), undefined);
  }

  setListing(path: string, entries: Iterable<[string, RemoteAttrs]>): void {
    const listing: Listing = new Map();
    for (const [name, attrs] of entries) {
      listing.set(name, attrs);
      if (this.options.attrTtlMs > 0) this.attrs.set(path === '' ? name : `${path}/${name}`, attrs);
    }
    if (this.options.dirTtlMs > 0) this.dirs.set(path, listing);
  }

  /** The name now exists (created, renamed to): no longer missing, and listed in its parent. */
  added(path: string, attrs: RemoteAttrs | undefined): void {
    this.epoch++;
    this.missing.delete(path);
    if (attrs && this.options.attrTtlMs > 0) this.attrs.set(path, attrs);
    else this.attrs.delete(path);
    this.dirs.get(parentOf(path))?.set(basename(path), attrs);
    this.parentChanged(path);
    if (path !== '') this.fills(parentOf(path));
  }

  /**
   * A name moved to `to`. A file's attributes go with it, trusted for what
   * was left of their time (a rename changes none that SFTP shows); a
   * directory's are asked again, and what was cached below both names goes.
   */
  renamed(from: string, to: string, attrs: RemoteAttrs, directory: boolean): void {
    // Attributes refreshed while the rename was on its way are newer than `attrs`.
    const left = directory || this.attrs.get(from) !== attrs ? 0 : this.attrs.remainingTtl(from);
    this.removed(from);
    if (directory) {
      this.dropTree(from);
      this.dropTree(to);
    }
    this.added(to, attrs);
    if (left > 0) this.attrs.set(to, attrs, left);
    else this.staleAttrs(to);
  }

  /** A directory this mount just made: empty, and about to be filled. */
  madeDirectory(path: string, attrs: RemoteAttrs): void {
    this.added(path, attrs);
    if (this.options.dirTtlMs > 0) this.dirs.set(path, new Map());
    this.fills(path);
  }

  /** This mount is adding names to `dir` now. */
  private fills(dir: string): void {
    if (this.options.fillingWindowMs > 0) this.filling.set(dir, true);
  }

  /** The name is gone (unlinked, renamed away). */
  removed(path: string): void {
    this.epoch++;
    this.attrs.delete(path);
    this.dirs.delete(path);
    this.dirs.get(parentOf(path))?.delete(basename(path));
    if (this.options.negativeTtlMs > 0) this.missing.set(path, true);
    this.parentChanged(path);
  }

  /**
   * Adding or removing a name changes the directory's mtime on the remote.
   * rsync and make compare directory times after writing into them, so the
   * cached time of the parent must not outlive the change.
   */
  private parentChanged(path: string): void {
    if (path !== '') this.staleAttrs(parentOf(path));
  }

  markMissing(path: string): void {
    if (this.options.negativeTtlMs > 0) this.missing.set(path, true);
  }

  /** Forgets everything under a directory that moved or disappeared. */
  dropTree(path: string): void {
    this.epoch++;
    for (const cache of [this.attrs, this.dirs, this.missing, this.filling] as BoundedCache<object>[]) {
      for (const key of cache.keys()) if (isInside(key, path)) cache.delete(key);
    }
  }

  /** Forgets everything (a reconnect, or the user asked). */
  clear(): void {
    this.epoch++;
    this.attrs.clear();
    this.dirs.clear();
    this.missing.clear();
    this.filling.clear();
  }
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}
