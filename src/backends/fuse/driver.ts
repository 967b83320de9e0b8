import { type OwnerMapping, remoteGidFor, remoteUidFor, shownOwner } from '../owners.js';
import { constants } from 'node:os';
import { FsError, PresumedMissing } from '../../vfs/errors.js';
import { type Attr, FileType, OpenFlags, type RemoteFs } from '../../vfs/remote-fs.js';
import { DirListings, indexOf, offsetAfter } from './dir-listings.js';
import { type FuseAttr, type FuseDirEntry, type FuseEntry, type FuseRequest, type FuseSession, SetAttr } from './addon-types.js';

const EIO = constants.errno.EIO;
const ENOENT = constants.errno.ENOENT;
const EPERM = constants.errno.EPERM;
/** Linux renameat2 flags, as the kernel forwards them. */
const RENAME_NOREPLACE = 1;
const RENAME_EXCHANGE = 2;


export interface FuseDriverOptions {
  /** Seconds the kernel may trust names, attributes and "does not exist". */
  entryTimeout: number;
  attrTimeout: number;
  negativeTimeout: number;
  /** With the kernel's write-back cache the kernel resolves O_APPEND offsets itself. */
  writebackCache: boolean;
  /**
   * Whether a setattr of mtime alone with a handle is the kernel's own
   * write-back stamp (best effort) rather than a time someone set. Checked
   * on Linux; other kernels may send a user's futimens that way.
   */
  kernelStampsWithHandle?: boolean;
  owners: OwnerMapping;
  /** Called once per request with its outcome, when --debug is on. */
  log?: (line: string) => void;
  /** Called when something unexpected (a bug, not an FsError) happened. */
  onUnexpected?: (err: unknown, op: string) => void;
}

/** FUSE_DIRENT and FUSE_DIRENTPLUS record sizes (include/uapi/linux/fuse.h): 24-byte header, 128-byte entry_out, name, 8-byte alignment. */
function direntSize(name: string, plus: boolean): number {
  const raw = (plus ? 128 : 0) + 24 + Buffer.byteLength(name);
  return (raw + 7) & ~7;
}

/** The handler of each op, typed by its request. */
type Handlers = { [Op in FuseRequest['op']]: (request: FuseRequest & { op: Op }) => Promise<string> | void };

interface ListedEntry {
  name: string;
  attr: Attr;
  dot: boolean;
}

/**
 * Answers kernel requests from a RemoteFs. Runs on the JS main thread: the
 * addon queues each request here and every branch ends in exactly one reply
 * (forget excepted), errors included.
 */
export class FuseDriver {
  private readonly listings = new DirListings<ListedEntry>();

  constructor(
    private readonly fs: RemoteFs,
    private readonly session: FuseSession,
    private readonly options: FuseDriverOptions,
  ) {}

  readonly handle = (request: FuseRequest): void => {
    const log = this.options.log;
    if (log) {
      const started = process.hrtime.bigint();
      void Promise.resolve(this.run(request)).then((outcome) => this.trace(log, request, started, outcome ?? 'ok'));
      return;
    }
    void this.run(request);
  };

  /**
   * One small handler per op, each answering in one promise step where it
   * can: a single dispatcher for all ops was one large async function, and
   * every await in it saved and restored its whole frame.
   */
  private readonly handlers: Handlers = {
    read: (r) => this.answer(r, this.fs.read(r.fh, r.offset, r.size), (data) => this.session.replyBuf(r.id, data)),
    write: (r) => this.answer(r, this.fs.write(r.fh, r.offset, r.data), (written) => this.session.replyWrite(r.id, written)),
    lookup: (r) => this.answer(r, this.lookup(r.parent, r.name), (entry) => this.session.replyEntry(r.id, entry)),
    forget: (r) => {
      for (const item of r.items) this.fs.forget(item.ino, item.nlookup);
    },
    getattr: (r) => this.answer(r, this.fs.getattr(r.ino, r.fh), (attr) => this.replyAttr(r.id, attr)),
    setattr: (r) => this.answer(r, this.setattr(r), (attr) => this.replyAttr(r.id, attr)),
    readlink: (r) => this.answer(r, this.fs.readlink(r.ino), (target) => this.session.replyReadlink(r.id, target)),
    mknod: (r) => this.answer(r, this.mknod(r), (entry) => (entry ? this.session.replyEntry(r.id, entry) : this.session.replyErr(r.id, EPERM))),
    mkdir: (r) => this.answer(r, this.fs.mkdir(r.parent, r.name, r.mode), (made) => this.session.replyEntry(r.id, this.entry(made.attr))),
    unlink: (r) => this.answer(r, this.fs.unlink(r.parent, r.name), () => this.session.replyErr(r.id, 0)),
    rmdir: (r) => this.answer(r, this.fs.rmdir(r.parent, r.name), () => this.session.replyErr(r.id, 0)),
    symlink: (r) => this.answer(r, this.fs.symlink(r.parent, r.name, r.target), (made) => this.session.replyEntry(r.id, this.entry(made.attr))),
    rename: (r) =>
      this.answer(
        r,
        this.fs.rename(r.parent, r.name, r.newParent, r.newName, {
          noReplace: (r.flags & RENAME_NOREPLACE) !== 0,
          exchange: (r.flags & RENAME_EXCHANGE) !== 0,
        }),
        () => this.session.replyErr(r.id, 0),
      ),
    link: (r) => this.answer(r, this.fs.link(r.ino, r.newParent, r.newName), (made) => this.session.replyEntry(r.id, this.entry(made.attr))),
    open: (r) =>
      this.answer(r, this.fs.open(r.ino, this.openFlags(r.flags)), (opened) => this.session.replyOpen(r.id, { fh: opened.fh, keepCache: opened.unchanged })),
    create: (r) =>
      this.answer(r, this.fs.create(r.parent, r.name, r.mode, this.openFlags(r.flags)), (created) =>
        this.session.replyCreate(r.id, this.entry(created.entry.attr), { fh: created.fh }),
      ),
    flush: (r) => this.answer(r, this.fs.flush(r.fh), () => this.session.replyErr(r.id, 0)),
    release: (r) => {
      // The kernel ignores release's outcome (data errors were reported by
      // flush), so it need not wait for the remote close.
      this.session.replyErr(r.id, 0);
      this.fs.release(r.fh).catch((err: unknown) => this.options.log?.(`fuse release fh ${r.fh}: ${(err as Error).message}`));
    },
    fsync: (r) => this.answer(r, this.fs.fsync(r.fh), () => this.session.replyErr(r.id, 0)),
    // Only kernels that cannot do without opendir send it (the addon answers
    // the others ENOSYS, after which they open directories by themselves,
    // with the flags given here). The kernel may keep the listing in its
    // page cache across opens; it drops it when the directory changes
    // through the mount or its mtime changes when the attributes are refreshed.
    opendir: (r) => this.answer(r, this.fs.getattr(r.ino), () => this.session.replyOpen(r.id, { fh: 0, cacheDir: true, keepCache: true })),
    readdir: (r) => this.answer(r, this.readdir(r.id, r.ino, r.offset, r.size, r.plus), () => undefined),
    releasedir: (r) => this.session.replyErr(r.id, 0),
    fsyncdir: (r) => this.session.replyErr(r.id, 0),
    statfs: (r) => this.answer(r, this.fs.statfs(), (st) => this.session.replyStatfs(r.id, st)),
  };

  /** Starts the request's handler; what it gives settles with the outcome, for the debug log. */
  private run(r: FuseRequest): Promise<string> | void {
    try {
      return (this.handlers[r.op] as (request: FuseRequest) => Promise<string> | void)(r);
    } catch (err) {
      return Promise.resolve(this.fail(r, err));
    }
  }

  /** Replies with what `work` gives, or fails the request; a reply the addon refuses (a bug) fails it too. */
  private answer<T>(r: FuseRequest, work: Promise<T>, reply: (value: T) => void): Promise<string> {
    return work.then(
      (value) => {
        try {
          reply(value);
          return 'ok';
        } catch (err) {
          return this.fail(r, err);
        }
      },
      (err: unknown) => this.fail(r, err),
    );
  }

  /** Answers a failed request with its errno (EIO for anything but an FsError); returns the error's name. */
  private fail(request: FuseRequest, err: unknown): string {
    if (!(err instanceof FsError)) this.options.onUnexpected?.(err, request.op);
    if (request.op !== 'forget') this.session.replyErr(request.id, err instanceof FsError ? err.errno : EIO);
    return err instanceof FsError ? err.code : 'EIO';
  }

  private trace(log: (line: string) => void, request: FuseRequest, started: bigint, outcome: string): void {
    const micros = Number(process.hrtime.bigint() - started) / 1000;
    const { op, id, ...args } = request as FuseRequest & { data?: Buffer };
    const shown = 'data' in args ? { ...args, data: `${(args.data as Buffer).length} bytes` } : args;
    log(`fuse #${id} ${op} ${JSON.stringify(shown)} -> ${outcome} in ${micros.toFixed(0)} µs`);
  }

  private fuseAttr(attr: Attr): FuseAttr {
    const { uid, gid } = shownOwner(this.options.owners, attr.uid, attr.gid);
    return {
      ino: attr.ino,
      mode: attr.mode,
      nlink: attr.nlink,
      uid,
      gid,
      size: attr.size,
      blocks: attr.blocks,
      blksize: 128 * 1024,
      atimeMs: attr.atimeMs,
      mtimeMs: attr.mtimeMs,
      ctimeMs: attr.mtimeMs,
    };
  }

  private entry(attr: Attr): FuseEntry {
    return {
      ino: attr.ino,
      generation: 0,
      attr: this.fuseAttr(attr),
      entryTimeout: this.options.entryTimeout,
      attrTimeout: this.options.attrTimeout,
    };
  }

  private replyAttr(id: number, attr: Attr): void {
    this.session.replyAttr(id, this.fuseAttr(attr), this.options.attrTimeout);
  }

  private async lookup(parent: number, name: string): Promise<FuseEntry> {
    try {
      return this.entry((await this.fs.lookup(parent, name)).attr);
    } catch (err) {
      // A zero ino is a negative entry the kernel caches: `git status` and
      // compilers probe many names that do not exist. A presumed answer
      // goes back as a plain error, which the kernel does not keep.
      if (!(err instanceof FsError && err.errno === ENOENT) || err instanceof PresumedMissing || this.options.negativeTimeout <= 0) throw err;
      return { ino: 0, generation: 0, attr: emptyAttr(), entryTimeout: this.options.negativeTimeout, attrTimeout: 0 };
    }
  }

  private setattr(r: FuseRequest & { op: 'setattr' }): Promise<Attr> {
    // The kernel's write-back cache stamps mtime itself and sends the stamp
    // with the handle at close, before the flush; it keeps that stamp whatever
    // the server answers later. RemoteFs sends it right behind the data, so
    // the server keeps the time the mount shows.
    const kernelStamp = this.isWriteBackStamp(r);
    const now = Date.now();
    return this.fs.setattr(
      r.ino,
      {
        ...(r.toSet & SetAttr.mode ? { mode: r.mode } : {}),
        ...(r.toSet & SetAttr.uid ? { uid: remoteUidFor(this.options.owners, r.uid) } : {}),
        ...(r.toSet & SetAttr.gid ? { gid: remoteGidFor(this.options.owners, r.gid) } : {}),
        ...(r.toSet & SetAttr.size ? { size: r.size } : {}),
        ...(r.toSet & SetAttr.atimeNow ? { atimeMs: now } : r.toSet & SetAttr.atime ? { atimeMs: r.atimeMs } : {}),
        ...(r.toSet & SetAttr.mtimeNow ? { mtimeMs: now } : r.toSet & SetAttr.mtime ? { mtimeMs: r.mtimeMs } : {}),
        ...(kernelStamp ? { kernelStamp } : {}),
      },
      r.fh,
    );
  }

  /** Creates a regular file (the only kind SFTP can make this way); undefined for any other kind. */
  private async mknod(r: FuseRequest & { op: 'mknod' }): Promise<FuseEntry | undefined> {
    if ((r.mode & FileType.S_IFMT) !== FileType.S_IFREG) return undefined;
    const created = await this.fs.create(r.parent, r.name, r.mode, OpenFlags.wronly);
    await this.fs.release(created.fh);
    return this.entry(created.entry.attr);
  }

  /**
   * mtime (and ctime, which SFTP has no field for) alone, with a handle: on
   * Linux only the kernel's write-back cache sends that. A futimens or touch
   * reaches the filesystem without a handle, ftruncate and fchmod carry other fields.
   */
  private isWriteBackStamp(r: FuseRequest & { op: 'setattr' }): boolean {
    const timesOnly = SetAttr.mtime | SetAttr.ctime;
    return (
      this.options.writebackCache && this.options.kernelStampsWithHandle === true && r.fh !== undefined && (r.toSet & SetAttr.mtime) !== 0 && (r.toSet & ~timesOnly) === 0
    );
  }

  private openFlags(flags: number): number {
    return this.options.writebackCache ? flags & ~OpenFlags.append : flags;
  }

  /** The directory as listed now, with . and .. first. */
  private async list(ino: number): Promise<ListedEntry[]> {
    const [self, listing] = await Promise.all([this.fs.getattr(ino), this.fs.readdir(ino)]);
    return [{ name: '.', attr: self, dot: true }, { name: '..', attr: self, dot: true }, ...listing.map((entry) => ({ ...entry, dot: false }))];
  }

  /**
   * A listing starts at offset 0; later pages come from it, by index. Should
   * it be gone (pushed out by many newer ones), the reader goes on by index
   * in a new one.
   */
  private async readdir(id: number, ino: number, offset: number, size: number, plus: boolean): Promise<void> {
    let listing = offset === 0 ? undefined : this.listings.find(ino, offset);
    if (!listing) {
      const entries = await this.list(ino);
      listing = { number: this.listings.start(ino, entries), entries };
    }
    const { number, entries } = listing;
    const chosen: FuseDirEntry[] = [];
    let used = 0;
    for (let index = indexOf(offset); index < entries.length; index++) {
      const item = entries[index]!;
      const bytes = direntSize(item.name, plus);
      if (used + bytes > size) break;
      used += bytes;
      // Every entry a readdirplus reply carries counts as a lookup the kernel
      // will forget later, except . and .. which it never links.
      const entryIno = item.dot ? item.attr.ino : plus ? this.fs.remember(ino, item.name) : this.fs.peekIno(ino, item.name);
      const attr = { ...item.attr, ino: entryIno };
      chosen.push({
        name: item.name,
        nextOffset: offsetAfter(number, index),
        ino: entryIno,
        mode: attr.mode,
        ...(plus && !item.dot ? { entry: this.entry(attr) } : {}),
      });
    }
    const packed = this.session.replyDirectory(id, chosen, size, plus);
    // Should the addon pack fewer than computed, give back the lookups of the rest.
    if (plus) for (const extra of chosen.slice(packed)) if (extra.entry) this.fs.forget(extra.ino, 1);
  }
}

function emptyAttr(): FuseAttr {
  return { ino: 0, mode: 0, nlink: 0, uid: 0, gid: 0, size: 0, blocks: 0, blksize: 0, atimeMs: 0, mtimeMs: 0, ctimeMs: 0 };
}
