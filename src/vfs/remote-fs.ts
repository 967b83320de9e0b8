import { constants as fsConstants } from 'node:fs';
import type { InputAttributes } from 'ssh2';
import { answerBehind, type AttrTarget, type HandleRef, RemoteLink } from '../remote/link.js';
import type { RemoteAttrs, RemoteStatvfs, SftpSession } from '../remote/sftp-session.js';
import { SftpOpen } from '../remote/sftp-session.js';
import { BlockCache } from './block-cache.js';
import { type ErrnoCode, FsError, fromSftpError, isFailureStatus, PresumedMissing } from './errors.js';
import { blockVersion, contentVersion, FileHandle, sftpTimes, wholeSeconds, type FileTimes, type HandleIo, type PendingTimes } from './file-handle.js';
import { FileType, isDir, isRegular } from './file-type.js';
import { type Inode, InodeTable, ROOT_INO } from './inode-table.js';
import { type ListingEntries, ListingFetcher } from './listing-fetcher.js';
import { MetadataCache } from './metadata-cache.js';
import { DEFAULT_OPTIONS, type RemoteFsOptions } from './options.js';
import { childPath, isValidName, normalizeRemoteRoot, parentOf, remotePath } from './paths.js';
import { type FsStats, newStats } from './stats.js';
import { claimTimes, type SettleTimes } from './times-order.js';

export { ROOT_INO };

const { S_IFMT, S_IFLNK } = FileType;
const NAME_MAX = 255;
/**
 * How long after this mount last added a name to a directory its cached
 * listing answers lookups of other names with "no such file": tar, cp -r and
 * builds look up every name before creating it, and without this each new
 * file costs one more round trip.
 */
const FILLING_WINDOW_MS = 1000;
/** How much a small file may have grown since its size was cached and still be read with its open. */
const EARLY_READ_SLACK = 16 * 1024;

/** This OS's open(2) flag bits; backends pass the kernel's flags through unchanged. */
export const OpenFlags = {
  accmode: 3,
  wronly: fsConstants.O_WRONLY ?? 1,
  rdwr: fsConstants.O_RDWR ?? 2,
  creat: fsConstants.O_CREAT ?? 0o100,
  excl: fsConstants.O_EXCL ?? 0o200,
  trunc: fsConstants.O_TRUNC ?? 0o1000,
  append: fsConstants.O_APPEND ?? 0o2000,
};

export interface Attr extends RemoteAttrs {
  ino: number;
  nlink: number;
  /** 512-byte blocks, as stat(2) counts them. */
  blocks: number;
}

export interface Entry {
  ino: number;
  attr: Attr;
}

export interface DirEntry {
  name: string;
  attr: Attr;
}

export interface AttrChanges {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: number;
  atimeMs?: number;
  mtimeMs?: number;
  /**
   * The mtime is the kernel's write-back cache stamping a file written
   * through it: it goes to the server behind the data, best effort.
   */
  kernelStamp?: boolean;
}

export interface RenameFlags {
  /** Fail with EEXIST instead of replacing the target (RENAME_NOREPLACE). */
  noReplace?: boolean;
  /** Swap the two names (RENAME_EXCHANGE): SFTP cannot, so this is EINVAL. */
  exchange?: boolean;
}

export type Statfs = RemoteStatvfs;


/**
 * The backend-neutral filesystem over one SFTP session. Every operation is
 * async and either returns or throws an FsError; nothing here knows which
 * backend calls it. Inode numbers are RemoteFs's own (ROOT_INO is the
 * mount's root), handles are small integers.
 */
export class RemoteFs {
  readonly options: RemoteFsOptions;
  readonly inodes = new InodeTable();
  readonly stats: FsStats = newStats();
  private readonly cache: MetadataCache;
  private readonly listings: ListingFetcher;
  private readonly blocks: BlockCache;
  private readonly handles = new Map<number, FileHandle>();
  private nextFh = 1;
  /** Numbers setattrs that set times, in the order they arrive. */
  private timesTickets = 0;
  private readonly io: HandleIo;
  private readonly root: string;

  constructor(
    private readonly session: RemoteLink,
    options: Partial<RemoteFsOptions> = {},
  ) {
    this.options = { ...DEFAULT_OPTIONS, ...options };
    this.root = normalizeRemoteRoot(this.options.root);
    this.cache = new MetadataCache({
      attrTtlMs: this.options.attrTtlMs,
      dirTtlMs: this.options.dirTtlMs,
      negativeTtlMs: this.options.negativeTtlMs,
      fillingWindowMs: FILLING_WINDOW_MS,
      maxEntries: this.options.metadataEntries,
    });
    this.listings = new ListingFetcher(
      async (path): Promise<ListingEntries> => (await this.session.readdir(this.remote(path))).map((entry) => [entry.name, entry.attrs]),
      this.cache,
      // A few at a time: the server answers requests in order, and a user's
      // own request should not queue behind many speculative ones.
      { ahead: this.options.dirPrefetch, concurrency: 4, retryAfterMs: Math.max(1_000, this.options.dirTtlMs) },
    );
    this.blocks = new BlockCache(this.options.dataCacheBytes);
    const blockSize = largestPowerOfTwoAtMost(Math.min(256 * 1024, session.maxReadLen));
    this.io = {
      session,
      blocks: this.blocks,
      blockSize,
      maxReadAhead: this.options.maxReadAheadBytes,
      writeBackBytes: this.options.writeBackBytes,
      writeDepth: this.options.writeDepth,
      stats: this.stats,
      onRemoteChanged: (node) => this.cache.staleAttrs(node.path),
    };
  }

  /** Checks that the root exists and is a directory; the mount fails early otherwise. */
  async start(): Promise<Attr> {
    const attr = await this.getattr(ROOT_INO);
    if (!isDir(attr)) throw new FsError('ENOTDIR', 'mount', this.remote(''), 'the remote path is not a directory');
    return attr;
  }

  get cacheStats(): { hits: number; misses: number } {
    return { hits: this.cache.hits + this.stats.cacheHits, misses: this.cache.misses + this.stats.cacheMisses };
  }

  get openHandles(): number {
    return this.handles.size;
  }

  remote(path: string): string {
    return remotePath(this.root, path);
  }

  private toAttr(ino: number, attrs: RemoteAttrs): Attr {
    // SFTP v3 has no link count. A file removed while open has none left
    // (fstat shows 0, which is how a program can tell it was deleted).
    const nlink = this.inodes.get(ino)?.unlinked ? 0 : isDir(attrs) ? 2 : 1;
    return { ...attrs, ino, nlink, blocks: Math.ceil(attrs.size / 512) };
  }

  private node(ino: number, op: string): Inode {
    const node = this.inodes.get(ino);
    if (!node) throw new FsError('ENOENT', op, `#${ino}`, 'unknown inode (forgotten or never looked up)');
    return node;
  }

  private liveNode(ino: number, op: string): Inode {
    const node = this.node(ino, op);
    if (node.unlinked) throw new FsError('ENOENT', op, node.path, 'the file was removed');
    return node;
  }

  private child(parentIno: number, name: string, op: string): string {
    const parent = this.liveNode(parentIno, op);
    if (!isValidName(name)) throw new FsError('EINVAL', op, childPath(parent.path, name), 'not a single path component');
    if (Buffer.byteLength(name) > NAME_MAX) throw new FsError('ENAMETOOLONG', op, childPath(parent.path, name));
    return childPath(parent.path, name);
  }

  private writable(op: string, path: string): void {
    if (this.options.readonly) throw new FsError('EROFS', op, path, 'mounted read-only');
  }

  /**
   * Counts the operation and its failure; any unexpected exception becomes
   * EIO with its context. One promise hop, not an async frame.
   */
  private run<T>(op: string, path: string, work: () => Promise<T>): Promise<T> {
    this.stats.ops++;
    let done: Promise<T>;
    try {
      done = work();
    } catch (err) {
      done = Promise.reject(err);
    }
    return done.catch((err: unknown) => {
      this.stats.errors++;
      throw fromSftpError(err, op, path);
    });
  }

  /** Fresh attributes of a path (lstat: symlinks are not followed), cached. */
  private async fetchAttrs(path: string): Promise<RemoteAttrs> {
    const cached = this.cache.getAttrs(path);
    if (cached) return cached;
    const missing = this.cache.missingKind(path);
    if (missing === 'known') throw new FsError('ENOENT', 'lookup', path);
    if (missing === 'presumed') throw new PresumedMissing('lookup', path);
    try {
      const attrs = await this.session.lstat(this.remote(path));
      this.cache.setAttrs(path, attrs);
      return attrs;
    } catch (err) {
      const error = fromSftpError(err, 'lstat', path);
      if (error.code === 'ENOENT') this.cache.markMissing(path);
      throw error;
    }
  }

  private async exists(path: string): Promise<RemoteAttrs | undefined> {
    try {
      return await this.session.lstat(this.remote(path));
    } catch {
      return undefined;
    }
  }

  /**
   * OpenSSH answers most failures with a bare SSH_FX_FAILURE; the errno the
   * caller needs (EEXIST, ENOTEMPTY, EISDIR…) is recovered by looking at the
   * remote state the failure left.
   */
  private async diagnose(err: unknown, op: string, path: string, probe: () => Promise<ErrnoCode | undefined>): Promise<never> {
    if (isFailureStatus(err) || (err instanceof Error && /No such file/.test(err.message))) {
      const code = await probe().catch(() => undefined);
      if (code) throw new FsError(code, op, path);
    }
    throw fromSftpError(err, op, path);
  }

  /** Remote attributes as this mount's open files will leave them: unflushed sizes and pending times included. */
  private overlay(node: Inode, attrs: RemoteAttrs): RemoteAttrs {
    let result = attrs;
    for (const handle of this.handles.values()) {
      if (handle.node !== node) continue;
      if (handle.hasDirtyData && handle.size > result.size) result = { ...result, size: handle.size };
      if (handle.pendingTimes) result = { ...result, ...handle.pendingTimes };
    }
    return result;
  }

  lookup(parentIno: number, name: string): Promise<Entry> {
    return this.run('lookup', name, async () => {
      const path = this.child(parentIno, name, 'lookup');
      const attrs = await this.fetchAttrs(path);
      const node = this.inodes.remember(path);
      return { ino: node.ino, attr: this.toAttr(node.ino, this.overlay(node, attrs)) };
    });
  }

  /** Takes a lookup for an entry a backend reports to its client without a lookup call (readdirplus). */
  remember(parentIno: number, name: string): number {
    return this.inodes.remember(this.child(parentIno, name, 'readdir')).ino;
  }

  /** The number a name would get, without taking a lookup (plain readdir). */
  peekIno(parentIno: number, name: string): number {
    return this.inodes.ensure(this.child(parentIno, name, 'readdir')).ino;
  }

  forget(ino: number, count: number): void {
    this.inodes.forget(ino, count);
  }

  getattr(ino: number, fh?: number): Promise<Attr> {
    return this.run('getattr', `#${ino}`, async () => {
      const node = this.node(ino, 'getattr');
      const handle = fh === undefined ? this.anyHandle(node) : this.handles.get(fh);
      if (node.unlinked) {
        if (!handle) throw new FsError('ENOENT', 'getattr', node.path, 'the file was removed');
        const attrs = await this.session.fstat(handle.ref);
        return this.toAttr(ino, this.overlay(node, attrs));
      }
      return this.toAttr(ino, this.overlay(node, await this.fetchAttrs(node.path)));
    });
  }

  private anyHandle(node: Inode): FileHandle | undefined {
    for (const handle of this.handles.values()) if (handle.node === node) return handle;
    return undefined;
  }

  private handlesOf(node: Inode): FileHandle[] {
    return [...this.handles.values()].filter((handle) => handle.node === node);
  }

  setattr(ino: number, changes: AttrChanges, fh?: number): Promise<Attr> {
    return this.run('setattr', `#${ino}`, async () => {
      const node = this.node(ino, 'setattr');
      this.writable('setattr', node.path);
      const shown = this.timesAlreadyShown(node, changes);
      if (shown) return this.toAttr(ino, this.overlay(node, shown));
      const timed = setsTimes(changes);
      if (timed) node.timesInFlight = (node.timesInFlight ?? 0) + 1;
      try {
        return await this.changeAttrs(node, changes, fh);
      } finally {
        if (timed) node.timesInFlight! -= 1;
      }
    });
  }

  /**
   * The cached attributes, when a setattr sets only an mtime they already
   * show in the whole seconds SFTP carries: the kernel's write-back cache
   * sends the mtime it holds with every ctime it keeps (after a rename, a
   * link, an unlink), which SFTP cannot set anyway; for a file written
   * through the mount that is its own stamp, finer than the server's. A
   * user's utimens carries the atime too and always goes out, as does
   * anything while the file is open for writing (the write-back stamp, times
   * waiting behind data) or other times are on their way.
   */
  private timesAlreadyShown(node: Inode, changes: AttrChanges): RemoteAttrs | undefined {
    if (!keepsSizeModeOwner(changes) || changes.mtimeMs === undefined || changes.atimeMs !== undefined || changes.kernelStamp) return undefined;
    if (node.unlinked || node.timesInFlight || this.handlesOf(node).some((h) => h.mode.writable)) return undefined;
    const cached = this.cache.getAttrs(node.path);
    return cached && wholeSeconds(changes.mtimeMs) === wholeSeconds(cached.mtimeMs) ? cached : undefined;
  }

  private async changeAttrs(node: Inode, changes: AttrChanges, fh: number | undefined): Promise<Attr> {
    const ino = node.ino;
    const handle = fh === undefined ? undefined : this.handles.get(fh);
    const viaHandle = node.unlinked ? (handle ?? this.anyHandle(node)) : undefined;
    if (node.unlinked && !viaHandle) throw new FsError('ENOENT', 'setattr', node.path, 'the file was removed');
    const onlyTimes = keepsSizeModeOwner(changes);
    // Requests are handled concurrently, but times must end as the last one
    // to arrive set them: the kernel's write-back stamp and a futimens right
    // after it (cp -p) are both in flight at a close.
    const timed = setsTimes(changes);
    const ticket = timed ? ++this.timesTickets : 0;
    // Only times set through a file open for writing wait for its close (the
    // kernel's write-back cache does this after writes); a utimens on the
    // path (touch -d) is for everyone to see at once.
    const writer = onlyTimes && handle?.mode.writable && !handle.closed ? handle : undefined;
    if (writer && timed) {
      const current = this.overlay(node, await this.currentAttrs(node, viaHandle));
      const times = timesAfter(changes, current);
      const settle = await claimTimes(node, ticket);
      // A stamp for a file closed meanwhile has nothing to go out with: an
      // earlier arrival waiting on it must not give way to it.
      const sends = !writer.closed || (!changes.kernelStamp && !node.unlinked);
      if (settle && !sends) settle(false);
      if (settle && sends) {
        let applied = false;
        const undo = this.supersedePendingTimes(node, changes, times);
        try {
          if (!writer.closed) {
            writer.pendingTimes = { ...times, kernelStamp: changes.kernelStamp === true };
          } else {
            // Closed while its attributes were fetched: its data has landed, the times can go now.
            await this.session.changeAttrs({ path: this.remote(node.path), link: false }, sftpTimes(times));
          }
          applied = true;
        } finally {
          settle(applied, undo);
        }
      }
      return this.toAttr(ino, this.overlay(node, current));
    }
    const path = this.remote(node.path);
    // SFTP's setstat follows symlinks; a symlink's own times (rsync -a, cp -a)
    // need lsetstat@openssh.com, and without it are left alone rather than
    // applied to the target or failing on a dangling link.
    const shownMode = viaHandle ? 0 : ((await this.fetchAttrs(node.path).catch(() => undefined))?.mode ?? 0);
    const symlink = (shownMode & S_IFMT) === S_IFLNK;
    const lsetstat = this.session.extensions.has('lsetstat@openssh.com');
    if (symlink && !lsetstat && onlyTimes) return this.toAttr(ino, await this.fetchAttrs(node.path));
    const target: AttrTarget = viaHandle ? { handle: viaHandle.ref } : { path, link: symlink && lsetstat };
    const apply = (attrs: InputAttributes) => this.session.changeAttrs(target, attrs);
    // The last change travels together with the request for the attributes it leaves.
    const applyAndStat = (attrs: InputAttributes) => this.session.changeAndStat(target, attrs);

    let fresh: RemoteAttrs | undefined;
    let settle: SettleTimes | undefined;
    let undo: (() => void) | undefined;
    try {
      if (changes.size !== undefined) {
        // Unflushed writes must land before the size changes, and none may land after it.
        const open = this.handlesOf(node);
        await Promise.all(open.map((h) => h.flush()));
        await apply({ size: changes.size });
        for (const h of open) h.truncateDirty(changes.size);
        for (const h of open) h.setRemoteSize(changes.size);
        node.dataGen++;
      }
      // One SETSTAT for the rest: OpenSSH applies mode, then times, then owner.
      const rest: InputAttributes = {};
      if (changes.mode !== undefined) rest.mode = changes.mode & 0o7777;
      if (changes.uid !== undefined || changes.gid !== undefined) {
        const current = await this.currentAttrs(node, viaHandle);
        rest.uid = changes.uid ?? current.uid;
        rest.gid = changes.gid ?? current.gid;
      }
      if (timed) {
        // SFTP v3 sets both times together.
        const current = changes.atimeMs !== undefined && changes.mtimeMs !== undefined ? undefined : await this.currentAttrs(node, viaHandle);
        const times = timesAfter(changes, current);
        settle = await claimTimes(node, ticket);
        // Looked at only now: the claim may have waited for a later setattr's flush.
        const open = this.handlesOf(node);
        const writer = changes.mtimeMs !== undefined ? open.find((h) => h.hasDirtyData && !h.closed) : undefined;
        if (settle) undo = this.supersedePendingTimes(node, changes, times);
        if (settle && writer) {
          // Unflushed data would move mtime again when it lands: the times
          // go out right behind it through the writer's handle.
          writer.pendingTimes = { ...times, kernelStamp: false };
          const flushed = Promise.all(open.map((h) => h.flush()));
          // Once every write and the times are on the wire (flush sends
          // them before its first wait when little is left), the stat for
          // the reply can follow right behind them: one round trip, not two.
          if (!viaHandle && writer.pendingTimes === undefined && open.every((h) => h.allSent)) {
            fresh = await answerBehind(flushed, this.session.lstat(path));
          } else {
            await flushed;
          }
          // The flush does not wait for the times' answer; this call must.
          await writer.timesSettled();
        } else if (settle) {
          Object.assign(rest, sftpTimes(times));
        }
      }
      if (Object.keys(rest).length > 0) fresh = await applyAndStat(rest);
      settle?.(true);
    } catch (err) {
      settle?.(false, undo);
      this.cache.staleAttrs(node.path);
      await this.diagnose(err, 'setattr', node.path, async () => {
        const attrs = await this.exists(node.path);
        return changes.size !== undefined && attrs && isDir(attrs) ? 'EISDIR' : undefined;
      });
    }
    this.cache.staleAttrs(node.path);
    if (fresh && !viaHandle) this.cache.setAttrs(node.path, fresh);
    fresh ??= viaHandle ? await this.session.fstat(viaHandle.ref) : await this.fetchAttrs(node.path);
    return this.toAttr(ino, this.overlay(node, fresh));
  }

  /**
   * Times still waiting on handles of `node` are older than `times`, just set:
   * a new mtime replaces them, a new atime alone only their atime (their
   * mtime, the kernel's stamp of data not landed yet, still has to follow it).
   */
  private supersedePendingTimes(node: Inode, changes: AttrChanges, times: FileTimes): () => void {
    const replaced: [FileHandle, PendingTimes][] = [];
    for (const h of this.handlesOf(node)) {
      if (!h.pendingTimes) continue;
      replaced.push([h, h.pendingTimes]);
      h.pendingTimes = changes.mtimeMs !== undefined ? undefined : { ...h.pendingTimes, atimeMs: times.atimeMs };
    }
    // For times that then fail while no later ones were claimed: what they
    // replaced was promised to its caller, and goes out at the next flush.
    return () => {
      for (const [h, before] of replaced) if (!h.closed) h.pendingTimes = before;
    };
  }

  private currentAttrs(node: Inode, handle: FileHandle | undefined): Promise<RemoteAttrs> {
    return handle ? this.session.fstat(handle.ref) : this.fetchAttrs(node.path);
  }

  readdir(ino: number): Promise<DirEntry[]> {
    return this.run('readdir', `#${ino}`, async () => {
      const node = this.liveNode(ino, 'readdir');
      const listing = this.cache.getListing(node.path);
      let entries: ListingEntries;
      if (listing) {
        this.listings.ahead(node.path, listing);
        entries = await Promise.all(
          [...listing].map(async ([name, attrs]): Promise<[string, RemoteAttrs]> => [name, attrs ?? (await this.fetchAttrs(childPath(node.path, name)))]),
        );
      } else {
        entries = await this.listings.get(node.path).catch((err: unknown) =>
          this.diagnose(err, 'readdir', node.path, async () => {
            const attrs = await this.exists(node.path);
            return attrs && !isDir(attrs) ? 'ENOTDIR' : undefined;
          }),
        );
        this.listings.ahead(node.path, entries);
      }
      return entries.map(([name, attrs]) => {
        const known = this.inodes.find(childPath(node.path, name));
        return { name, attr: this.toAttr(known?.ino ?? 0, known ? this.overlay(known, attrs) : attrs) };
      });
    });
  }

  /** Opens a file; `flags` are this OS's open(2) flags. Returns the handle number. */
  open(ino: number, flags: number): Promise<{ fh: number; attr: Attr; unchanged: boolean }> {
    return this.run('open', `#${ino}`, () => {
      const node = this.node(ino, 'open');
      return node.unlinked ? this.openRemoved(node, flags) : this.openNode(node, flags, undefined);
    });
  }

  /**
   * Opens again a file removed while open (/dev/fd/N, /proc/PID/fd/N): its
   * name is gone on the server, so the new handle shares the remote handle of
   * one still open there, which is what keeps the file alive.
   */
  private async openRemoved(node: Inode, flags: number): Promise<{ fh: number; attr: Attr; unchanged: boolean }> {
    const writable = opensForWriting(flags);
    if (writable) this.writable('open', node.path);
    // Every remote handle can read (see openNode); writing needs one opened for it.
    const keeper = () => this.handlesOf(node).find((h) => !h.closed && (!writable || h.mode.writable));
    const first = keeper();
    if (!first) throw new FsError('ENOENT', 'open', node.path, writable ? 'the file was removed, and no descriptor open for writing keeps it' : 'the file was removed');
    const attrs = await this.session.fstat(first.ref);
    // Closed meanwhile, another may still keep it (the same file: the attributes hold).
    const source = first.closed ? keeper() : first;
    if (!source) throw new FsError('ENOENT', 'open', node.path, 'the file was removed, and its last descriptor closed meanwhile');
    source.ref.users = (source.ref.users ?? 1) + 1;
    const fh = this.nextFh++;
    const handle = new FileHandle(fh, node, source.ref, source.sftpFlags, { readable: true, writable, append: (flags & OpenFlags.append) !== 0 }, attrs, this.io);
    this.handles.set(fh, handle);
    this.inodes.opened(node);
    if (writable && (flags & OpenFlags.trunc) !== 0) {
      try {
        return { fh, attr: await this.setattr(node.ino, { size: 0 }, fh), unchanged: false };
      } catch (err) {
        // A failed open hands no handle to the kernel, so nothing would release this one.
        await this.release(fh).catch(() => undefined);
        throw err;
      }
    }
    return { fh, attr: this.toAttr(node.ino, this.overlay(node, attrs)), unchanged: false };
  }

  /** Creates (or with O_EXCL only creates) and opens a file. */
  create(parentIno: number, name: string, mode: number, flags: number): Promise<{ fh: number; entry: Entry }> {
    return this.run('create', name, async () => {
      const path = this.child(parentIno, name, 'create');
      this.writable('create', path);
      const node = this.inodes.ensure(path);
      const opened = await this.openNode(node, flags | OpenFlags.creat, mode & 0o7777);
      node.nlookup++;
      return { fh: opened.fh, entry: { ino: node.ino, attr: opened.attr } };
    });
  }

  private async openNode(node: Inode, flags: number, createMode: number | undefined): Promise<{ fh: number; attr: Attr; unchanged: boolean }> {
    const writable = opensForWriting(flags);
    const truncate = (flags & OpenFlags.trunc) !== 0 && writable;
    if (writable || truncate || createMode !== undefined) this.writable('open', node.path);
    // The kernel's write-back cache reads pages of files opened write-only,
    // so every writable handle can read as well.
    let sftpFlags = SftpOpen.read | (writable ? SftpOpen.write : 0);
    if (truncate) sftpFlags |= SftpOpen.trunc;
    if (createMode !== undefined) sftpFlags |= SftpOpen.creat | SftpOpen.write;
    if (createMode !== undefined && (flags & OpenFlags.excl) !== 0) sftpFlags |= SftpOpen.excl;

    const path = this.remote(node.path);
    const previous = this.cache.getAttrs(node.path);
    const exclusive = (sftpFlags & SftpOpen.excl) !== 0;
    const earlyBytes = (sftpFlags & SftpOpen.write) === 0 ? this.earlyBytes(node, previous) : 0;
    let ref: HandleRef;
    let attrs: RemoteAttrs;
    let early: Promise<Buffer | undefined> | undefined;
    try {
      ({ ref, attrs, early } = await this.session.open(path, sftpFlags, createMode, exclusive, reopenFlags(sftpFlags), earlyBytes));
    } catch (err) {
      this.inodes.dropIfUnused(node);
      return this.diagnose(err, 'open', node.path, async () => {
        const attrs = await this.exists(node.path);
        if (attrs && createMode !== undefined && (flags & OpenFlags.excl) !== 0) return 'EEXIST';
        if (attrs && isDir(attrs)) return 'EISDIR';
        if (!attrs && createMode !== undefined) {
          const parent = await this.exists(parentOf(node.path));
          if (parent && !isDir(parent)) return 'ENOTDIR';
        }
        return undefined;
      });
    }
    // Close-to-open: every open sees the remote's current size and mtime.
    this.cache.setAttrs(node.path, attrs);
    if (createMode !== undefined || truncate) this.cache.added(node.path, attrs);
    if (truncate) node.dataGen++;
    const fh = this.nextFh++;
    const handle = new FileHandle(fh, node, ref, sftpFlags, { readable: true, writable: writable || createMode !== undefined, append: (flags & OpenFlags.append) !== 0 }, attrs, this.io);
    this.handles.set(fh, handle);
    this.inodes.opened(node);
    // The kernel may keep its pages when they are of this very version: the
    // one it was last given (not merely the one cached here, which can be
    // newer than its pages, or gone after its timeout while they are not).
    const unchanged = node.servedVersion === contentVersion(attrs) && !truncate;
    // Only with no other handle open: another's unflushed writes would make the early block stale.
    if (node.openCount === 1 && isRegular(attrs)) handle.fetchSmallFileAhead(unchanged, early);
    return { fh, attr: this.toAttr(node.ino, attrs), unchanged };
  }

  /**
   * How much of a file to read together with its open (RemoteLink.open): a
   * small file opened for reading is read next, nearly always, and this way
   * its content arrives with the open's answer instead of a round trip after
   * it. The size comes from the attributes cached for it (a listing, a
   * lookup), plus room for a file that grew since. Nothing when another
   * handle is open (its unflushed writes would make the early block stale),
   * or when the kernel already holds this version and will not ask.
   */
  private earlyBytes(node: Inode, cached: RemoteAttrs | undefined): number {
    if (!cached || !isRegular(cached) || cached.size === 0 || cached.size > this.io.blockSize || node.openCount > 0) return 0;
    // Neither when the kernel holds that version, nor when tmount does (an
    // earlier open fetched it and nothing read it).
    const version = contentVersion(cached);
    if (node.servedVersion === version || this.io.blocks.has(BlockCache.key(blockVersion(node, version), 0))) return 0;
    return Math.min(this.io.blockSize, cached.size + EARLY_READ_SLACK);
  }

  private handle(fh: number, op: string): FileHandle {
    const handle = this.handles.get(fh);
    if (!handle) throw new FsError('EBADF', op, `fh ${fh}`, 'no such open file');
    return handle;
  }

  read(fh: number, offset: number, size: number): Promise<Buffer> {
    return this.run('read', `fh ${fh}`, () => {
      const handle = this.handle(fh, 'read');
      // The kernel reads through the reader's handle whichever descriptor
      // wrote (git's index-pack reads back a pack another descriptor is still
      // writing): buffered writes of the other handles must be on the remote first.
      let writers: FileHandle[] | undefined;
      for (const other of this.handles.values()) {
        if (other !== handle && other.node === handle.node && other.hasDirtyData) (writers ??= []).push(other);
      }
      if (!writers) return handle.read(offset, size);
      return Promise.all(writers.map((writer) => writer.settle())).then(() => handle.read(offset, size));
    });
  }

  /** Buffers a write (the buffer is now RemoteFs's); it reaches the remote by flush/fsync/release at the latest. */
  write(fh: number, offset: number, data: Buffer): Promise<number> {
    return this.run('write', `fh ${fh}`, async () => {
      const handle = this.handle(fh, 'write');
      const written = await handle.write(offset, data);
      // What this write does to size and mtime is known without asking; the
      // remote's own values replace these once the data has landed.
      const cached = this.cache.getAttrs(handle.node.path);
      if (cached) this.cache.changedAttrs(handle.node.path, { ...cached, size: Math.max(cached.size, handle.size), mtimeMs: Date.now() });
      return written;
    });
  }

  flush(fh: number): Promise<void> {
    return this.run('flush', `fh ${fh}`, () => this.handle(fh, 'flush').flush());
  }

  fsync(fh: number): Promise<void> {
    return this.run('fsync', `fh ${fh}`, () => this.handle(fh, 'fsync').fsync());
  }

  /** Closes a handle: flushes, closes the remote handle, and lets an unlinked file go. */
  release(fh: number): Promise<void> {
    return this.run('release', `fh ${fh}`, async () => {
      const handle = this.handle(fh, 'release');
      try {
        await handle.close();
        // What it wrote is what the kernel holds: its next open may keep those pages.
        const written = handle.writtenVersion();
        if (written && !this.handlesOf(handle.node).some((h) => h !== handle && h.mode.writable)) handle.node.servedVersion = written;
      } finally {
        this.handles.delete(fh);
        this.inodes.closed(handle.node);
        if (handle.mode.writable) this.cache.staleAttrs(handle.node.path);
      }
    });
  }

  mkdir(parentIno: number, name: string, mode: number): Promise<Entry> {
    return this.run('mkdir', name, async () => {
      const path = this.child(parentIno, name, 'mkdir');
      this.writable('mkdir', path);
      const attrs = await this.session.mkdir(this.remote(path), mode & 0o7777).catch((err: unknown) =>
        this.diagnose(err, 'mkdir', path, async () => ((await this.exists(path)) ? 'EEXIST' : undefined)),
      );
      this.cache.madeDirectory(path, attrs);
      return this.entryFor(path, attrs);
    });
  }

  /** The entry of a name just made, with the attributes the remote gave it. */
  private entryFor(path: string, attrs: RemoteAttrs): Entry {
    const node = this.inodes.remember(path);
    return { ino: node.ino, attr: this.toAttr(node.ino, attrs) };
  }

  unlink(parentIno: number, name: string): Promise<void> {
    return this.run('unlink', name, async () => {
      const path = this.child(parentIno, name, 'unlink');
      this.writable('unlink', path);
      await this.session.unlink(this.remote(path)).catch((err: unknown) =>
        this.diagnose(err, 'unlink', path, async () => {
          const attrs = await this.exists(path);
          return attrs && isDir(attrs) ? 'EISDIR' : undefined;
        }),
      );
      this.cache.removed(path);
      this.inodes.unlink(path);
    });
  }

  rmdir(parentIno: number, name: string): Promise<void> {
    return this.run('rmdir', name, async () => {
      const path = this.child(parentIno, name, 'rmdir');
      this.writable('rmdir', path);
      await this.session.rmdir(this.remote(path)).catch((err: unknown) =>
        this.diagnose(err, 'rmdir', path, async () => {
          const attrs = await this.exists(path);
          if (!attrs) return undefined;
          if (!isDir(attrs)) return 'ENOTDIR';
          return (await this.session.readdir(this.remote(path))).length > 0 ? 'ENOTEMPTY' : undefined;
        }),
      );
      this.cache.removed(path);
      this.cache.dropTree(path);
      this.inodes.unlink(path);
    });
  }

  rename(parentIno: number, name: string, newParentIno: number, newName: string, flags: RenameFlags = {}): Promise<void> {
    return this.run('rename', name, async () => {
      const from = this.child(parentIno, name, 'rename');
      const to = this.child(newParentIno, newName, 'rename');
      this.writable('rename', from);
      if (flags.exchange) throw new FsError('EINVAL', 'rename', from, 'SFTP cannot exchange two names');
      if (from === to) return;
      if (to.startsWith(`${from}/`)) throw new FsError('EINVAL', 'rename', from, 'cannot move a directory into itself');
      const source = await this.fetchAttrs(from);
      const remoteFrom = this.remote(from);
      const remoteTo = this.remote(to);
      try {
        if (flags.noReplace) {
          if (await this.exists(to)) throw new FsError('EEXIST', 'rename', to);
          await this.session.rename(remoteFrom, remoteTo);
        } else if (this.session.extensions.has('posix-rename@openssh.com')) {
          await this.session.posixRename(remoteFrom, remoteTo);
        } else {
          await this.renameReplacing(remoteFrom, to, remoteTo);
        }
      } catch (err) {
        await this.diagnose(err, 'rename', from, () => this.renameFailure(source, to));
      }
      this.cache.renamed(from, to, source, isDir(source));
      this.inodes.rename(from, to);
    });
  }

  /** Without posix-rename: SFTP's rename refuses an existing target, so remove it first (not atomic). */
  private async renameReplacing(remoteFrom: string, to: string, remoteTo: string): Promise<void> {
    try {
      await this.session.rename(remoteFrom, remoteTo);
    } catch (err) {
      const target = await this.exists(to);
      if (!target) throw err;
      await (isDir(target) ? this.session.rmdir(remoteTo) : this.session.unlink(remoteTo));
      await this.session.rename(remoteFrom, remoteTo);
    }
  }

  private async renameFailure(source: RemoteAttrs, to: string): Promise<ErrnoCode | undefined> {
    const target = await this.exists(to);
    if (!target) {
      const parent = await this.exists(parentOf(to));
      return parent && !isDir(parent) ? 'ENOTDIR' : undefined;
    }
    if (isDir(source) && !isDir(target)) return 'ENOTDIR';
    if (!isDir(source) && isDir(target)) return 'EISDIR';
    if (isDir(target)) return (await this.session.readdir(this.remote(to))).length > 0 ? 'ENOTEMPTY' : undefined;
    return undefined;
  }

  symlink(parentIno: number, name: string, target: string): Promise<Entry> {
    return this.run('symlink', name, async () => {
      const path = this.child(parentIno, name, 'symlink');
      this.writable('symlink', path);
      const attrs = await this.session.symlink(target, this.remote(path)).catch((err: unknown) =>
        this.diagnose(err, 'symlink', path, async () => ((await this.exists(path)) ? 'EEXIST' : undefined)),
      );
      this.cache.added(path, attrs);
      const entry = this.entryFor(path, attrs);
      this.inodes.get(entry.ino)!.link = { attrs, target };
      return entry;
    });
  }

  /**
   * A symlink's target is answered from memory while the attributes it was
   * read under are the ones cached (`ls -l` and every path resolution through
   * a link read it again): a link is replaced, never changed in place, so its
   * target is as old as the attributes a stat shows, never older.
   */
  readlink(ino: number): Promise<string> {
    return this.run('readlink', `#${ino}`, async () => {
      const node = this.liveNode(ino, 'readlink');
      const attrs = this.cache.getAttrs(node.path);
      if (attrs && node.link?.attrs === attrs) return node.link.target;
      const target = await this.session.readlink(this.remote(node.path)).catch((err: unknown) =>
        this.diagnose(err, 'readlink', node.path, async () => {
          const found = await this.exists(node.path);
          return found && (found.mode & S_IFMT) !== S_IFLNK ? 'EINVAL' : undefined;
        }),
      );
      if (attrs) node.link = { attrs, target };
      return target;
    });
  }

  link(ino: number, newParentIno: number, newName: string): Promise<Entry> {
    return this.run('link', newName, async () => {
      const node = this.liveNode(ino, 'link');
      const path = this.child(newParentIno, newName, 'link');
      this.writable('link', path);
      if (!this.session.extensions.has('hardlink@openssh.com')) {
        throw new FsError('EPERM', 'link', path, 'the server does not offer hardlink@openssh.com');
      }
      const attrs = await this.session.hardlink(this.remote(node.path), this.remote(path)).catch((err: unknown) =>
        this.diagnose(err, 'link', path, async () => {
          if (await this.exists(path)) return 'EEXIST';
          const source = await this.exists(node.path);
          return source && isDir(source) ? 'EPERM' : undefined;
        }),
      );
      // Both names now share one remote file; its link count changed, which
      // SFTP does not show, so the source's cached attributes still hold (and
      // the kernel's time update after the link finds them).
      this.cache.added(path, attrs);
      return this.entryFor(path, attrs);
    });
  }

  statfs(): Promise<Statfs> {
    return this.run('statfs', '', async () => {
      if (this.session.extensions.has('statvfs@openssh.com')) return this.session.statvfs(this.remote(''));
      // Without the extension, report a large, mostly free filesystem so tools don't refuse to write.
      const blocks = 2 ** 40 / 4096;
      return { bsize: 4096, frsize: 4096, blocks, bfree: blocks, bavail: blocks, files: 2 ** 32, ffree: 2 ** 32, favail: 2 ** 32, namemax: NAME_MAX };
    });
  }

  /**
   * Makes a fresh session carry on where the lost one stopped, before any
   * operation may use it: the root must still be there, and every open file
   * is reopened by its current path (unflushed writes stay buffered in their
   * handles and go out on the next flush). A file deleted while open cannot
   * be reopened; its handle fails from now on.
   */
  async reattach(session: SftpSession): Promise<void> {
    try {
      const root = await session.lstat(this.remote(''));
      if (!isDir(root)) throw new Error('it is no longer a directory');
    } catch (err) {
      throw Object.assign(new Error(`the remote path ${this.remote('')} is gone: ${(err as Error).message}`), { fatal: true });
    }
    this.cache.clear();
    this.listings.clear();
    for (const handle of this.handles.values()) {
      if (handle.closed) continue;
      if (handle.node.unlinked) {
        handle.lose('it was deleted while open, and a reconnect cannot reopen it');
        continue;
      }
      handle.ref.path = this.remote(handle.node.path);
      await RemoteLink.reopen(session, handle.ref, reopenFlags(handle.sftpFlags)).catch((err: Error) => handle.lose(`reopening after a reconnect failed: ${err.message}`));
    }
  }

  /**
   * One uncached round trip to the remote root, for the health monitor:
   * resolves with the latency in ms, rejects when the remote does not answer
   * within `timeoutMs`.
   */
  async probe(timeoutMs: number): Promise<number> {
    const started = performance.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.session.probe(this.remote('')),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new FsError('ETIMEDOUT', 'probe', '', `no answer within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
    return performance.now() - started;
  }

  /** Flushes and closes every open handle, e.g. before unmount; returns the errors it met. */
  async releaseAll(): Promise<FsError[]> {
    const errors: FsError[] = [];
    for (const fh of [...this.handles.keys()]) {
      await this.release(fh).catch((err: FsError) => errors.push(err));
    }
    return errors;
  }
}

/** Reopening must neither create, truncate nor fail on what the first open created. */
function reopenFlags(flags: number): number {
  return flags & ~(SftpOpen.creat | SftpOpen.trunc | SftpOpen.excl);
}

function largestPowerOfTwoAtMost(value: number): number {
  return 2 ** Math.floor(Math.log2(Math.max(4096, value)));
}

export { FileType };

/** Whether open(2) flags ask for writing. */
function opensForWriting(flags: number): boolean {
  const access = flags & OpenFlags.accmode;
  return access === OpenFlags.wronly || access === OpenFlags.rdwr;
}

function setsTimes(changes: AttrChanges): boolean {
  return changes.atimeMs !== undefined || changes.mtimeMs !== undefined;
}

/** Leaves size, mode and owner alone (times may or may not be set). */
function keepsSizeModeOwner(changes: AttrChanges): boolean {
  return changes.size === undefined && changes.mode === undefined && changes.uid === undefined && changes.gid === undefined;
}

/** The times a change leaves: the ones it sets, the current ones for the rest (needed only when it sets one). */
function timesAfter(changes: AttrChanges, current: RemoteAttrs | undefined): FileTimes {
  return { atimeMs: changes.atimeMs ?? current!.atimeMs, mtimeMs: changes.mtimeMs ?? current!.mtimeMs };
}
