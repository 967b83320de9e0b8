import type { Writable } from 'node:stream';
import type { Client, FileEntryWithStats, InputAttributes, SFTPWrapper, Stats } from 'ssh2';
import { HandleSlots } from './handle-slots.js';

const RESOLVED = Promise.resolve();

/** SFTP v3 status codes (draft-ietf-secsh-filexfer-02 §7). */
export const SftpStatus = {
  ok: 0,
  eof: 1,
  noSuchFile: 2,
  permissionDenied: 3,
  failure: 4,
  badMessage: 5,
  noConnection: 6,
  connectionLost: 7,
  opUnsupported: 8,
} as const;

/** SSH_FXF_* open flags. */
export const SftpOpen = {
  read: 0x01,
  write: 0x02,
  append: 0x04,
  creat: 0x08,
  trunc: 0x10,
  excl: 0x20,
} as const;

/**
 * A failed SFTP request, with what was asked. `status` is the server's
 * SSH_FX_* code, or undefined when the request never got an answer (timeout,
 * channel closed).
 */
export class SftpError extends Error {
  constructor(
    readonly op: string,
    readonly path: string,
    readonly status: number | undefined,
    cause: string,
  ) {
    // Like FsError: the server's answer or a timeout, named in the message; no stack needed.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`${op} ${path}: ${cause}`);
    Error.stackTraceLimit = limit;
    this.name = 'SftpError';
  }
}

export interface RemoteAttrs {
  mode: number;
  size: number;
  uid: number;
  gid: number;
  /** SFTP v3 carries whole seconds only. */
  atimeMs: number;
  mtimeMs: number;
}

export interface RemoteDirEntry {
  name: string;
  attrs: RemoteAttrs;
}

export interface RemoteStatvfs {
  bsize: number;
  frsize: number;
  blocks: number;
  bfree: number;
  bavail: number;
  files: number;
  ffree: number;
  favail: number;
  namemax: number;
}

export interface SftpSessionOptions {
  /** A request with no answer after this long fails with ETIMEDOUT instead of hanging. */
  requestTimeoutMs?: number;
  /**
   * The stream the SSH connection writes to. Requests made in the same tick
   * then leave together: a pipelined pair (open and stat, setstat and lstat,
   * lstat and close) costs one TCP segment and one wake-up of the server
   * instead of two, which on loopback is a good part of a request's cost.
   */
  transport?: Writable;
}

function toAttrs(stats: Stats): RemoteAttrs {
  return {
    mode: stats.mode,
    size: stats.size,
    uid: stats.uid,
    gid: stats.gid,
    atimeMs: stats.atime * 1000,
    mtimeMs: stats.mtime * 1000,
  };
}

type Callback<T> = (err: (Error & { code?: number | string }) | undefined | null, value: T) => void;

/**
 * Promise-shaped SFTP over one ssh2 channel. Every request can be in flight
 * together with any number of others (ssh2 matches replies by id); this layer
 * adds a deadline per request and a failure for everything pending when the
 * channel closes, so no caller waits forever.
 */
export class SftpSession {
  readonly extensions: ReadonlySet<string>;
  /** Every request without an answer yet: how to fail it, and its deadline. */
  private readonly pending = new Map<(err: Error) => void, number>();
  private sweeper: NodeJS.Timeout | undefined;
  private closedError: Error | undefined;
  private readonly timeoutMs: number;
  private readonly transport: Writable | undefined;
  private corked = false;
  private readonly slots = new HandleSlots();
  /** ssh2 reads it from the server's version string. */
  private readonly isOpenSSH: boolean;

  constructor(
    readonly sftp: SFTPWrapper,
    options: SftpSessionOptions = {},
  ) {
    this.timeoutMs = options.requestTimeoutMs ?? 30_000;
    this.transport = options.transport;
    const internal = sftp as unknown as { _extensions?: Record<string, string>; _isOpenSSH?: boolean };
    this.extensions = new Set(Object.keys(internal._extensions ?? {}));
    this.isOpenSSH = internal._isOpenSSH === true;
    sftp.once('close', () => this.failAll(new Error('the SFTP channel closed')));
  }

  static async open(client: Client, options: SftpSessionOptions = {}): Promise<SftpSession> {
    const sftp = await new Promise<SFTPWrapper>((resolve, reject) =>
      client.sftp((err, channel) => (err ? reject(err) : resolve(channel))),
    );
    // ssh2 keeps the stream it writes to as `_sock` (a socket, or a channel through a jump host).
    const transport = (client as unknown as { _sock?: Writable })._sock;
    return new SftpSession(sftp, { ...(transport ? { transport } : {}), ...options });
  }

  /** The largest read the server answers in one reply (limits@openssh.com, else 32 KiB). */
  get maxReadLen(): number {
    return (this.sftp as unknown as { _maxReadLen: number })._maxReadLen;
  }

  get maxWriteLen(): number {
    return (this.sftp as unknown as { _maxWriteLen: number })._maxWriteLen;
  }

  get closed(): boolean {
    return this.closedError !== undefined;
  }

  end(): void {
    this.sftp.end();
  }

  private failAll(err: Error): void {
    this.closedError ??= err;
    for (const fail of [...this.pending.keys()]) fail(err);
    this.pending.clear();
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  /**
   * One sweep timer for every pending request instead of a timer each: on
   * a hot path of thousands of small requests a second, arming and clearing
   * a timer per request costs more than the sweep.
   */
  private sweep(): void {
    if (this.sweeper || this.pending.size === 0) return;
    this.sweeper = setInterval(() => {
      const now = Date.now();
      for (const [fail, deadline] of this.pending) if (now >= deadline) fail(new Error(`no answer within ${this.timeoutMs} ms`));
      if (this.pending.size === 0) {
        clearInterval(this.sweeper);
        this.sweeper = undefined;
      }
    }, Math.min(1_000, Math.max(50, this.timeoutMs / 10)));
    this.sweeper.unref();
  }

  /**
   * Holds the transport's writes back until the promise reactions queued so
   * far have run, then sends them in one go: the requests of one batch of
   * FUSE requests leave in one socket write. A promise reaction, not
   * process.nextTick, which costs async-hook bookkeeping on every request.
   */
  private batchWrites(): void {
    const transport = this.transport;
    if (!transport || this.corked) return;
    this.corked = true;
    transport.cork();
    void RESOLVED.then(this.releaseWrites);
  }

  private readonly releaseWrites = (): void => {
    this.corked = false;
    this.transport?.uncork();
  };

  private call<T>(op: string, path: string, start: (cb: Callback<T>) => void): Promise<T> {
    if (this.closedError) return Promise.reject(new SftpError(op, path, undefined, this.closedError.message));
    this.batchWrites();
    return new Promise<T>((resolve, reject) => {
      const fail = (err: Error) => {
        this.pending.delete(fail);
        reject(new SftpError(op, path, undefined, err.message));
      };
      this.pending.set(fail, Date.now() + this.timeoutMs);
      this.sweep();
      try {
        start((err, value) => {
          if (!this.pending.delete(fail)) return; // Already timed out or failed.
          if (err) {
            const status = typeof err.code === 'number' ? err.code : undefined;
            reject(new SftpError(op, path, status, err.message));
          } else {
            resolve(value);
          }
        });
      } catch (err) {
        // ssh2 throws synchronously when the channel is not writable any more.
        fail(err as Error);
      }
    });
  }

  lstat(path: string): Promise<RemoteAttrs> {
    return this.call<Stats>('lstat', path, (cb) => this.sftp.lstat(path, cb)).then(toAttrs);
  }

  stat(path: string): Promise<RemoteAttrs> {
    return this.call<Stats>('stat', path, (cb) => this.sftp.stat(path, cb)).then(toAttrs);
  }

  fstat(handle: Buffer, path: string): Promise<RemoteAttrs> {
    return this.call<Stats>('fstat', path, (cb) => this.sftp.fstat(handle, cb)).then(toAttrs);
  }

  setstat(path: string, attrs: InputAttributes): Promise<void> {
    return this.call<void>('setstat', path, (cb) => this.sftp.setstat(path, attrs, (err) => cb(err, undefined)));
  }

  /** setstat that does not follow a symlink (lsetstat@openssh.com). */
  lsetstat(path: string, attrs: InputAttributes): Promise<void> {
    return this.call<void>('lsetstat', path, (cb) => this.sftp.ext_openssh_lsetstat(path, attrs, (err) => cb(err, undefined)));
  }

  fsetstat(handle: Buffer, path: string, attrs: InputAttributes): Promise<void> {
    return this.call<void>('fsetstat', path, (cb) => this.sftp.fsetstat(handle, attrs, (err) => cb(err, undefined)));
  }

  /** The handle is a copy: ssh2 hands out a view into the received data, which would keep all of it alive while the file is open. */
  open(path: string, flags: number, mode?: number): Promise<Buffer> {
    const attrs: InputAttributes = mode === undefined ? {} : { mode };
    return this.call<Buffer>('open', path, (cb) =>
      this.sendOpen((answer) => this.sftp.open(path, flags, attrs, answer), (err, handle) => cb(err, err ? handle : Buffer.from(handle))),
    );
  }

  /** Sends an open or opendir through `send`, following the handle it gets in `slots`. */
  private sendOpen(send: (answer: Callback<Buffer>) => void, cb: Callback<Buffer>): void {
    send((err, handle) => {
      this.slots.opened(err ? undefined : handle);
      cb(err, handle);
    });
    // Recorded after the call: ssh2 throws on bad arguments before it sends.
    this.slots.opening();
  }

  /**
   * The handle the next open or opendir will most likely get (see
   * HandleSlots), from OpenSSH only: the guess is safe to check against the
   * open's answer only on a server that handles requests one at a time, in
   * order, as OpenSSH's sftp-server does.
   */
  nextHandle(): Buffer | undefined {
    return this.isOpenSSH ? this.slots.next() : undefined;
  }

  close(handle: Buffer, path: string): Promise<void> {
    return this.call<void>('close', path, (cb) => {
      this.sftp.close(handle, (err) => {
        // OpenSSH frees the slot of any handle it knew, also when close(2) failed.
        this.slots.closed(!err || (err as { code?: unknown }).code !== SftpStatus.noSuchFile);
        cb(err, undefined);
      });
      this.slots.closing(handle);
    });
  }

  /**
   * One READ request for at most maxReadLen bytes; resolves with fewer bytes
   * at end of file (none at or past it). An answer much shorter than asked
   * is copied out: a view would keep the whole buffer alive in the block cache,
   * and V8 counts all of it towards its next garbage collection.
   */
  readChunk(handle: Buffer, path: string, position: number, length: number): Promise<Buffer> {
    const buffer = Buffer.allocUnsafe(length);
    return this.call<Buffer>('read', path, (cb) =>
      this.sftp.read(handle, buffer, 0, length, position, (err, bytesRead) => {
        if (err || bytesRead === length) cb(err, buffer);
        else if (bytesRead * 2 < length) cb(undefined, Buffer.from(buffer.subarray(0, bytesRead)));
        else cb(undefined, buffer.subarray(0, bytesRead));
      }),
    );
  }

  /** One WRITE request; `data` must not exceed maxWriteLen. */
  writeChunk(handle: Buffer, path: string, position: number, data: Buffer): Promise<void> {
    return this.call<void>('write', path, (cb) =>
      this.sftp.write(handle, data, 0, data.length, position, (err) => cb(err, undefined)),
    );
  }

  /**
   * A whole directory. Each READDIR answers the next batch of names (100 from
   * OpenSSH) until one answers EOF. They are sent in rounds, 3 at first, so
   * that a directory of up to 200 names costs OPENDIR plus one round trip
   * instead of one per batch, the EOF and the CLOSE; then 8 at a time for big
   * directories. The handle is closed without waiting for it.
   */
  async readdir(path: string): Promise<RemoteDirEntry[]> {
    const handle = await this.call<Buffer>('opendir', path, (cb) => this.sendOpen((answer) => this.sftp.opendir(path, answer), cb));
    const names: FileEntryWithStats[] = [];
    try {
      for (let eof = false, depth = 3; !eof; depth = 8) {
        const batches = await Promise.all(Array.from({ length: depth }, () => this.readdirBatch(handle, path)));
        for (const batch of batches) {
          if (batch) names.push(...batch);
          else eof = true;
        }
      }
    } finally {
      this.close(handle, path).catch(() => {});
    }
    return names.map((entry) => ({ name: entry.filename, attrs: toAttrs(entry.attrs as Stats) }));
  }

  /** One READDIR: the next batch of names without . and .., or undefined at the end. */
  private readdirBatch(handle: Buffer, path: string): Promise<FileEntryWithStats[] | undefined> {
    return this.call<FileEntryWithStats[]>('readdir', path, (cb) => this.sftp.readdir(handle, cb)).catch((err: unknown) => {
      if (err instanceof SftpError && err.status === SftpStatus.eof) return undefined;
      throw err;
    });
  }

  mkdir(path: string, mode: number): Promise<void> {
    return this.call<void>('mkdir', path, (cb) => this.sftp.mkdir(path, { mode }, (err) => cb(err, undefined)));
  }

  rmdir(path: string): Promise<void> {
    return this.call<void>('rmdir', path, (cb) => this.sftp.rmdir(path, (err) => cb(err, undefined)));
  }

  unlink(path: string): Promise<void> {
    return this.call<void>('unlink', path, (cb) => this.sftp.unlink(path, (err) => cb(err, undefined)));
  }

  /** Plain SFTP rename: OpenSSH refuses to replace an existing target. */
  rename(from: string, to: string): Promise<void> {
    return this.call<void>('rename', from, (cb) => this.sftp.rename(from, to, (err) => cb(err, undefined)));
  }

  /** rename(2) semantics, replacing the target (posix-rename@openssh.com). */
  posixRename(from: string, to: string): Promise<void> {
    return this.call<void>('rename', from, (cb) => this.sftp.ext_openssh_rename(from, to, (err) => cb(err, undefined)));
  }

  symlink(target: string, linkPath: string): Promise<void> {
    return this.call<void>('symlink', linkPath, (cb) => this.sftp.symlink(target, linkPath, (err) => cb(err, undefined)));
  }

  readlink(path: string): Promise<string> {
    return this.call<string>('readlink', path, (cb) => this.sftp.readlink(path, cb));
  }

  hardlink(existing: string, linkPath: string): Promise<void> {
    return this.call<void>('link', linkPath, (cb) => this.sftp.ext_openssh_hardlink(existing, linkPath, (err) => cb(err, undefined)));
  }

  fsync(handle: Buffer, path: string): Promise<void> {
    return this.call<void>('fsync', path, (cb) => this.sftp.ext_openssh_fsync(handle, (err) => cb(err, undefined)));
  }

  statvfs(path: string): Promise<RemoteStatvfs> {
    type Raw = Record<`f_${'bsize' | 'frsize' | 'blocks' | 'bfree' | 'bavail' | 'files' | 'ffree' | 'favail' | 'namemax'}`, number | bigint>;
    return this.call<Raw>('statfs', path, (cb) => this.sftp.ext_openssh_statvfs(path, cb)).then((raw) => ({
      bsize: Number(raw.f_bsize),
      frsize: Number(raw.f_frsize),
      blocks: Number(raw.f_blocks),
      bfree: Number(raw.f_bfree),
      bavail: Number(raw.f_bavail),
      files: Number(raw.f_files),
      ffree: Number(raw.f_ffree),
      favail: Number(raw.f_favail),
      namemax: Number(raw.f_namemax),
    }));
  }

  realpath(path: string): Promise<string> {
    return this.call<string>('realpath', path, (cb) => this.sftp.realpath(path, cb));
  }
}
