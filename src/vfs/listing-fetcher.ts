import type { RemoteAttrs } from '../remote/sftp-session.js';
import { isDir } from './file-type.js';
import type { MetadataCache } from './metadata-cache.js';
import { childPath } from './paths.js';

/** Subdirectories waiting to be listed ahead; past this the oldest wishes are dropped. */
const MAX_WAITING = 4096;
/** Directories whose listing failed in the background, remembered to not ask again; past this the memory starts over. */
const MAX_FAILED = 4096;

export type ListingEntries = [string, RemoteAttrs][];

export interface ListingFetcherOptions {
  /** Subdirectories of a listing whose own listings are fetched ahead; 0 turns that off. */
  ahead: number;
  /** Listings fetched ahead at the same time. */
  concurrency: number;
  /** How long a directory whose background listing failed (EACCES…) is not fetched ahead again. */
  retryAfterMs?: number;
}

/**
 * Fetches directory listings for RemoteFs. Concurrent askers of the same
 * directory share one request, and a listing is cached only if nothing
 * changed locally while it was on the way (it could miss a file just
 * created). After a listing, those of its subdirectories are fetched in the
 * background, newest first: a tree walk (find, ls -R, git status, a file
 * manager counting items) asks for them next, and they then cost no round
 * trip of their own.
 */
export class ListingFetcher {
  private readonly inflight = new Map<string, Promise<ListingEntries>>();
  /** A stack: the subdirectories of the latest listing come out first, in listing order. */
  private readonly waiting: string[] = [];
  private running = 0;
  /** Path → when it may be fetched ahead again, after a failure. */
  private readonly failed = new Map<string, number>();

  constructor(
    private readonly fetch: (path: string) => Promise<ListingEntries>,
    private readonly cache: MetadataCache,
    private readonly options: ListingFetcherOptions,
  ) {}

  get(path: string): Promise<ListingEntries> {
    const pending = this.inflight.get(path);
    if (pending) return pending;
    const epoch = this.cache.epoch;
    const request = this.fetch(path)
      .then((entries) => {
        if (this.cache.epoch === epoch) this.cache.setListing(path, entries);
        return entries;
      })
      .finally(() => this.inflight.delete(path));
    this.inflight.set(path, request);
    return request;
  }

  /** Queues the listings of the subdirectories in `entries` (the listing of `path`). */
  ahead(path: string, entries: Iterable<[string, RemoteAttrs | undefined]>): void {
    if (this.options.ahead <= 0) return;
    const subdirs: string[] = [];
    for (const [name, attrs] of entries) {
      if (!attrs || !isDir(attrs)) continue;
      const child = childPath(path, name);
      if (!this.inflight.has(child) && !this.cache.hasListing(child) && !this.failedRecently(child)) subdirs.push(child);
      if (subdirs.length >= this.options.ahead) break;
    }
    for (let i = subdirs.length - 1; i >= 0; i--) this.waiting.push(subdirs[i]!);
    if (this.waiting.length > MAX_WAITING) this.waiting.splice(0, this.waiting.length - MAX_WAITING);
    this.pump();
  }

  private pump(): void {
    while (this.running < this.options.concurrency && this.waiting.length > 0) {
      const path = this.waiting.pop()!;
      if (this.inflight.has(path) || this.cache.hasListing(path)) continue;
      this.running++;
      // A failure here is not the user's: whoever lists the directory for real sees its own.
      void this.get(path)
        .catch(() => {
          if (this.failed.size >= MAX_FAILED) this.failed.clear();
          this.failed.set(path, Date.now() + (this.options.retryAfterMs ?? 20_000));
        })
        .finally(() => {
          this.running--;
          this.pump();
        });
    }
  }

  private failedRecently(path: string): boolean {
    const until = this.failed.get(path);
    if (until === undefined) return false;
    if (Date.now() < until) return true;
    this.failed.delete(path);
    return false;
  }

  /** Drops the wishes and the failures (a reconnect or an unmount); requests in flight finish on their own. */
  clear(): void {
    this.waiting.length = 0;
    this.failed.clear();
  }
}
