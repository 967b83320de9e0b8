import type { HandleRef, RemoteLink } from '../remote/link.js';
import type { RemoteAttrs } from '../remote/sftp-session.js';
import { BlockCache } from './block-cache.js';
import { DirtyRanges } from './dirty-ranges.js';
import { FsError, fromSftpError } from './errors.js';
import type { Inode } from './inode-table.js';
import type { FsStats } from './stats.js';

export interface HandleIo {
  session: RemoteLink;
  blocks: BlockCache;
  /** Bytes per cached block and per read request. */
  blockSize: number;
  maxReadAhead: number;
  /** Dirty bytes per handle that start a background flush. */
  writeBackBytes: number;
  /** WRITE requests one handle keeps in flight; bounded so the server's buffers never thrash. */
  writeDepth: number;
  stats: FsStats;
  /** Called after data reached the remote, so cached attributes can be marked stale. */
  onRemoteChanged(node: Inode): void;
}

export interface HandleMode {
  readable: boolean;
  writable: boolean;
  append: boolean;
}

export interface FileTimes {
  atimeMs: number;
  mtimeMs: number;
}

/** Times waiting for a handle's next flush. */
export interface PendingTimes extends FileTimes {
  /** The kernel's write-back cache's own mtime stamp, which nobody asked for. */
  kernelStamp: boolean;
}

/** Which content of a file its size and mtime stand for, as the caches and the kernel's page cache are told. */
export function contentVersion(attrs: Pick<RemoteAttrs, 'size' | 'mtimeMs'>): string {
  return `${attrs.size}:${attrs.mtimeMs}`;
}

/** The block-cache version of an inode's content whose remote side is at `remoteVersion` (see contentVersion). */
export function blockVersion(node: Inode, remoteVersion: string): string {
  return `${node.contentId}:${node.dataGen}:${remoteVersion}`;
}

/** A time in milliseconds as SFTP v3 carries it: whole seconds. */
export function wholeSeconds(ms: number): number {
  return Math.floor(ms / 1000);
}

/** SFTP v3 sets both times together, in whole seconds. */
export function sftpTimes(times: FileTimes): { atime: number; mtime: number } {
  return { atime: wholeSeconds(times.atimeMs), mtime: wholeSeconds(times.mtimeMs) };
}

/**
 * One open file: its SFTP handle, its unflushed writes, and its read-ahead
 * state. Writes are acknowledged once buffered and reach the remote in the
 * background or at flush/fsync/close; a failed write-back is kept and thrown
 * by the next flush, fsync or close, never dropped.
 */
export class FileHandle {
  private readonly dirty = new DirtyRanges();
  /** WRITE requests on the wire, and their bytes. */
  private inflight = 0;
  private inflightBytes = 0;
  private completions: (() => void)[] = [];
  private error: FsError | undefined;
  private readonly prefetches = new Set<Promise<unknown>>();
  private nextSequential = -1;
  private readAhead = 0;
  /** Size of the remote file as this handle knows it (at open, grown by flushed writes). */
  private remoteSize: number;
  /** The end of the furthest write sent: the file's size once what is in flight lands. */
  private sentEnd = 0;
  private readonly remoteVersion: string;
  /** The block-cache version of the content, for the inode's write generation `keyGen`. */
  private keyVersion = '';
  private keyGen = -1;
  closed = false;
  /**
   * Times set through this handle while it is open for writing: the kernel's
   * write-back cache sends one before each flush. They follow the data at the
   * next flush, pipelined behind the last write, which saves a round trip and
   * leaves the right mtime in the end.
   */
  pendingTimes: PendingTimes | undefined;
  /** The last times sent, settled (never rejected) once the server answered. */
  private timesSent: Promise<void> | undefined;
  /** The times the server took last, while none sent since failed. */
  private timesTaken: FileTimes | undefined;
  /** Whether anything was written through this handle. */
  private wrote = false;
  /**
   * A refusal of times someone asked for, for the next flush or close. Never
   * for a write, and it stops no write: the data must still go out.
   */
  private timesError: FsError | undefined;
  /** Set when the remote file could not be reattached after a reconnect. */
  private lost: FsError | undefined;

  constructor(
    readonly fh: number,
    readonly node: Inode,
    /** The remote handle, replaced when a reconnect reopens the file. */
    readonly ref: HandleRef,
    /** SSH_FXF_* flags it was opened with, for reopening after a reconnect. */
    readonly sftpFlags: number,
    readonly mode: HandleMode,
    attrs: RemoteAttrs,
    private readonly io: HandleIo,
  ) {
    this.remoteSize = attrs.size;
    this.remoteVersion = contentVersion(attrs);
  }

  get remotePath(): string {
    return this.ref.path;
  }

  /** The size a reader of this handle sees: remote plus unflushed writes. */
  get size(): number {
    return Math.max(this.remoteSize, this.sentEnd, this.dirty.end);
  }

  /** Every byte written is on the wire or landed: nothing is still only buffered here. */
  get allSent(): boolean {
    return this.dirty.isEmpty;
  }

  get hasDirtyData(): boolean {
    return !this.dirty.isEmpty || this.inflight > 0;
  }

  private blockKey(index: number): string {
    // Every read asks the cache, random reads included: the version part is
    // rebuilt only when a local write changed it.
    if (this.keyGen !== this.node.dataGen) {
      this.keyGen = this.node.dataGen;
      this.keyVersion = blockVersion(this.node, this.remoteVersion);
    }
    return BlockCache.key(this.keyVersion, index);
  }

  /** The remote file is out of reach for good: every later operation fails with EIO and this reason. */
  lose(reason: string): void {
    this.lost = new FsError('EIO', 'reattach', this.remotePath, reason);
  }

  /**
   * A small file opened only for reading is nearly always read next, from its
   * start: its one block is asked for now, with the open, instead of a round
   * trip after the first read arrives. Not when the kernel keeps its page
   * cache (`kernelKeepsCache`: it was given this very version before): then
   * it will not ask.
   */
  fetchSmallFileAhead(kernelKeepsCache: boolean, early?: Promise<Buffer | undefined>): void {
    const size = this.remoteSize;
    if (this.mode.writable || size > this.io.blockSize || size === 0) return;
    if (kernelKeepsCache) return;
    // What was read with the open counts only if it is the whole file as the
    // open's stat saw it (the read was answered right after that stat).
    const source = early && (() => early.then((data) => (data?.length === size ? data : this.fetch(0, size))));
    // The size the open just reported, not a whole block: the answer is the
    // same, and a 3 KB file does not cost a block-sized buffer (which the
    // garbage collector counts in full while the cache keeps the file).
    this.prefetchBlock(0, size, source);
  }

  /**
   * Not an async function, nor are the steps of a random read: each await
   * is a hop between the answer's arrival and the kernel's reply, and a
   * random 4 KiB read is little else.
   */
  read(offset: number, size: number): Promise<Buffer> {
    if (this.lost) return Promise.reject(this.lost);
    if (!this.mode.readable) return Promise.reject(new FsError('EBADF', 'read', this.remotePath, 'not open for reading'));
    if (size === 0) return Promise.resolve(Buffer.alloc(0));
    this.node.servedVersion = this.remoteVersion;
    const bs = this.io.blockSize;
    const first = Math.floor(offset / bs);
    const last = Math.floor((offset + size - 1) / bs);
    // Whole blocks are fetched and cached: unflushed bytes anywhere in them,
    // not only in the range asked for, would be cached stale.
    if (this.dirty.overlaps(first * bs, (last - first + 1) * bs) || this.inflight > 0) {
      return this.flush().then(() => this.readSettled(offset, size, first, last));
    }
    return this.readSettled(offset, size, first, last);
  }

  /** A read once no written byte of its blocks is only here. */
  private readSettled(offset: number, size: number, first: number, last: number): Promise<Buffer> {
    this.trackSequential(offset, size);
    if (this.readAhead === 0 && !this.cachedRange(first, last)) {
      // A random reader gets exactly what it asked for in one round trip;
      // a whole block would cost transfer time it never uses.
      this.io.stats.cacheMisses++;
      const exact = size <= this.io.session.maxReadLen ? this.readFully(offset, size) : this.fetch(offset, size);
      return exact.then(
        (data) => {
          this.io.stats.bytesRead += data.length;
          return data;
        },
        (err: unknown) => {
          throw fromSftpError(err, 'read', this.remotePath);
        },
      );
    }
    return this.readBlocks(offset, size, first, last);
  }

  private async readBlocks(offset: number, size: number, first: number, last: number): Promise<Buffer> {
    const bs = this.io.blockSize;
    const wanted: Promise<Buffer>[] = [];
    for (let index = first; index <= last; index++) wanted.push(this.block(index));
    this.prefetch(last + 1, Math.ceil(this.readAhead / bs));
    const blocks = await Promise.all(wanted);

    const parts: Buffer[] = [];
    for (const block of blocks) {
      parts.push(block);
      if (block.length < bs) break; // End of file inside this block.
    }
    const whole = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
    const start = offset - first * bs;
    const data = whole.subarray(Math.min(start, whole.length), Math.min(start + size, whole.length));
    this.io.stats.bytesRead += data.length;
    // Blocks read to their end are the kernel's now: it keeps those pages
    // while the file is unchanged, so a copy here would only double the
    // memory a large read takes. What is ahead of the reader stays.
    const end = offset + size;
    for (let index = first; index < first + parts.length; index++) {
      const block = parts[index - first]!;
      if (end >= index * bs + block.length) this.io.blocks.delete(this.blockKey(index));
    }
    return data;
  }

  private cachedRange(first: number, last: number): boolean {
    for (let index = first; index <= last; index++) if (!this.io.blocks.has(this.blockKey(index))) return false;
    return true;
  }

  /** Doubles the read-ahead window while reads continue where the last one ended. */
  private trackSequential(offset: number, size: number): void {
    if (offset === this.nextSequential) {
      this.readAhead = Math.min(this.io.maxReadAhead, Math.max(this.readAhead * 2, this.io.blockSize * 2));
    } else {
      this.readAhead = 0;
    }
    this.nextSequential = offset + size;
  }

  private prefetch(from: number, count: number): void {
    const bs = this.io.blockSize;
    for (let index = from; index < from + count && index * bs < this.size; index++) this.prefetchBlock(index, bs);
  }

  private prefetchBlock(index: number, length: number, source?: () => Promise<Buffer>): void {
    const bs = this.io.blockSize;
    if (this.io.blocks.has(this.blockKey(index)) || this.dirty.overlaps(index * bs, bs)) return;
    const pending = this.block(index, length, source).catch(() => undefined);
    this.prefetches.add(pending);
    void pending.finally(() => this.prefetches.delete(pending));
  }

  /**
   * Block `index` from the cache, else from `source` (called only on a
   * miss), else fetched: `length` bytes asked for (fewer only where the file
   * ends).
   */
  private block(index: number, length = this.io.blockSize, source?: () => Promise<Buffer>): Promise<Buffer> {
    const { block, hit } = this.io.blocks.get(this.blockKey(index), () => (source ? source() : this.fetch(index * this.io.blockSize, length)));
    if (hit) this.io.stats.cacheHits++;
    else this.io.stats.cacheMisses++;
    return block;
  }

  /** Reads [position, position+length) with requests in parallel, short only at end of file. */
  private async fetch(position: number, length: number): Promise<Buffer> {
    const session = this.io.session;
    const piece = Math.max(1, Math.min(session.maxReadLen, length));
    const reads: Promise<Buffer>[] = [];
    for (let at = 0; at < length; at += piece) {
      reads.push(this.readFully(position + at, Math.min(piece, length - at)));
    }
    const pieces: Buffer[] = [];
    try {
      for (const data of await Promise.all(reads)) {
        pieces.push(data);
        if (data.length < piece) break;
      }
    } catch (err) {
      throw fromSftpError(err, 'read', this.remotePath);
    }
    return pieces.length === 1 ? pieces[0]! : Buffer.concat(pieces);
  }

  /**
   * Servers may answer a READ with fewer bytes than asked before EOF; ask
   * again for the rest. A short answer that reaches the size this handle
   * knows is the end of the file: asking again would only hear EOF, one more
   * round trip for every small file read (the kernel caps reads at that
   * size too).
   */
  private readFully(position: number, length: number): Promise<Buffer> {
    return this.io.session.readChunk(this.ref, position, length).then((first) => {
      if (first.length === length || first.length === 0 || position + first.length >= this.size) return first;
      return this.readRest(first, position, length);
    });
  }

  private async readRest(first: Buffer, position: number, length: number): Promise<Buffer> {
    const parts = [first];
    let got = first.length;
    while (got < length) {
      const more = await this.io.session.readChunk(this.ref, position + got, length - got);
      if (more.length === 0) break;
      parts.push(more);
      got += more.length;
    }
    return Buffer.concat(parts, got);
  }

  /** Buffers `data` (which the handle now owns) and returns once it is safe to accept more. */
  async write(offset: number, data: Buffer): Promise<number> {
    if (this.lost) throw this.lost;
    if (!this.mode.writable) throw new FsError('EBADF', 'write', this.remotePath, 'not open for writing');
    if (this.error) throw this.takeError();
    const at = this.mode.append ? this.size : offset;
    this.dirty.add(at, data);
    this.wrote = true;
    this.node.dataGen++;
    this.io.stats.bytesWritten += data.length;
    // An idle connection takes the data at once, so that it is on its way
    // before the flush asks for it; while writes are in flight, new data
    // gathers into larger pieces and goes out as they complete.
    if (this.inflight === 0) this.pump();
    if (this.dirty.bytes >= this.io.writeBackBytes) {
      this.pump();
      // A writer faster than the network waits here instead of growing memory.
      while (this.dirty.bytes + this.inflightBytes > 2 * this.io.writeBackBytes && !this.error) await this.nextCompletion();
    }
    return data.length;
  }

  /** Drops unflushed bytes past `size`, ahead of a truncate of the remote file. */
  truncateDirty(size: number): void {
    this.dirty.truncate(size);
    this.remoteSize = Math.min(this.remoteSize, size);
    this.sentEnd = Math.min(this.sentEnd, size);
  }

  setRemoteSize(size: number): void {
    this.remoteSize = size;
    this.sentEnd = Math.min(this.sentEnd, size);
  }

  /**
   * Keeps up to writeDepth WRITE requests in flight, each at most one
   * server-sized piece, refilling as each one completes: a steady stream
   * instead of batches, and never more in flight than the server takes well.
   */
  private pump(): void {
    const max = Math.max(1, this.io.session.maxWriteLen);
    while (this.inflight < this.io.writeDepth && !this.error) {
      const piece = this.dirty.takeFirst(max);
      if (!piece) break;
      this.inflight++;
      this.inflightBytes += piece.data.length;
      this.sentEnd = Math.max(this.sentEnd, piece.offset + piece.data.length);
      void this.io.session.writeChunk(this.ref, piece.offset, piece.data).then(
        () => {
          this.remoteSize = Math.max(this.remoteSize, piece.offset + piece.data.length);
        },
        (err: unknown) => {
          this.error ??= fromSftpError(err, 'write', this.remotePath);
        },
      ).finally(() => {
        this.inflight--;
        this.inflightBytes -= piece.data.length;
        this.io.onRemoteChanged(this.node);
        this.pump();
        const waiters = this.completions;
        this.completions = [];
        for (const wake of waiters) wake();
      });
    }
  }

  private nextCompletion(): Promise<void> {
    return new Promise((resolve) => this.completions.push(resolve));
  }

  private takeError(): FsError {
    const error = this.error!;
    this.error = undefined;
    return error;
  }

  /** Writes everything buffered; throws (once) the first write-back error since the last flush. */
  async flush(): Promise<void> {
    if (this.lost) throw this.lost;
    this.pump();
    while ((this.inflight > 0 || !this.dirty.isEmpty) && !this.error) {
      // Once the last data is on the wire the times can follow right behind
      // it: the server handles requests in order, so they land after the data.
      if (this.dirty.isEmpty) this.sendTimes();
      await this.nextCompletion();
    }
    // After a failure, let what is still in flight settle before reporting it.
    while (this.inflight > 0) await this.nextCompletion();
    if (this.error) throw this.takeError();
    this.sendTimes();
    this.throwTimesError();
  }

  /**
   * Puts every buffered write on the wire and waits for it, for a reader on
   * another handle; a failure stays for this handle's own flush or close to report.
   */
  async settle(): Promise<void> {
    this.pump();
    while (this.inflight > 0 || (!this.dirty.isEmpty && !this.error)) await this.nextCompletion();
  }

  /**
   * Sends the times set through this handle since the last flush, if any,
   * without waiting for the answer: the server applies them before anything
   * sent after them on this connection, and waiting would cost every written
   * file a round trip at its close (the kernel's write-back cache sends its
   * mtime stamp before each flush, often after the data has landed). The
   * kernel's own stamp is best effort: a server that refuses it (a file of
   * another owner) keeps the time the data landed, and nobody is told. A
   * refusal of times someone set goes to `timesSettled`, or the next flush or
   * close.
   */
  private sendTimes(): void {
    const times = this.pendingTimes;
    if (!times) return;
    this.pendingTimes = undefined;
    this.timesTaken = undefined;
    this.timesSent = this.io.session.changeAttrs({ handle: this.ref }, sftpTimes(times)).then(
      () => {
        this.timesTaken = times;
      },
      (err: unknown) => {
        if (!times.kernelStamp) this.timesError ??= fromSftpError(err, 'setattr', this.remotePath);
      },
    );
  }

  /**
   * After a clean close: the version (contentVersion) the server now has if
   * what was written here is all it has, which is then also what the kernel
   * holds (its write-back cache keeps the pages it wrote). Known only when
   * the server took the times sent last, behind the data.
   */
  writtenVersion(): string | undefined {
    if (!this.closed || !this.wrote || !this.timesTaken || this.lost || this.hasDirtyData) return undefined;
    const { mtime } = sftpTimes(this.timesTaken);
    return contentVersion({ size: this.size, mtimeMs: mtime * 1000 });
  }

  private throwTimesError(): void {
    const error = this.timesError;
    this.timesError = undefined;
    if (error) throw error;
  }

  /** Waits for the server's answer to the times sent last; throws (once) a refusal of times someone set. */
  async timesSettled(): Promise<void> {
    await this.timesSent;
    this.throwTimesError();
  }

  async fsync(): Promise<void> {
    await this.flush();
    if (!this.mode.writable || !this.io.session.extensions.has('fsync@openssh.com')) return;
    try {
      await this.io.session.fsync(this.ref);
    } catch (err) {
      throw fromSftpError(err, 'fsync', this.remotePath);
    }
  }

  /** Flushes, then closes the remote handle even when the flush failed; throws the first error. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    let failure: FsError | undefined;
    try {
      await this.flush();
      await this.timesSettled();
    } catch (err) {
      failure = err instanceof FsError ? err : fromSftpError(err, 'close', this.remotePath);
    }
    await Promise.all([...this.prefetches]);
    try {
      await this.io.session.closeHandle(this.ref);
    } catch (err) {
      failure ??= fromSftpError(err, 'close', this.remotePath);
    }
    if (failure) throw failure;
  }
}
