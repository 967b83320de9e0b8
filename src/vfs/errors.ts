import { constants } from 'node:os';
import { SftpError, SftpStatus } from '../remote/sftp-session.js';

export type ErrnoCode =
  | 'ENOENT' | 'EACCES' | 'EPERM' | 'EEXIST' | 'ENOTEMPTY' | 'ENOTDIR' | 'EISDIR' | 'EINVAL'
  | 'ENOSPC' | 'EIO' | 'ENOSYS' | 'EBADF' | 'EXDEV' | 'ETIMEDOUT' | 'ENAMETOOLONG' | 'EROFS'
  | 'ENOTSUP' | 'ENOTCONN' | 'ELOOP' | 'ERANGE' | 'EFBIG' | 'EMLINK';

/**
 * The one error type every RemoteFs operation throws. Backends turn `errno`
 * (this OS's number for `code`) into their own reply: fuse_reply_err, an
 * NFS3ERR_* status, an NTSTATUS.
 */
export class FsError extends Error {
  readonly errno: number;
  constructor(
    readonly code: ErrnoCode,
    readonly op: string,
    readonly path: string,
    cause?: string,
  ) {
    // An answer, not a bug (ENOENT from a lookup is routine): what it says is
    // in the message, and capturing a stack would cost more than the request.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`${op} ${path || '/'}: ${code}${cause ? ` (${cause})` : ''}`);
    Error.stackTraceLimit = limit;
    this.name = 'FsError';
    this.errno = (constants.errno as Record<string, number>)[code] ?? constants.errno.EIO;
  }
}

/**
 * "No such file" inferred from this mount's own recent view of a directory
 * rather than heard from the remote: right now, but not to be cached by a
 * backend's client (the kernel's negative dentries) for longer than that view.
 */
export class PresumedMissing extends FsError {
  constructor(op: string, path: string) {
    super('ENOENT', op, path, 'not in the listing of a directory this mount is filling');
  }
}

/**
 * SSH_FX_* → errno, before any operation-specific diagnosis. OpenSSH's
 * sftp-server folds ENOTDIR and ELOOP into NO_SUCH_FILE, EINVAL and
 * ENAMETOOLONG into BAD_MESSAGE, and every other errno into FAILURE, so
 * FAILURE needs the operation's context to become a precise errno (see
 * RemoteFs.diagnose).
 */
export const STATUS_TO_ERRNO: Record<number, ErrnoCode> = {
  [SftpStatus.eof]: 'EIO',
  [SftpStatus.noSuchFile]: 'ENOENT',
  [SftpStatus.permissionDenied]: 'EACCES',
  [SftpStatus.failure]: 'EIO',
  [SftpStatus.badMessage]: 'EINVAL',
  [SftpStatus.noConnection]: 'ENOTCONN',
  [SftpStatus.connectionLost]: 'ENOTCONN',
  [SftpStatus.opUnsupported]: 'ENOSYS',
};

/** An SFTP failure as an FsError; a request that got no answer is ETIMEDOUT or ENOTCONN. */
export function fromSftpError(err: unknown, op: string, path: string): FsError {
  if (err instanceof FsError) return err;
  if (err instanceof SftpError) {
    if (err.status === undefined) {
      return new FsError(/no answer within/.test(err.message) ? 'ETIMEDOUT' : 'ENOTCONN', op, path, err.message);
    }
    return new FsError(STATUS_TO_ERRNO[err.status] ?? 'EIO', op, path, err.message);
  }
  return new FsError('EIO', op, path, err instanceof Error ? err.message : String(err));
}

export function isFailureStatus(err: unknown): boolean {
  return err instanceof SftpError && err.status === SftpStatus.failure;
}
