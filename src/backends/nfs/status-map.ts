import { type ErrnoCode, FsError } from '../../vfs/errors.js';

/** nfsstat3 (RFC 1813 section 2.6). */
export const Nfs3Status = {
  ok: 0,
  perm: 1,
  noent: 2,
  io: 5,
  nxio: 6,
  acces: 13,
  exist: 17,
  xdev: 18,
  nodev: 19,
  notdir: 20,
  isdir: 21,
  inval: 22,
  fbig: 27,
  nospc: 28,
  rofs: 30,
  mlink: 31,
  nametoolong: 63,
  notempty: 66,
  dquot: 69,
  stale: 70,
  remote: 71,
  badhandle: 10001,
  notSync: 10002,
  badCookie: 10003,
  notsupp: 10004,
  toosmall: 10005,
  serverfault: 10006,
  badtype: 10007,
  jukebox: 10008,
} as const;

export type Nfs3StatusCode = (typeof Nfs3Status)[keyof typeof Nfs3Status];

/**
 * The errno vocabulary every backend shares, as NFSv3 says it. Codes NFSv3
 * has no word for become the nearest one a client handles sensibly; a lost
 * or slow connection is NFS3ERR_IO, never JUKEBOX, which clients retry
 * forever and which would hang the caller.
 */
export const ERRNO_TO_NFS3: Record<ErrnoCode, Nfs3StatusCode> = {
  ENOENT: Nfs3Status.noent,
  EACCES: Nfs3Status.acces,
  EPERM: Nfs3Status.perm,
  EEXIST: Nfs3Status.exist,
  ENOTEMPTY: Nfs3Status.notempty,
  ENOTDIR: Nfs3Status.notdir,
  EISDIR: Nfs3Status.isdir,
  EINVAL: Nfs3Status.inval,
  ENOSPC: Nfs3Status.nospc,
  EIO: Nfs3Status.io,
  ENOSYS: Nfs3Status.notsupp,
  EBADF: Nfs3Status.io,
  EXDEV: Nfs3Status.xdev,
  ETIMEDOUT: Nfs3Status.io,
  ENAMETOOLONG: Nfs3Status.nametoolong,
  EROFS: Nfs3Status.rofs,
  ENOTSUP: Nfs3Status.notsupp,
  ENOTCONN: Nfs3Status.io,
  ELOOP: Nfs3Status.inval,
  ERANGE: Nfs3Status.inval,
  EFBIG: Nfs3Status.fbig,
  EMLINK: Nfs3Status.mlink,
};

/** A failure that already is an NFSv3 status (a bad handle, a guard mismatch). */
export class Nfs3Error extends Error {
  constructor(
    readonly status: Nfs3StatusCode,
    message: string,
  ) {
    super(message);
    this.name = 'Nfs3Error';
  }
}

/** The status for any failure of a procedure: unexpected exceptions are NFS3ERR_SERVERFAULT. */
export function statusOf(err: unknown): Nfs3StatusCode {
  if (err instanceof Nfs3Error) return err.status;
  if (err instanceof FsError) return ERRNO_TO_NFS3[err.code] ?? Nfs3Status.io;
  return Nfs3Status.serverfault;
}

/** mountstat3 (RFC 1813 appendix I) shares the errno-valued codes of nfsstat3. */
export const MountStatus = {
  ok: 0,
  perm: 1,
  noent: 2,
  io: 5,
  acces: 13,
  notdir: 20,
  inval: 22,
  nametoolong: 63,
  notsupp: 10004,
  serverfault: 10006,
} as const;

export type MountStatusCode = (typeof MountStatus)[keyof typeof MountStatus];

const MOUNT_CODES = new Set<number>(Object.values(MountStatus));

/** An nfsstat3 as mountstat3, for the codes MNT may return; anything else is MNT3ERR_IO. */
export function mountStatusOf(err: unknown): MountStatusCode {
  const status = statusOf(err);
  return (MOUNT_CODES.has(status) ? status : MountStatus.io) as MountStatusCode;
}
