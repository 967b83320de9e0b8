import type { AttrChanges } from '../../vfs/remote-fs.js';
import { XdrError, type XdrReader, type XdrWriter } from './xdr.js';

/** ftype3 (RFC 1813 section 2.6). */
export const Ftype3 = { reg: 1, dir: 2, blk: 3, chr: 4, lnk: 5, sock: 6, fifo: 7 } as const;

const S_IFMT = 0o170000;
const FTYPE_BY_FORMAT: Record<number, number> = {
  0o100000: Ftype3.reg,
  0o040000: Ftype3.dir,
  0o060000: Ftype3.blk,
  0o020000: Ftype3.chr,
  0o120000: Ftype3.lnk,
  0o140000: Ftype3.sock,
  0o010000: Ftype3.fifo,
};

export function ftypeOf(mode: number): number {
  return FTYPE_BY_FORMAT[mode & S_IFMT] ?? Ftype3.reg;
}

/** The attributes a client sees, after owner mapping and the directory mtime overlay. */
export interface NfsAttr {
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  /** Bytes on disk: 512-byte blocks, as stat(2) counts them. */
  used: number;
  fileid: number;
  atimeMs: number;
  mtimeMs: number;
  /** SFTP has no ctime: clients see the mtime, which changes whenever the ctime would for what tmount does. */
  ctimeMs: number;
}

const MAX_U32 = 0xffffffff;

/** nfstime3 { uint32 seconds; uint32 nseconds; } */
export function writeTime(out: XdrWriter, ms: number): void {
  const seconds = Math.min(MAX_U32, Math.max(0, Math.floor(ms / 1000)));
  const nanos = ms < 0 || seconds === MAX_U32 ? 0 : Math.min(999_999_999, Math.round((ms - seconds * 1000) * 1_000_000));
  out.u32(seconds).u32(nanos);
}

export function readTime(args: XdrReader, type: string): number {
  const seconds = args.u32(`${type} seconds`);
  const nanos = args.u32(`${type} nseconds`);
  if (nanos > 999_999_999) throw new XdrError(`${type} nseconds`, 4, 'invalid', `${nanos} is not below one second`);
  return seconds * 1000 + Math.floor(nanos / 1_000_000);
}

/**
 *   struct fattr3 {
 *     ftype3 type;  mode3 mode;  uint32 nlink;  uid3 uid;  gid3 gid;
 *     size3 size;  size3 used;  specdata3 rdev;  uint64 fsid;  fileid3 fileid;
 *     nfstime3 atime;  nfstime3 mtime;  nfstime3 ctime;
 *   };   // 84 bytes
 */
export const FATTR3_BYTES = 84;

export function writeFattr(out: XdrWriter, attr: NfsAttr, fsid: bigint): void {
  out
    .u32(ftypeOf(attr.mode))
    .u32(attr.mode & 0o7777)
    .u32(attr.nlink)
    .u32(attr.uid >>> 0)
    .u32(attr.gid >>> 0)
    .u64(attr.size)
    .u64(attr.used)
    .u32(0)
    .u32(0)
    .u64(fsid)
    .u64(attr.fileid);
  writeTime(out, attr.atimeMs);
  writeTime(out, attr.mtimeMs);
  writeTime(out, attr.ctimeMs);
}

/** post_op_attr: `union switch (bool attributes_follow) { case TRUE: fattr3 attributes; case FALSE: void; }` */
export function writePostOpAttr(out: XdrWriter, attr: NfsAttr | undefined, fsid: bigint): void {
  out.bool(attr !== undefined);
  if (attr) writeFattr(out, attr, fsid);
}

/**
 * pre_op_attr: `union switch (bool attributes_follow) { case TRUE: wcc_attr attributes; ... }`
 * with `struct wcc_attr { size3 size; nfstime3 mtime; nfstime3 ctime; }`.
 */
export function writePreOpAttr(out: XdrWriter, attr: NfsAttr | undefined): void {
  out.bool(attr !== undefined);
  if (!attr) return;
  out.u64(attr.size);
  writeTime(out, attr.mtimeMs);
  writeTime(out, attr.ctimeMs);
}

/** wcc_data { pre_op_attr before; post_op_attr after; } */
export function writeWcc(out: XdrWriter, before: NfsAttr | undefined, after: NfsAttr | undefined, fsid: bigint): void {
  writePreOpAttr(out, before);
  writePostOpAttr(out, after, fsid);
}

/** post_op_fh3: `union switch (bool handle_follows) { case TRUE: nfs_fh3 handle; case FALSE: void; }` */
export function writePostOpFh(out: XdrWriter, fh: Buffer | undefined): void {
  out.bool(fh !== undefined);
  if (fh) out.opaque(fh);
}

/** time_how for set_atime and set_mtime. */
const TimeHow = { dontChange: 0, serverTime: 1, clientTime: 2 } as const;

/** sattr3 as decoded: undefined fields are left alone; a time of 'now' is the server's clock. */
export interface Sattr3 {
  mode?: number;
  uid?: number;
  gid?: number;
  size?: bigint;
  atime?: number | 'now';
  mtime?: number | 'now';
}

/**
 *   struct sattr3 {
 *     set_mode3 mode;   // union switch (bool set_it) { case TRUE: mode3 mode; }
 *     set_uid3 uid;     // likewise uid3
 *     set_gid3 gid;     // likewise gid3
 *     set_size3 size;   // likewise size3 (uint64)
 *     set_atime atime;  // union switch (time_how set_it) { case SET_TO_CLIENT_TIME: nfstime3 atime; }
 *     set_mtime mtime;  // likewise
 *   };
 */
export function readSattr3(args: XdrReader): Sattr3 {
  const sattr: Sattr3 = {};
  if (args.bool('set_mode3')) sattr.mode = args.u32('mode3');
  if (args.bool('set_uid3')) sattr.uid = args.u32('uid3');
  if (args.bool('set_gid3')) sattr.gid = args.u32('gid3');
  if (args.bool('set_size3')) sattr.size = args.u64('size3');
  const atime = readTimeHow(args, 'set_atime');
  if (atime !== undefined) sattr.atime = atime;
  const mtime = readTimeHow(args, 'set_mtime');
  if (mtime !== undefined) sattr.mtime = mtime;
  return sattr;
}

function readTimeHow(args: XdrReader, type: string): number | 'now' | undefined {
  const how = args.u32(type);
  if (how === TimeHow.dontChange) return undefined;
  if (how === TimeHow.serverTime) return 'now';
  if (how === TimeHow.clientTime) return readTime(args, type);
  throw new XdrError(type, 4, 'invalid', `time_how ${how} is not DONT_CHANGE, SET_TO_SERVER_TIME or SET_TO_CLIENT_TIME`);
}

export function encodeSattr3(out: XdrWriter, sattr: Sattr3): void {
  const optional = (value: number | undefined) => {
    out.bool(value !== undefined);
    if (value !== undefined) out.u32(value);
  };
  optional(sattr.mode);
  optional(sattr.uid);
  optional(sattr.gid);
  out.bool(sattr.size !== undefined);
  if (sattr.size !== undefined) out.u64(sattr.size);
  for (const time of [sattr.atime, sattr.mtime]) {
    if (time === undefined) out.u32(TimeHow.dontChange);
    else if (time === 'now') out.u32(TimeHow.serverTime);
    else {
      out.u32(TimeHow.clientTime);
      writeTime(out, time);
    }
  }
}

/** The RemoteFs changes for a sattr3; sizes beyond what a JS number holds exactly are EFBIG-worthy and rejected by the caller. */
export function sattrChanges(sattr: Sattr3, now: number): AttrChanges {
  return {
    ...(sattr.mode !== undefined ? { mode: sattr.mode & 0o7777 } : {}),
    ...(sattr.uid !== undefined ? { uid: sattr.uid } : {}),
    ...(sattr.gid !== undefined ? { gid: sattr.gid } : {}),
    ...(sattr.size !== undefined ? { size: Number(sattr.size) } : {}),
    ...(sattr.atime !== undefined ? { atimeMs: sattr.atime === 'now' ? now : sattr.atime } : {}),
    ...(sattr.mtime !== undefined ? { mtimeMs: sattr.mtime === 'now' ? now : sattr.mtime } : {}),
  };
}
