import { type OwnerMapping, remoteGidFor, remoteUidFor, shownOwner } from '../owners.js';
import { constants } from 'node:os';
import { FsError, PresumedMissing } from '../../vfs/errors.js';
import { type Attr, FileType, OpenFlags, type RemoteFs } from '../../vfs/remote-fs.js';
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
   * write-back stamp, to be answered without a request. Checked on Linux;
   * other kernels may send a user's futimens that way.
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

interface DirSnapshot {
  ino: number;
  entries: { name: string; attr: Attr; dot: boolean }[] | undefined;
}

/**
 * Answers kernel requests from a RemoteFs. Runs on the JS main thread: the
 * addon queues each request here and every branch ends in exactly one reply
 * (forget excepted), errors included.
 */
export class FuseDriver {
  private readonly dirs = new Map<number, DirSnapshot>();
  private nextDirHandle = 1;

  constructor(
    private readonly fs: RemoteFs,
    private readonly session: FuseSession,
    private readonly options: FuseDriverOptions,
  ) {}

  readonly handle = (request: FuseRequest): void => {
    if (this.options.log) {
      this.handleTraced(request);
      return;
    }
    // Reads and writes, the bulk of the requests, skip the dispatcher: it is
    // one large async function, slow to run and to optimize while the
    // process is young, and a random read's latency is mostly such overhead.
    // Each answers or fails in one promise step.
    if (request.op === 'read') this.read(request);
    else if (request.op === 'write') this.write(request);
    else this.dispatch(request).catch((err: unknown) => this.fail(request, err));
  };

  private handleTraced(request: FuseRequest): void {
    const started = process.hrtime.bigint();
    this.dispatch(request).then(
      () => this.trace(request, started, 'ok'),
      (err: unknown) => {
        this.trace(request, started, err instanceof FsError ? err.code : 'EIO');
        this.fail(request, err);
      },
    );
  }

  /** Answers a request that failed with its errno (EIO for anything but an FsError). */
  private fail(request: FuseRequest, err: unknown): void {
    if (!(err instanceof FsError)) this.options.onUnexpected?.(err, request.op);
    if (request.op !== 'forget') this.session.replyErr(request.id, err instanceof FsError ? err.errno : EIO);
  }

  private read(r: FuseRequest & { op: 'read' }): void {
    this.answer(r, this.fs.read(r.fh, r.offset, r.size), (data) => this.session.replyBuf(r.id, data));
  }

  private write(r: FuseRequest & { op: 'write' }): void {
    this.answer(r, this.fs.write(r.fh, r.offset, r.data), (written) => this.session.replyWrite(r.id, written));
  }

  /** Replies with what `work` gives, or fails the request; a reply the addon refuses (a bug) fails it too. */
  private answer<T>(r: FuseRequest, work: Promise<T>, reply: (value: T) => void): void {
    work.then(
      (value) => {
        try {
          reply(value);
        } catch (err) {
          this.fail(r, err);
        }
      },
      (err: unknown) => this.fail(r, err),
    );
  }

  private trace(request: FuseRequest, started: bigint, outcome: string): void {
    if (!this.options.log) return;
    const micros = Number(process.hrtime.bigint() - started) / 1000;
    const { op, id, ...args } = request as FuseRequest & { data?: Buffer };
    const shown = 'data' in args ? { ...args, data: `${(args.data as Buffer).length} bytes` } : args;
    this.options.log(`fuse #${id} ${op} ${JSON.stringify(shown)} -> ${outcome} in ${micros.toFixed(0)} µs`);
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

  private async dispatch(r: FuseRequest): Promise<void> {
    const { fs, session } = this;
    switch (r.op) {
      case 'lookup': {
        try {
          const found = await fs.lookup(r.parent, r.name);
          session.replyEntry(r.id, this.entry(found.attr));
        } catch (err) {
          // A zero ino is a negative entry the kernel caches: `git status` and
          // compilers probe many names that do not exist. A presumed answer
          // goes back as a plain error, which the kernel does not keep.
          if (!(err instanceof FsError && err.errno === ENOENT) || err instanceof PresumedMissing || this.options.negativeTimeout <= 0) throw err;
          session.replyEntry(r.id, { ino: 0, generation: 0, attr: emptyAttr(), entryTimeout: this.options.negativeTimeout, attrTimeout: 0 });
        }
        return;
      }
      case 'read':
        session.replyBuf(r.id, await fs.read(r.fh, r.offset, r.size));
        return;
      case 'write':
        session.replyWrite(r.id, await fs.write(r.fh, r.offset, r.data));
        return;
      case 'forget':
        for (const item of r.items) fs.forget(item.ino, item.nlookup);
        return;
      case 'getattr':
        session.replyAttr(r.id, this.fuseAttr(await fs.getattr(r.ino, r.fh)), this.options.attrTimeout);
        return;
      case 'setattr': {
        if (this.isWriteBackStamp(r)) {
          // The kernel's write-back cache stamps mtime itself after writes and
          // sends it with the handle at close. The server stamps the file when
          // the data lands (as with sshfs and NFS), so this costs no request;
          // the kernel keeps the time it chose until it refreshes attributes.
          const attr = await fs.getattr(r.ino, r.fh);
          session.replyAttr(r.id, this.fuseAttr({ ...attr, mtimeMs: r.mtimeMs }), this.options.attrTimeout);
          return;
        }
        const now = Date.now();
        const attr = await fs.setattr(
          r.ino,
          {
            ...(r.toSet & SetAttr.mode ? { mode: r.mode } : {}),
            ...(r.toSet & SetAttr.uid ? { uid: remoteUidFor(this.options.owners, r.uid) } : {}),
            ...(r.toSet & SetAttr.gid ? { gid: remoteGidFor(this.options.owners, r.gid) } : {}),
            ...(r.toSet & SetAttr.size ? { size: r.size } : {}),
            ...(r.toSet & SetAttr.atimeNow ? { atimeMs: now } : r.toSet & SetAttr.atime ? { atimeMs: r.atimeMs } : {}),
            ...(r.toSet & SetAttr.mtimeNow ? { mtimeMs: now } : r.toSet & SetAttr.mtime ? { mtimeMs: r.mtimeMs } : {}),
          },
          r.fh,
        );
        session.replyAttr(r.id, this.fuseAttr(attr), this.options.attrTimeout);
        return;
      }
      case 'readlink':
        session.replyReadlink(r.id, await fs.readlink(r.ino));
        return;
      case 'mknod': {
        if ((r.mode & FileType.S_IFMT) !== FileType.S_IFREG) {
          session.replyErr(r.id, EPERM);
          return;
        }
        const created = await fs.create(r.parent, r.name, r.mode, OpenFlags.wronly);
        await fs.release(created.fh);
        session.replyEntry(r.id, this.entry(created.entry.attr));
        return;
      }
      case 'mkdir':
        session.replyEntry(r.id, this.entry((await fs.mkdir(r.parent, r.name, r.mode)).attr));
        return;
      case 'unlink':
        await fs.unlink(r.parent, r.name);
        session.replyErr(r.id, 0);
        return;
      case 'rmdir':
        await fs.rmdir(r.parent, r.name);
        session.replyErr(r.id, 0);
        return;
      case 'symlink':
        session.replyEntry(r.id, this.entry((await fs.symlink(r.parent, r.name, r.target)).attr));
        return;
      case 'rename':
        await fs.rename(r.parent, r.name, r.newParent, r.newName, {
          noReplace: (r.flags & RENAME_NOREPLACE) !== 0,
          exchange: (r.flags & RENAME_EXCHANGE) !== 0,
        });
        session.replyErr(r.id, 0);
        return;
      case 'link':
        session.replyEntry(r.id, this.entry((await fs.link(r.ino, r.newParent, r.newName)).attr));
        return;
      case 'open': {
        const opened = await fs.open(r.ino, this.openFlags(r.flags));
        session.replyOpen(r.id, { fh: opened.fh, keepCache: opened.unchanged });
        return;
      }
      case 'create': {
        const created = await fs.create(r.parent, r.name, r.mode, this.openFlags(r.flags));
        session.replyCreate(r.id, this.entry(created.entry.attr), { fh: created.fh });
        return;
      }
      case 'flush':
        await fs.flush(r.fh);
        session.replyErr(r.id, 0);
        return;
      case 'release':
        // The kernel ignores release's outcome (data errors were reported by
        // flush), so it need not wait for the remote close.
        session.replyErr(r.id, 0);
        await fs.release(r.fh).catch((err: unknown) => this.options.log?.(`fuse release fh ${r.fh}: ${(err as Error).message}`));
        return;
      case 'fsync':
        await fs.fsync(r.fh);
        session.replyErr(r.id, 0);
        return;
      case 'opendir':
        await this.fs.getattr(r.ino);
        // The kernel may keep the listing in its page cache across opendirs;
        // it drops it when the directory changes through the mount or its
        // mtime changes when the attributes are refreshed.
        session.replyOpen(r.id, { fh: this.opendir(r.ino), cacheDir: true, keepCache: true });
        return;
      case 'readdir':
        await this.readdir(r.id, r.fh, r.ino, r.offset, r.size, r.plus);
        return;
      case 'releasedir':
        this.dirs.delete(r.fh);
        session.replyErr(r.id, 0);
        return;
      case 'fsyncdir':
      case 'access':
        // The server enforces permissions on every operation anyway.
        session.replyErr(r.id, 0);
        return;
      case 'statfs': {
        const st = await fs.statfs();
        session.replyStatfs(r.id, st);
        return;
      }
    }
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

  /** A directory is listed at its first readdir; later pages come from that snapshot, by index. */
  private opendir(ino: number): number {
    const fh = this.nextDirHandle++;
    this.dirs.set(fh, { ino, entries: undefined });
    return fh;
  }

  private async snapshot(dir: DirSnapshot): Promise<DirSnapshot['entries'] & object> {
    if (dir.entries) return dir.entries;
    const [self, listing] = await Promise.all([this.fs.getattr(dir.ino), this.fs.readdir(dir.ino)]);
    dir.entries = [
      { name: '.', attr: self, dot: true },
      { name: '..', attr: self, dot: true },
      ...listing.map((entry) => ({ ...entry, dot: false })),
    ];
    return dir.entries;
  }

  private async readdir(id: number, fh: number, ino: number, offset: number, size: number, plus: boolean): Promise<void> {
    const dir = this.dirs.get(fh);
    if (!dir) {
      this.session.replyErr(id, constants.errno.EBADF);
      return;
    }
    const entries = await this.snapshot(dir);
    const chosen: FuseDirEntry[] = [];
    let used = 0;
    for (let index = offset; index < entries.length; index++) {
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
        nextOffset: index + 1,
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
