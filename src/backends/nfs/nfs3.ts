import { type OwnerMapping, remoteGidFor, remoteUidFor, shownOwner } from '../owners.js';
import { randomBytes } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { FsError } from '../../vfs/errors.js';
import { childPath, parentOf } from '../../vfs/paths.js';
import { isDir, isRegular } from '../../vfs/file-type.js';
import { type Attr, type AttrChanges, FileType, OpenFlags, ROOT_INO, type RemoteFs } from '../../vfs/remote-fs.js';
import type { HandleTable } from './handles.js';
import { NFS3_FHSIZE } from './handles.js';
import {
  FATTR3_BYTES,
  type NfsAttr,
  readSattr3,
  readTime,
  type Sattr3,
  sattrChanges,
  writeFattr,
  writePostOpAttr,
  writePostOpFh,
  writeTime,
  writeWcc,
} from './nfs3-xdr.js';
import type { OpenFiles } from './open-files.js';
import type { CallContext, RpcProgram } from './server.js';
import { Nfs3Error, Nfs3Status, type Nfs3StatusCode, statusOf } from './status-map.js';
import { pad4, XdrError, type XdrReader, type XdrWriter } from './xdr.js';

export const NFS_PROGRAM = 100003;
export const NFS_V3 = 3;

export const Nfs3Proc = {
  null: 0,
  getattr: 1,
  setattr: 2,
  lookup: 3,
  access: 4,
  readlink: 5,
  read: 6,
  write: 7,
  create: 8,
  mkdir: 9,
  symlink: 10,
  mknod: 11,
  remove: 12,
  rmdir: 13,
  rename: 14,
  link: 15,
  readdir: 16,
  readdirplus: 17,
  fsstat: 18,
  fsinfo: 19,
  pathconf: 20,
  commit: 21,
} as const;

const PROC_NAMES = Object.fromEntries(Object.entries(Nfs3Proc).map(([name, proc]) => [proc, name.toUpperCase()]));

/** ACCESS3_* bits. */
export const Access3 = { read: 0x1, lookup: 0x2, modify: 0x4, extend: 0x8, delete: 0x10, execute: 0x20 } as const;
/** stable_how. */
export const StableHow = { unstable: 0, dataSync: 1, fileSync: 2 } as const;
/** createmode3. */
export const CreateMode = { unchecked: 0, guarded: 1, exclusive: 2 } as const;
/** FSINFO properties. */
const FSF3 = { link: 0x1, symlink: 0x2, homogeneous: 0x8, canSetTime: 0x10 } as const;

/** filename3 and nfspath3 are unbounded strings in XDR; these caps only bound memory, RemoteFs checks NAME_MAX. */
const MAX_NAME_BYTES = 4096;
const MAX_PATH_BYTES = 4096;

export type { OwnerMapping };

export interface Nfs3Options {
  owners: OwnerMapping;
  readonly: boolean;
  /** Serve every local user; otherwise only the mounting user and root, as FUSE does without allow_other. */
  allowOther: boolean;
  /** Largest READ and WRITE (FSINFO rtmax/wtmax). */
  maxIo: number;
  /** Something unexpected (a bug, not a filesystem error) happened. */
  onUnexpected?: (err: unknown, what: string) => void;
}

interface DirSnapshot {
  ino: number;
  verifier: bigint;
  entries: { name: string; attr: Attr | undefined }[];
}

/** An entry3 in READDIR: value-follows flag, fileid, name, cookie. */
const entrySize = (name: string) => 4 + 8 + 4 + pad4(Buffer.byteLength(name)) + 8;
/** An entryplus3 adds post_op_attr (with attributes) and post_op_fh3 (with a handle). */
const entryPlusSize = (name: string, fhBytes: number) => entrySize(name) + 4 + FATTR3_BYTES + 4 + 4 + pad4(fhBytes);
/** status, post_op_attr with attributes, cookieverf3, the final value-follows flag and eof. */
const READDIR_OVERHEAD = 4 + 4 + FATTR3_BYTES + 8 + 4 + 4;

/** An ino-addressed operation that finds its file gone has a stale handle, as NFS clients expect. */
function staleIfGone(err: unknown): never {
  if (err instanceof FsError && err.code === 'ENOENT') throw new Nfs3Error(Nfs3Status.stale, err.message);
  throw err;
}

/**
 * The NFSv3 procedures (RFC 1813) over a RemoteFs. Each procedure decodes
 * all of its arguments first (a decode failure is GARBAGE_ARGS, before any
 * side effect), then does its work, then encodes either its success or its
 * failure result; nothing is written to the reply before the work is done.
 * Runs on the JS main thread.
 */
export class Nfs3Program implements RpcProgram {
  readonly prog = NFS_PROGRAM;
  readonly name = 'NFS3';
  readonly lowVersion = NFS_V3;
  readonly highVersion = NFS_V3;
  readonly reservedPort = true;
  /** fsid: one value for the whole export, so clients never see a mount point inside it. */
  readonly fsid: bigint;
  private verifier = randomBytes(8);
  /** Directories changed here: their mtime as clients see it, until the remote's catches up. */
  private readonly touched = new Map<number, number>();
  private readonly snapshots = new LRUCache<string, DirSnapshot>({ max: 256, ttl: 60_000 });
  private nextVerifier = BigInt(Date.now()) << 16n;

  constructor(
    private readonly fs: RemoteFs,
    private readonly handles: HandleTable,
    private readonly files: OpenFiles,
    private readonly options: Nfs3Options,
  ) {
    this.fsid = handles.instance.readBigUInt64BE(0);
  }

  /** The write verifier: it changes whenever acknowledged but uncommitted writes may have been lost. */
  get writeVerifier(): Buffer {
    return this.verifier;
  }

  lostWrites(): void {
    this.verifier = randomBytes(8);
  }

  hasProcedure(vers: number, proc: number): boolean {
    return vers === NFS_V3 && Number.isInteger(proc) && proc >= 0 && proc <= Nfs3Proc.commit;
  }

  procedureName(proc: number): string {
    return PROC_NAMES[proc] ?? `proc ${proc}`;
  }

  async call(context: CallContext, args: XdrReader, out: XdrWriter): Promise<void> {
    switch (context.proc) {
      case Nfs3Proc.null:
        return;
      case Nfs3Proc.getattr:
        return this.getattr(context, args, out);
      case Nfs3Proc.setattr:
        return this.setattr(context, args, out);
      case Nfs3Proc.lookup:
        return this.lookup(context, args, out);
      case Nfs3Proc.access:
        return this.access(context, args, out);
      case Nfs3Proc.readlink:
        return this.readlink(context, args, out);
      case Nfs3Proc.read:
        return this.read(context, args, out);
      case Nfs3Proc.write:
        return this.write(context, args, out);
      case Nfs3Proc.create:
        return this.create(context, args, out);
      case Nfs3Proc.mkdir:
        return this.mkdir(context, args, out);
      case Nfs3Proc.symlink:
        return this.symlink(context, args, out);
      case Nfs3Proc.mknod:
        return this.mknod(context, args, out);
      case Nfs3Proc.remove:
        return this.remove(context, args, out, 'remove');
      case Nfs3Proc.rmdir:
        return this.remove(context, args, out, 'rmdir');
      case Nfs3Proc.rename:
        return this.rename(context, args, out);
      case Nfs3Proc.link:
        return this.link(context, args, out);
      case Nfs3Proc.readdir:
        return this.readdir(context, args, out, false);
      case Nfs3Proc.readdirplus:
        return this.readdir(context, args, out, true);
      case Nfs3Proc.fsstat:
        return this.fsstat(context, args, out);
      case Nfs3Proc.fsinfo:
        return this.fsinfo(context, args, out);
      case Nfs3Proc.pathconf:
        return this.pathconf(context, args, out);
      case Nfs3Proc.commit:
        return this.commit(context, args, out);
      default:
        throw new Error(`NFS3 procedure ${context.proc} has no handler`);
    }
  }

  private readFh(args: XdrReader, type = 'nfs_fh3'): Buffer {
    return args.opaque(NFS3_FHSIZE, type);
  }

  /** diropargs3 { nfs_fh3 dir; filename3 name; } */
  private readDirOp(args: XdrReader): { dir: Buffer; name: string } {
    return { dir: this.readFh(args, 'diropargs3 dir'), name: args.string(MAX_NAME_BYTES, 'filename3') };
  }

  /** Only the mounting user and root may use the export, unless allow_other. */
  private checkCaller(context: CallContext): void {
    if (this.options.allowOther) return;
    const uid = context.auth?.uid;
    if (uid === 0 || uid === this.options.owners.localUid) return;
    throw new Nfs3Error(Nfs3Status.acces, `uid ${uid ?? 'none'} may not use this export (only uid ${this.options.owners.localUid} and root)`);
  }

  private status(err: unknown, what: string): Nfs3StatusCode {
    const status = statusOf(err);
    if (status === Nfs3Status.serverfault) this.options.onUnexpected?.(err, `NFS3 ${what}`);
    return status;
  }

  private nfsAttr(attr: Attr): NfsAttr {
    const { uid, gid } = shownOwner(this.options.owners, attr.uid, attr.gid);
    const mtimeMs = this.displayedMtime(attr.ino, attr.mtimeMs);
    return {
      mode: attr.mode,
      nlink: attr.nlink,
      uid,
      gid,
      size: attr.size,
      used: attr.blocks * 512,
      fileid: attr.ino,
      atimeMs: attr.atimeMs,
      mtimeMs,
      ctimeMs: mtimeMs,
    };
  }

  /**
   * SFTP reports whole seconds and RemoteFs caches a directory's attributes,
   * so a directory changed here would look unchanged to the client, which
   * then trusts its cached listing. The mtime clients see is the later of
   * the remote's and the moment of our last change: it never goes backwards.
   */
  private displayedMtime(ino: number, remoteMs: number): number {
    const touched = this.touched.get(ino);
    if (touched === undefined) return remoteMs;
    if (remoteMs >= touched) {
      this.touched.delete(ino);
      return remoteMs;
    }
    return touched;
  }

  private touch(dirIno: number): void {
    const previous = this.touched.get(dirIno) ?? 0;
    this.touched.set(dirIno, Math.max(Date.now(), previous + 1));
  }

  /**
   * The reply of a call on one object that carries its post_op_attr: the
   * status, the object's attributes (on failure too, when still known), then
   * on success the body. `work` gathers everything first, so a failure never
   * leaves half a body written.
   */
  private async answerOnObject(
    context: CallContext,
    fh: Buffer,
    out: XdrWriter,
    proc: string,
    work: (ino: number) => Promise<{ attr: NfsAttr | undefined; body: () => void }>,
  ): Promise<void> {
    let ino: number | undefined;
    try {
      this.checkCaller(context);
      ino = this.handles.resolve(fh);
      const { attr, body } = await work(ino);
      out.u32(Nfs3Status.ok);
      writePostOpAttr(out, attr, this.fsid);
      body();
    } catch (err) {
      out.u32(this.status(err, proc));
      writePostOpAttr(out, await this.attrsOf(ino), this.fsid);
    }
  }

  /** Attributes for a post-op or wcc slot: best effort, a failure just leaves the slot empty. */
  private async attrsOf(ino: number | undefined): Promise<NfsAttr | undefined> {
    if (ino === undefined) return undefined;
    try {
      return this.nfsAttr(await this.fs.getattr(ino));
    } catch {
      return undefined;
    }
  }

  private async getattrOrStale(ino: number): Promise<Attr> {
    return this.fs.getattr(ino).catch(staleIfGone);
  }

  private dirPath(ino: number): string {
    const node = this.fs.inodes.get(ino);
    if (!node) throw new Nfs3Error(Nfs3Status.stale, `inode ${ino} is gone`);
    return node.path;
  }

  /** The handle of an ino whose handle was resolved or handed out before: no lookup is taken. */
  private handleOf(ino: number): Buffer {
    return this.handles.encodeHeld(ino);
  }

  /** GETATTR3args { nfs_fh3 object; } → status; OK: fattr3 */
  private async getattr(context: CallContext, args: XdrReader, out: XdrWriter): Promise<void> {
    const fh = this.readFh(args);
    try {
      this.checkCaller(context);
      const attr = this.nfsAttr(await this.getattrOrStale(this.handles.resolve(fh)));
      out.u32(Nfs3Status.ok);
      writeFattr(out, attr, this.fsid);
    } catch (err) {
      out.u32(this.status(err, 'GETATTR'));
    }
  }

  /**
   * SETATTR3args { nfs_fh3 object; sattr3 new_attributes; sattrguard3 guard; }
   * with sattrguard3 `union switch (bool check) { case TRUE: nfstime3 obj_ctime; }`
   * → status; wcc_data obj_wcc (success and failure alike)
   */
  private async setattr(context: CallContext, args: XdrReader, out: XdrWriter): Promise<void> {
    const fh = this.readFh(args);
    const sattr = readSattr3(args);
    const guard = args.bool('sattrguard3') ? readTime(args, 'obj_ctime') : undefined;
    let before: NfsAttr | undefined;
    let ino: number | undefined;
    try {
      this.checkCaller(context);
      ino = this.handles.resolve(fh);
      before = this.nfsAttr(await this.getattrOrStale(ino));
      // The guard compares ctime as it went over the wire, in whole milliseconds.
      if (guard !== undefined && guard !== Math.floor(before.ctimeMs)) {
        throw new Nfs3Error(Nfs3Status.notSync, `ctime guard ${guard} does not match ${before.ctimeMs}`);
      }
      const changes = this.changesFor(sattr, before);
      let after = before;
      if (Object.keys(changes).length > 0) {
        const fresh = await this.fs.setattr(ino, changes).catch(staleIfGone);
        // An mtime set explicitly (touch -d, tar, cp -p) is shown as set, even an older one.
        if (changes.mtimeMs !== undefined) this.touched.delete(ino);
        after = this.nfsAttr(fresh);
      }
      out.u32(Nfs3Status.ok);
      writeWcc(out, before, after, this.fsid);
    } catch (err) {
      out.u32(this.status(err, 'SETATTR'));
      writeWcc(out, before, await this.attrsOf(ino), this.fsid);
    }
  }

  /**
   * The RemoteFs changes for a sattr3. Owner ids come back through the same
   * mapping as they went out; setting the owner a file already shows is a no-op
   * (cp -p and tar do that, and the remote would refuse a chown).
   */
  private changesFor(sattr: Sattr3, current: NfsAttr): AttrChanges {
    if (sattr.size !== undefined && sattr.size > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw new Nfs3Error(Nfs3Status.fbig, `size ${sattr.size} is beyond what tmount can address`);
    }
    const changes = sattrChanges(sattr, Date.now());
    const owners = this.options.owners;
    if (changes.uid !== undefined) {
      if (changes.uid === current.uid) delete changes.uid;
      else changes.uid = remoteUidFor(owners, changes.uid);
    }
    if (changes.gid !== undefined) {
      if (changes.gid === current.gid) delete changes.gid;
      else changes.gid = remoteGidFor(owners, changes.gid);
    }
    return changes;
  }

  /**
   * LOOKUP3args { diropargs3 what; }
   * → status; OK: nfs_fh3 object; post_op_attr obj_attributes; post_op_attr dir_attributes
   *           FAIL: post_op_attr dir_attributes
   */
  private async lookup(context: CallContext, args: XdrReader, out: XdrWriter): Promise<void> {
    const { dir, name } = this.readDirOp(args);
    let dirIno: number | undefined;
    try {
      this.checkCaller(context);
      dirIno = this.handles.resolve(dir);
      const found = await this.lookupName(dirIno, name);
      const dirAttr = await this.attrsOf(dirIno);
      out.u32(Nfs3Status.ok).opaque(found.fh);
      writePostOpAttr(out, this.nfsAttr(found.attr), this.fsid);
      writePostOpAttr(out, dirAttr, this.fsid);
    } catch (err) {
      out.u32(this.status(err, 'LOOKUP'));
      writePostOpAttr(out, await this.attrsOf(dirIno), this.fsid);
    }
  }

  /** A name in a directory, "." and ".." included; ".." of the export root is the root: the export is all a client can reach. */
  private async lookupName(dirIno: number, name: string): Promise<{ fh: Buffer; attr: Attr }> {
    if (name === '.') {
      const attr = await this.getattrOrStale(dirIno);
      if (!isDir(attr)) throw new Nfs3Error(Nfs3Status.notdir, `lookup of '.' in inode ${dirIno}, which is not a directory`);
      return { fh: this.handleOf(dirIno), attr };
    }
    if (name === '..') {
      const attr = await this.getattrOrStale(dirIno);
      if (!isDir(attr)) throw new Nfs3Error(Nfs3Status.notdir, `lookup of '..' in inode ${dirIno}, which is not a directory`);
      if (dirIno === ROOT_INO) return { fh: this.handleOf(ROOT_INO), attr };
      return this.walk(parentOf(this.dirPath(dirIno)));
    }
    const entry = await this.fs.lookup(dirIno, name);
    return { fh: this.handles.handOut(entry.ino), attr: entry.attr };
  }

  /** Looks a mount-relative path up from the root, one component at a time. */
  async walk(path: string): Promise<{ fh: Buffer; attr: Attr }> {
    let ino = ROOT_INO;
    let found = { fh: this.handleOf(ROOT_INO), attr: await this.fs.getattr(ROOT_INO) };
    for (const part of path.split('/').filter(Boolean)) {
      if (!isDir(found.attr)) throw new Nfs3Error(Nfs3Status.notdir, `'${path}': a component before '${part}' is not a directory`);
      const entry = await this.fs.lookup(ino, part);
      ino = entry.ino;
      found = { fh: this.handles.handOut(entry.ino), attr: entry.attr };
    }
    return found;
  }

  /** ACCESS3args { nfs_fh3 object; uint32 access; } → status; post_op_attr obj_attributes; OK: uint32 access */
  private async access(context: CallContext, args: XdrReader, out: XdrWriter): Promise<void> {
    const fh = this.readFh(args);
    const requested = args.u32('access');
    await this.answerOnObject(context, fh, out, 'ACCESS', async (ino) => {
      const attr = this.nfsAttr(await this.getattrOrStale(ino));
      const granted = this.granted(attr, context);
      return { attr, body: () => out.u32(requested & granted) };
    });
  }

  /**
   * What the mode bits allow the caller, judged on the owner as shown (the
   * remote enforces its own permissions on every operation anyway; this
   * answer is what clients cache to decide open(2) and exec).
   */
  private granted(attr: NfsAttr, context: CallContext): number {
    const auth = context.auth;
    const mode = attr.mode;
    const dir = (mode & FileType.S_IFMT) === FileType.S_IFDIR;
    let bits: number;
    if (auth?.uid === 0) bits = 0o6 | (dir || (mode & 0o111) !== 0 ? 0o1 : 0);
    else if (auth && auth.uid === attr.uid) bits = (mode >> 6) & 7;
    else if (auth && (auth.gid === attr.gid || auth.gids.includes(attr.gid))) bits = (mode >> 3) & 7;
    else bits = mode & 7;
    let granted = 0;
    if (bits & 0o4) granted |= Access3.read;
    if (bits & 0o2) granted |= dir ? Access3.modify | Access3.extend | Access3.delete : Access3.modify | Access3.extend;
    if (bits & 0o1) granted |= dir ? Access3.lookup : Access3.execute;
    if (this.options.readonly) granted &= ~(Access3.modify | Access3.extend | Access3.delete);
    return granted;
  }

  /** READLINK3args { nfs_fh3 symlink; } → status; post_op_attr symlink_attributes; OK: nfspath3 data */
  private async readlink(context: CallContext, args: XdrReader, out: XdrWriter): Promise<void> {
    await this.answerOnObject(context, this.readFh(args), out, 'READLINK', async (ino) => {
      const target = await this.fs.readlink(ino).catch(staleIfGone);
      return { attr: await this.attrsOf(ino), body: () => out.string(target) };
    });
  }

  /**
   * READ3args { nfs_fh3 file; offset3 offset; count3 count; }
   * → status; post_op_attr file_attributes; OK: count3 count; bool eof; opaque data<>
   */
  private async read(context: CallContext, args: XdrReader, out: XdrWriter): Promise<void> {
    const fh = this.readFh(args);
    const offset = args.u64('offset3');
    const count = Math.min(args.u32('count3'), this.options.maxIo);
    let ino: number | undefined;
    try {
      this.checkCaller(context);
      ino = this.handles.resolve(fh);
      const before = await this.getattrOrStale(ino);
      this.checkRegular(before, 'READ');
      let data: Buffer = Buffer.alloc(0);
      let eof = offset >= BigInt(before.size);
      let attr = before;
      if (offset < BigInt(Number.MAX_SAFE_INTEGER) && count > 0) {
        const at = Number(offset);
        const file = ino;
        ({ data, attr } = await this.files.use(file, false, async (handle) => {
          const read = await this.fs.read(handle, at, count);
          return { data: read, attr: await this.fs.getattr(file, handle) };
        }).catch(staleIfGone));
        eof = data.length < count || at + data.length >= attr.size;
      }
      out.u32(Nfs3Status.ok);
      writePostOpAttr(out, this.nfsAttr(attr), this.fsid);
      out.u32(data.length).bool(eof).opaque(data);
    } catch (err) {
      out.u32(this.status(err, 'READ'));
      writePostOpAttr(out, await this.attrsOf(ino), this.fsid);
    }
  }

  private checkRegular(attr: Attr, op: string): void {
    if (isDir(attr)) throw new Nfs3Error(Nfs3Status.isdir, `${op} of a directory`);
    if (!isRegular(attr)) throw new Nfs3Error(Nfs3Status.inval, `${op} of something that is not a regular file`);
  }

  /**
   * WRITE3args { nfs_fh3 file; offset3 offset; count3 count; stable_how stable; opaque data<>; }
   * → status; wcc_data file_wcc; OK: count3 count; stable_how committed; writeverf3 verf
   *
   * UNSTABLE data is acknowledged once RemoteFs has buffered it and reaches
   * the remote by COMMIT at the latest; FILE_SYNC and DATA_SYNC are written
   * and fsync'ed before the reply.
   */
  private async write(context: CallContext, args: XdrReader, out: XdrWriter): Promise<void> {
    const fh = this.readFh(args);
    const offset = args.u64('offset3');
    const count = args.u32('count3');
    const stable = args.u32('stable_how');
    if (stable > StableHow.fileSync) throw new XdrError('stable_how', 4, 'invalid', `${stable} is not UNSTABLE, DATA_SYNC or FILE_SYNC`);
    const data = args.opaque(Number.MAX_SAFE_INTEGER, 'WRITE data');
    let before: NfsAttr | undefined;
    let ino: number | undefined;
    try {
      this.checkCaller(context);
      ino = this.handles.resolve(fh);
      if (data.length < count) throw new Nfs3Error(Nfs3Status.inval, `WRITE of ${count} bytes carries only ${data.length}`);
      const length = Math.min(count, this.options.maxIo);
      if (offset + BigInt(length) > BigInt(Number.MAX_SAFE_INTEGER)) throw new Nfs3Error(Nfs3Status.fbig, `WRITE at offset ${offset}`);
      const current = await this.getattrOrStale(ino);
      this.checkRegular(current, 'WRITE');
      before = this.nfsAttr(current);
      const at = Number(offset);
      const sync = stable !== StableHow.unstable;
      await this.files
        .use(ino, true, async (handle) => {
          await this.fs.write(handle, at, data.subarray(0, length));
          if (sync) await this.fs.fsync(handle);
        })
        .catch(staleIfGone);
      const after = await this.attrsOf(ino);
      out.u32(Nfs3Status.ok);
      writeWcc(out, before, after, this.fsid);
      out.u32(length).u32(sync ? StableHow.fileSync : StableHow.unstable).fixed(this.verifier);
    } catch (err) {
      out.u32(this.status(err, 'WRITE'));
      writeWcc(out, before, await this.attrsOf(ino), this.fsid);
    }
  }

  /** The result every creating procedure shares: OK: post_op_fh3 obj; post_op_attr obj_attributes; wcc_data dir_wcc. FAIL: wcc_data dir_wcc */
  private async created(
    context: CallContext,
    out: XdrWriter,
    what: string,
    dir: Buffer,
    work: (dirIno: number) => Promise<{ fh: Buffer; attr: Attr }>,
  ): Promise<void> {
    let dirIno: number | undefined;
    let before: NfsAttr | undefined;
    try {
      this.checkCaller(context);
      dirIno = this.handles.resolve(dir);
      before = await this.attrsOf(dirIno);
      const made = await work(dirIno);
      this.touch(dirIno);
      const after = await this.attrsOf(dirIno);
      out.u32(Nfs3Status.ok);
      writePostOpFh(out, made.fh);
      writePostOpAttr(out, this.nfsAttr(made.attr), this.fsid);
      writeWcc(out, before, after, this.fsid);
    } catch (err) {
      out.u32(this.status(err, what));
      writeWcc(out, before, await this.attrsOf(dirIno), this.fsid);
    }
  }

  /**
   * CREATE3args { diropargs3 where; createhow3 how; } with
   *   createhow3: union switch (createmode3 mode) {
   *     case UNCHECKED: case GUARDED: sattr3 obj_attributes;
   *     case EXCLUSIVE: createverf3 verf;   // 8 bytes
   *   }
   *
   * EXCLUSIVE keeps the verifier in the new file's atime and mtime (whole
   * seconds, all SFTP can store), so a retransmitted CREATE finds its own
   * file and succeeds; the client then sets the real attributes with SETATTR.
   */
  private async create(context: CallContext, args: XdrReader, out: XdrWriter): Promise<void> {
    const { dir, name } = this.readDirOp(args);
    const mode = args.u32('createmode3');
    let sattr: Sattr3 = {};
    let verf: Buffer | undefined;
    if (mode === CreateMode.unchecked || mode === CreateMode.guarded) sattr = readSattr3(args);
    else if (mode === CreateMode.exclusive) verf = Buffer.from(args.fixed(8, 'createverf3'));
    else throw new XdrError('createmode3', 4, 'invalid', `${mode} is not UNCHECKED, GUARDED or EXCLUSIVE`);

    await this.created(context, out, 'CREATE', dir, async (dirIno) => {
      if (verf) return this.createExclusive(dirIno, name, verf);
      const existing = mode === CreateMode.unchecked ? await this.fs.lookup(dirIno, name).catch(() => undefined) : undefined;
      if (existing) this.handles.handOut(existing.ino);
      const flags = OpenFlags.wronly | (mode === CreateMode.guarded ? OpenFlags.excl : 0);
      const created = await this.fs.create(dirIno, name, sattr.mode ?? 0o644, flags);
      const ino = created.entry.ino;
      const fh = this.handles.handOut(ino);
      this.files.adopt(ino, created.fh);
      // The mode went into the create itself, and an owner cannot be given
      // away over SFTP. A file that already existed keeps its mode, owner and
      // times: only a size (O_TRUNC) applies to it, as knfsd does.
      const rest: Sattr3 = {};
      if (sattr.size !== undefined) rest.size = sattr.size;
      if (!existing && sattr.atime !== undefined) rest.atime = sattr.atime;
      if (!existing && sattr.mtime !== undefined) rest.mtime = sattr.mtime;
      const changes = this.changesFor(rest, this.nfsAttr(created.entry.attr));
      const attr = Object.keys(changes).length > 0 ? await this.fs.setattr(ino, changes, created.fh) : created.entry.attr;
      return { fh, attr };
    });
  }

  private async createExclusive(dirIno: number, name: string, verf: Buffer): Promise<{ fh: Buffer; attr: Attr }> {
    const atimeMs = verf.readUInt32BE(0) * 1000;
    const mtimeMs = verf.readUInt32BE(4) * 1000;
    try {
      const created = await this.fs.create(dirIno, name, 0o600, OpenFlags.wronly | OpenFlags.excl);
      const ino = created.entry.ino;
      const fh = this.handles.handOut(ino);
      this.files.adopt(ino, created.fh);
      const attr = await this.fs.setattr(ino, { atimeMs, mtimeMs }, created.fh);
      return { fh, attr };
    } catch (err) {
      if (!(err instanceof FsError && err.code === 'EEXIST')) throw err;
      const existing = await this.fs.lookup(dirIno, name);
      const fh = this.handles.handOut(existing.ino);
      const same = isRegular(existing.attr) && existing.attr.atimeMs === atimeMs && existing.attr.mtimeMs === mtimeMs;
      if (!same) throw err;
      return { fh, attr: existing.attr };
    }
  }

  /** MKDIR3args { diropargs3 where; sattr3 attributes; } → as CREATE */
  private async mkdir(context: CallContext, args: XdrReader, out: XdrWriter): Promise<void> {
    const { dir, name } = this.readDirOp(args);
    const sattr = readSattr3(args);
    await this.created(context, out, 'MKDIR', dir, async (dirIno) => {
      const entry = await this.fs.mkdir(dirIno, name, sattr.mode ?? 0o755);
      return { fh: this.handles.handOut(entry.ino), attr: entry.attr };
    });
  }

  /** SYMLINK3args { diropargs3 where; symlinkdata3 { sattr3 symlink_attributes; nfspath3 symlink_data; } } → as CREATE */
  private async symlink(context: CallContext, args: XdrReader, out: XdrWriter): Promise<void> {
    const { dir, name } = this.readDirOp(args);
    readSattr3(args);
    const target = args.string(MAX_PATH_BYTES, 'nfspath3');
    await this.created(context, out, 'SYMLINK', dir, async (dirIno) => {
      const entry = await this.fs.symlink(dirIno, name, target);
      return { fh: this.handles.handOut(entry.ino), attr: entry.attr };
    });
  }

  /**
   * MKNOD3args { diropargs3 where; mknoddata3 what; }: SFTP cannot create
   * devices, sockets or FIFOs, so every MKNOD is NFS3ERR_NOTSUPP (with the
   * directory's wcc_data). Only the type is decoded; its payload is not needed.
   */
  private async mknod(context: CallContext, args: XdrReader, out: XdrWriter): Promise<void> {
    const { dir } = this.readDirOp(args);
    args.u32('ftype3');
    await this.created(context, out, 'MKNOD', dir, async () => {
      throw new Nfs3Error(Nfs3Status.notsupp, 'SFTP cannot create device files, sockets or FIFOs');
    });
  }

  /** REMOVE3args / RMDIR3args { diropargs3 object; } → status; wcc_data dir_wcc */
  private async remove(context: CallContext, args: XdrReader, out: XdrWriter, op: 'remove' | 'rmdir'): Promise<void> {
    const { dir, name } = this.readDirOp(args);
    let dirIno: number | undefined;
    let before: NfsAttr | undefined;
    try {
      this.checkCaller(context);
      dirIno = this.handles.resolve(dir);
      before = await this.attrsOf(dirIno);
      const target = this.fs.inodes.find(childPath(this.dirPath(dirIno), name));
      if (target && op === 'remove') await this.files.closeIno(target.ino);
      if (op === 'remove') await this.fs.unlink(dirIno, name);
      else await this.fs.rmdir(dirIno, name);
      if (target?.unlinked) this.handles.drop(target.ino);
      this.touch(dirIno);
      const after = await this.attrsOf(dirIno);
      out.u32(Nfs3Status.ok);
      writeWcc(out, before, after, this.fsid);
    } catch (err) {
      out.u32(this.status(err, op.toUpperCase()));
      writeWcc(out, before, await this.attrsOf(dirIno), this.fsid);
    }
  }

  /** RENAME3args { diropargs3 from; diropargs3 to; } → status; wcc_data fromdir_wcc; wcc_data todir_wcc */
  private async rename(context: CallContext, args: XdrReader, out: XdrWriter): Promise<void> {
    const from = this.readDirOp(args);
    const to = this.readDirOp(args);
    let fromIno: number | undefined;
    let toIno: number | undefined;
    let fromBefore: NfsAttr | undefined;
    let toBefore: NfsAttr | undefined;
    try {
      this.checkCaller(context);
      fromIno = this.handles.resolve(from.dir);
      toIno = this.handles.resolve(to.dir);
      [fromBefore, toBefore] = await Promise.all([this.attrsOf(fromIno), this.attrsOf(toIno)]);
      const source = this.fs.inodes.find(childPath(this.dirPath(fromIno), from.name));
      const target = this.fs.inodes.find(childPath(this.dirPath(toIno), to.name));
      if (target && target !== source) await this.files.closeIno(target.ino);
      await this.fs.rename(fromIno, from.name, toIno, to.name);
      if (target && target !== source && target.unlinked) this.handles.drop(target.ino);
      this.touch(fromIno);
      if (toIno !== fromIno) this.touch(toIno);
      const [fromAfter, toAfter] = await Promise.all([this.attrsOf(fromIno), this.attrsOf(toIno)]);
      out.u32(Nfs3Status.ok);
      writeWcc(out, fromBefore, fromAfter, this.fsid);
      writeWcc(out, toBefore, toAfter, this.fsid);
    } catch (err) {
      out.u32(this.status(err, 'RENAME'));
      const [fromAfter, toAfter] = await Promise.all([this.attrsOf(fromIno), this.attrsOf(toIno)]);
      writeWcc(out, fromBefore, fromAfter, this.fsid);
      writeWcc(out, toBefore, toAfter, this.fsid);
    }
  }

  /** LINK3args { nfs_fh3 file; diropargs3 link; } → status; post_op_attr file_attributes; wcc_data linkdir_wcc */
  private async link(context: CallContext, args: XdrReader, out: XdrWriter): Promise<void> {
    const fh = this.readFh(args);
    const { dir, name } = this.readDirOp(args);
    let ino: number | undefined;
    let dirIno: number | undefined;
    let before: NfsAttr | undefined;
    try {
      this.checkCaller(context);
      ino = this.handles.resolve(fh);
      dirIno = this.handles.resolve(dir);
      before = await this.attrsOf(dirIno);
      const entry = await this.fs.link(ino, dirIno, name);
      this.handles.handOut(entry.ino);
      this.touch(dirIno);
      const [fileAttr, after] = await Promise.all([this.attrsOf(ino), this.attrsOf(dirIno)]);
      out.u32(Nfs3Status.ok);
      writePostOpAttr(out, fileAttr, this.fsid);
      writeWcc(out, before, after, this.fsid);
    } catch (err) {
      out.u32(this.status(err, 'LINK'));
      writePostOpAttr(out, await this.attrsOf(ino), this.fsid);
      writeWcc(out, before, await this.attrsOf(dirIno), this.fsid);
    }
  }

  /**
   * READDIR3args { nfs_fh3 dir; cookie3 cookie; cookieverf3 cookieverf; count3 count; }
   * → status; post_op_attr dir_attributes;
   *   OK: cookieverf3 cookieverf; dirlist3 { entry3 *entries; bool eof; }
   *   entry3 { fileid3 fileid; filename3 name; cookie3 cookie; entry3 *nextentry; }
   *
   * READDIRPLUS3args { nfs_fh3 dir; cookie3 cookie; cookieverf3 cookieverf; count3 dircount; count3 maxcount; }
   * → likewise with entryplus3, which adds post_op_attr name_attributes and post_op_fh3 name_handle.
   *
   * A listing is taken at cookie 0 and kept under a fresh cookie verifier;
   * cookies are positions in it (sorted by name, "." and ".." first). A
   * client that comes back after the snapshot was evicted gets a new listing
   * at the same position rather than NFS3ERR_BAD_COOKIE, as knfsd does with
   * its offset cookies.
   */
  private async readdir(context: CallContext, args: XdrReader, out: XdrWriter, plus: boolean): Promise<void> {
    const what = plus ? 'READDIRPLUS' : 'READDIR';
    const fh = this.readFh(args);
    const cookie = args.u64('cookie3');
    const cookieverf = args.u64('cookieverf3');
    const dircount = args.u32('count3');
    const maxcount = plus ? args.u32('maxcount') : dircount;
    let ino: number | undefined;
    try {
      this.checkCaller(context);
      ino = this.handles.resolve(fh);
      const dirAttr = await this.getattrOrStale(ino);
      if (!isDir(dirAttr)) throw new Nfs3Error(Nfs3Status.notdir, `${what} of inode ${ino}, which is not a directory`);
      const snapshot = cookie !== 0n ? this.snapshots.get(`${ino}:${cookieverf}`) : undefined;
      const listing = snapshot ?? (await this.takeSnapshot(ino, dirAttr));
      const start = cookie > BigInt(listing.entries.length) ? listing.entries.length : Number(cookie);

      const chosen: { index: number; name: string; attr: Attr | undefined }[] = [];
      let bytes = READDIR_OVERHEAD;
      let dirBytes = 0;
      for (let index = start; index < listing.entries.length; index++) {
        const item = listing.entries[index]!;
        const size = plus ? entryPlusSize(item.name, 16) : entrySize(item.name);
        const dirSize = entrySize(item.name);
        if (bytes + size > maxcount || (plus && dirBytes + dirSize > dircount)) break;
        bytes += size;
        dirBytes += dirSize;
        chosen.push({ index, ...item });
      }
      if (chosen.length === 0 && start < listing.entries.length) {
        throw new Nfs3Error(Nfs3Status.toosmall, `${what} buffer of ${maxcount} bytes cannot hold one entry`);
      }
      const eof = start + chosen.length >= listing.entries.length;

      out.u32(Nfs3Status.ok);
      writePostOpAttr(out, this.nfsAttr(dirAttr), this.fsid);
      out.u64(listing.verifier);
      for (const item of chosen) {
        const fileid = this.fileidOf(ino, item.name);
        out.bool(true).u64(fileid).string(item.name).u64(item.index + 1);
        if (!plus) continue;
        if (item.name === '.') {
          writePostOpAttr(out, this.nfsAttr(dirAttr), this.fsid);
          writePostOpFh(out, this.handleOf(ino));
        } else if (item.name === '..' || !item.attr) {
          writePostOpAttr(out, undefined, this.fsid);
          writePostOpFh(out, undefined);
        } else {
          // Every handle handed out holds a lookup (see HandleTable).
          const childIno = this.fs.remember(ino, item.name);
          writePostOpAttr(out, this.nfsAttr({ ...item.attr, ino: childIno }), this.fsid);
          writePostOpFh(out, this.handles.handOut(childIno));
        }
      }
      out.bool(false).bool(eof);
    } catch (err) {
      out.u32(this.status(err, what));
      writePostOpAttr(out, await this.attrsOf(ino), this.fsid);
    }
  }

  private async takeSnapshot(ino: number, dirAttr: Attr): Promise<DirSnapshot> {
    const listing = await this.fs.readdir(ino).catch(staleIfGone);
    const sorted = listing.map((entry) => ({ name: entry.name, attr: entry.attr as Attr | undefined })).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const snapshot: DirSnapshot = {
      ino,
      verifier: this.nextVerifier++,
      entries: [{ name: '.', attr: dirAttr }, { name: '..', attr: undefined }, ...sorted],
    };
    this.snapshots.set(`${ino}:${snapshot.verifier}`, snapshot);
    return snapshot;
  }

  private fileidOf(dirIno: number, name: string): number {
    if (name === '.') return dirIno;
    if (name === '..') {
      if (dirIno === ROOT_INO) return ROOT_INO;
      return this.fs.inodes.find(parentOf(this.dirPath(dirIno)))?.ino ?? ROOT_INO;
    }
    return this.fs.peekIno(dirIno, name);
  }

  /**
   * FSSTAT3args { nfs_fh3 fsroot; } → status; post_op_attr obj_attributes;
   *   OK: size3 tbytes, fbytes, abytes, tfiles, ffiles, afiles; uint32 invarsec
   */
  private async fsstat(context: CallContext, args: XdrReader, out: XdrWriter): Promise<void> {
    await this.answerOnObject(context, this.readFh(args), out, 'FSSTAT', async (ino) => {
      const [st, attr] = await Promise.all([this.fs.statfs(), this.attrsOf(ino)]);
      const unit = BigInt(st.frsize || st.bsize || 4096);
      return {
        attr,
        body: () =>
          out
            .u64(BigInt(Math.trunc(st.blocks)) * unit)
            .u64(BigInt(Math.trunc(st.bfree)) * unit)
            .u64(BigInt(Math.trunc(st.bavail)) * unit)
            .u64(Math.trunc(st.files))
            .u64(Math.trunc(st.ffree))
            .u64(Math.trunc(st.favail))
            .u32(0),
      };
    });
  }

  /**
   * FSINFO3args { nfs_fh3 fsroot; } → status; post_op_attr obj_attributes;
   *   OK: uint32 rtmax, rtpref, rtmult, wtmax, wtpref, wtmult, dtpref;
   *       size3 maxfilesize; nfstime3 time_delta; uint32 properties
   *
   * Large transfers (1 MiB) are what makes SFTP fast: few round trips.
   */
  private async fsinfo(context: CallContext, args: XdrReader, out: XdrWriter): Promise<void> {
    await this.answerOnObject(context, this.readFh(args), out, 'FSINFO', async (ino) => ({
      attr: await this.attrsOf(ino),
      body: () => {
        const io = this.options.maxIo;
        out.u32(io).u32(io).u32(4096).u32(io).u32(io).u32(4096).u32(64 * 1024);
        out.u64(BigInt(Number.MAX_SAFE_INTEGER));
        // SFTP v3 stores whole seconds.
        writeTime(out, 1000);
        out.u32(FSF3.link | FSF3.symlink | FSF3.homogeneous | FSF3.canSetTime);
      },
    }));
  }

  /**
   * PATHCONF3args { nfs_fh3 object; } → status; post_op_attr obj_attributes;
   *   OK: uint32 linkmax; uint32 name_max; bool no_trunc; bool chown_restricted;
   *       bool case_insensitive; bool case_preserving
   */
  private async pathconf(context: CallContext, args: XdrReader, out: XdrWriter): Promise<void> {
    await this.answerOnObject(context, this.readFh(args), out, 'PATHCONF', async (ino) => ({
      attr: await this.attrsOf(ino),
      body: () => out.u32(32_000).u32(255).bool(true).bool(true).bool(false).bool(true),
    }));
  }

  /**
   * COMMIT3args { nfs_fh3 file; offset3 offset; count3 count; }
   * → status; wcc_data file_wcc; OK: writeverf3 verf
   *
   * Flushes and fsyncs the whole file whatever the range: RemoteFs buffers
   * per file. A failure changes the write verifier, so the client sends its
   * uncommitted data again.
   */
  private async commit(context: CallContext, args: XdrReader, out: XdrWriter): Promise<void> {
    const fh = this.readFh(args);
    args.u64('offset3');
    args.u32('count3');
    let ino: number | undefined;
    let before: NfsAttr | undefined;
    try {
      this.checkCaller(context);
      ino = this.handles.resolve(fh);
      before = this.nfsAttr(await this.getattrOrStale(ino));
      try {
        await this.files.ifOpen(ino, (handle) => this.fs.fsync(handle));
      } catch (err) {
        this.lostWrites();
        throw err;
      }
      const after = await this.attrsOf(ino);
      out.u32(Nfs3Status.ok);
      writeWcc(out, before, after, this.fsid);
      out.fixed(this.verifier);
    } catch (err) {
      out.u32(this.status(err, 'COMMIT'));
      writeWcc(out, before, await this.attrsOf(ino), this.fsid);
    }
  }
}
