import type { InputAttributes } from 'ssh2';
import type { SshConnection } from './connect.js';
import { DEFAULT_RECONNECT, type FailureKind, type PolicyAction, type PolicyEvent, type PolicyState, type ReconnectConfig, step } from './reconnect.js';
import { type RemoteAttrs, type RemoteDirEntry, type RemoteStatvfs, SftpError, SftpSession, SftpStatus } from './sftp-session.js';

/** An open remote file as the link knows it: the handle is replaced when a reconnect reopens the file. */
export interface HandleRef {
  buffer: Buffer;
  /** Remote path, for messages and for reopening. */
  path: string;
  /**
   * The session the buffer belongs to. SFTP handles are small per-session
   * tokens: a stale one sent on a new session could name another open file.
   */
  owner: SftpSession | undefined;
  /** How many local handles share it (a file removed while open, opened again); the last to close it closes it. */
  users?: number;
}

/** An open file: its handle, its attributes as the open left them, and maybe its first bytes (see RemoteLink.open). */
export interface OpenedFile {
  ref: HandleRef;
  attrs: RemoteAttrs;
  early?: Promise<Buffer | undefined>;
}

/**
 * Where a change of attributes goes: a path (setstat follows a symlink;
 * with `link`, lsetstat@openssh.com changes the link itself) or an open file.
 */
export type AttrTarget = { path: string; link?: boolean } | { handle: HandleRef };

const targetPath = (target: AttrTarget): string => ('handle' in target ? target.handle.path : target.path);
const setstatOp = (target: AttrTarget): string => ('handle' in target ? 'fsetstat' : target.link ? 'lsetstat' : 'setstat');

/**
 * The answer to `second`, a request sent right behind `first`, once `first`
 * has succeeded: the server handles them in order, so the pair costs one
 * round trip. A failure of `first` is what the caller hears about; the
 * answer to `second` is then moot.
 */
export async function answerBehind<T>(first: Promise<unknown>, second: Promise<T>): Promise<T> {
  second.catch(() => {});
  await first;
  return second;
}

export type LinkState = 'connected' | 'reconnecting' | 'disconnected' | 'failed';

export interface LinkHooks {
  /** Runs on the new session before anything else may use it: reopen files, check the root. Throwing fails the attempt. */
  reattach?(session: SftpSession): Promise<void>;
  /** Told about every change of state, with the attempt number or the reason. */
  onState?(state: LinkState, detail: { attempt?: number; reason?: string }): void;
}

export interface LinkOptions {
  /** How long an operation may wait for the remote in all, reconnects included. */
  opTimeoutMs: number;
  /** Operations waiting for a reconnect beyond this many fail at once. */
  maxWaiting: number;
  reconnect: ReconnectConfig;
}

export const DEFAULT_LINK_OPTIONS: LinkOptions = { opTimeoutMs: 30_000, maxWaiting: 1024, reconnect: DEFAULT_RECONNECT };

/** A failure of the transport (no answer, channel gone), as opposed to an answer from the server. */
function isTransportFailure(err: unknown): boolean {
  return err instanceof SftpError && err.status === undefined;
}

/** What `happened` found: the request took effect before the connection died, with this result. */
type Done<T> = { value: T };
const done: Done<void> = { value: undefined };

interface Waiter {
  resolve(session: SftpSession): void;
  reject(err: Error): void;
}

/**
 * The SFTP session RemoteFs talks to, kept alive across network trouble. It
 * reconnects as the reconnect policy says, lets operations wait (bounded in
 * number and in time) while it does, retries idempotent requests, and for
 * the others first checks whether they happened before the connection died.
 */
export class RemoteLink {
  private session: SftpSession | undefined;
  private connection: SshConnection | undefined;
  private state: LinkState = 'connected';
  private policy: PolicyState = { phase: 'connected' };
  private readonly waiting = new Set<Waiter>();
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  private stopReason = '';
  private clockTimer: NodeJS.Timeout | undefined;
  readonly options: LinkOptions;
  hooks: LinkHooks = {};

  constructor(session: SftpSession, connection: SshConnection | undefined, options: Partial<LinkOptions> = {}) {
    this.options = { ...DEFAULT_LINK_OPTIONS, ...options };
    this.adopt(session, connection);
    this.watchClock();
  }

  get extensions(): ReadonlySet<string> {
    return this.session?.extensions ?? new Set();
  }

  get maxReadLen(): number {
    return this.session?.maxReadLen ?? 32 * 1024;
  }

  get maxWriteLen(): number {
    return this.session?.maxWriteLen ?? 32 * 1024;
  }

  get linkState(): LinkState {
    return this.state;
  }

  get currentConnection(): SshConnection | undefined {
    return this.connection;
  }

  private adopt(session: SftpSession, connection: SshConnection | undefined): void {
    this.session = session;
    this.connection = connection;
    const dropped = (reason: string) => {
      if (this.session !== session || this.closed) return;
      this.session = undefined;
      this.dispatch({ type: 'dropped', at: Date.now(), reason });
    };
    session.sftp.once('close', () => dropped('the SFTP channel closed'));
    void connection?.closed.then((err) => dropped(err?.message ?? 'the SSH connection closed'));
  }

  private setState(state: LinkState, detail: { attempt?: number; reason?: string } = {}): void {
    if (this.state === state && state !== 'reconnecting') return;
    this.state = state;
    this.hooks.onState?.(state, detail);
  }

  private dispatch(event: PolicyEvent): void {
    if (this.closed) return;
    const next = step(this.policy, event, this.options.reconnect, Math.random());
    this.policy = next.state;
    void this.perform(next.action);
  }

  private async perform(action: PolicyAction): Promise<void> {
    switch (action.type) {
      case 'none':
        return;
      case 'wait':
        this.setState('reconnecting', { attempt: action.attempt });
        clearTimeout(this.timer);
        this.timer = setTimeout(() => this.dispatch({ type: 'timer_elapsed', at: Date.now() }), action.ms);
        this.timer.unref();
        return;
      case 'drop_and_connect': {
        const stale = this.connection;
        this.session = undefined;
        void stale?.close().catch(() => {});
        return this.attempt(action.attempt);
      }
      case 'connect':
        return this.attempt(action.attempt);
      case 'stop':
        this.stopReason = action.reason;
        this.setState(action.kind, { reason: action.reason });
        this.failWaiters(new SftpError('connect', '', undefined, `not connected: ${action.reason}`));
        return;
    }
  }

  private async attempt(attempt: number): Promise<void> {
    this.setState('reconnecting', { attempt });
    const previous = this.connection;
    if (!previous) {
      this.dispatch({ type: 'attempt_failed', at: Date.now(), kind: 'fatal', reason: 'this mount cannot reconnect' });
      return;
    }
    let fresh: SshConnection | undefined;
    try {
      fresh = await previous.reconnect();
      const session = await SftpSession.open(fresh.client, { requestTimeoutMs: this.options.opTimeoutMs });
      await this.hooks.reattach?.(session);
      if (this.closed) {
        await fresh.close();
        return;
      }
      void previous.close().catch(() => {});
      this.adopt(session, fresh);
      this.dispatch({ type: 'connected' });
      this.setState('connected');
      for (const waiter of [...this.waiting]) waiter.resolve(session);
      this.waiting.clear();
    } catch (err) {
      await fresh?.close().catch(() => {});
      const { classifyError } = await import('./connect.js');
      const kind: FailureKind = (err as { fatal?: boolean }).fatal ? 'fatal' : classifyError(err);
      this.dispatch({ type: 'attempt_failed', at: Date.now(), kind, reason: (err as Error).message });
    }
  }

  /** Sleep shows as wall-clock time running ahead of monotonic time. */
  private watchClock(): void {
    let wall = Date.now();
    let mono = performance.now();
    this.clockTimer = setInterval(() => {
      const nowWall = Date.now();
      const nowMono = performance.now();
      this.dispatch({ type: 'clock_jump', at: nowWall, wallElapsedMs: nowWall - wall, monotonicElapsedMs: nowMono - mono });
      wall = nowWall;
      mono = nowMono;
    }, 2_000);
    this.clockTimer.unref();
  }

  private failWaiters(err: Error): void {
    for (const waiter of [...this.waiting]) waiter.reject(err);
    this.waiting.clear();
  }

  /** One request on the current session, no waiting and no retry: what the health probe needs. */
  probe(path: string): Promise<RemoteAttrs> {
    if (!this.session) return Promise.reject(new SftpError('probe', path, undefined, `not connected (${this.state})`));
    return this.session.lstat(path);
  }

  /** The health probe saw requests time out while the transport looked alive. */
  probeFailed(): void {
    this.dispatch({ type: 'probe_failed', at: Date.now() });
  }

  /** `tmount reconnect`: try now. */
  reconnectNow(): void {
    this.dispatch({ type: 'user_reconnect', at: Date.now() });
  }

  /** Stops reconnecting and ends the connection: the mount is going away. */
  async shutdown(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    clearInterval(this.clockTimer);
    this.failWaiters(new SftpError('unmount', '', undefined, 'the mount is being unmounted'));
    this.session = undefined;
    await this.connection?.close().catch(() => {});
  }

  /** A usable session, waiting for a reconnect until `deadline`. */
  private sessionBy(deadline: number, op: string, path: string): Promise<SftpSession> {
    if (this.session) return Promise.resolve(this.session);
    if (this.closed) return Promise.reject(new SftpError(op, path, undefined, 'the mount is being unmounted'));
    if (this.state === 'failed' || this.state === 'disconnected') {
      return Promise.reject(new SftpError(op, path, undefined, `not connected: ${this.stopReason}`));
    }
    if (this.waiting.size >= this.options.maxWaiting) {
      return Promise.reject(new SftpError(op, path, undefined, `not connected, and ${this.waiting.size} operations are already waiting`));
    }
    return new Promise<SftpSession>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(waiter);
        reject(new SftpError(op, path, undefined, `no answer within ${this.options.opTimeoutMs} ms: reconnecting`));
      }, Math.max(0, deadline - Date.now()));
      const waiter: Waiter = {
        resolve: (session) => {
          clearTimeout(timer);
          resolve(session);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      };
      this.waiting.add(waiter);
    });
  }

  /** Runs `work` against the session, racing the operation's deadline. */
  private async within<T>(deadline: number, op: string, path: string, work: Promise<T>): Promise<T> {
    // The session fails any request after opTimeoutMs itself; only when part
    // of the budget went on waiting for a reconnect is a shorter race needed.
    if (deadline - Date.now() >= this.options.opTimeoutMs - 5) return work;
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new SftpError(op, path, undefined, `no answer within ${this.options.opTimeoutMs} ms`)), Math.max(0, deadline - Date.now()));
    });
    try {
      return await Promise.race([work, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * An idempotent request: after a transport failure it is sent again on the
   * next session, until the operation's deadline.
   */
  private retrying<T>(op: string, path: string, request: (session: SftpSession) => Promise<T>): Promise<T> {
    const deadline = Date.now() + this.options.opTimeoutMs;
    return this.firstTry(deadline, request, () => this.retryUntil(deadline, op, path, request));
  }

  private async retryUntil<T>(deadline: number, op: string, path: string, request: (session: SftpSession) => Promise<T>): Promise<T> {
    for (;;) {
      const session = await this.sessionBy(deadline, op, path);
      try {
        return await this.within(deadline, op, path, request(session));
      } catch (err) {
        if (!isTransportFailure(err) || Date.now() >= deadline || this.closed) throw err;
      }
    }
  }

  /**
   * A request that must not run twice (mkdir, rename, unlink…). If the
   * transport failed while it was out, the next session first asks the
   * remote whether it happened: if so it counts as done, if not it is sent
   * again.
   */
  private once<T>(op: string, path: string, request: (session: SftpSession) => Promise<T>, happened: (session: SftpSession) => Promise<Done<T> | undefined>): Promise<T> {
    const deadline = Date.now() + this.options.opTimeoutMs;
    // After a transport failure nobody knows whether it happened: the loop first asks the remote.
    return this.firstTry(deadline, request, (failed) => this.onceUntil(deadline, failed, op, path, request, happened));
  }

  private async onceUntil<T>(
    deadline: number,
    uncertain: boolean,
    op: string,
    path: string,
    request: (session: SftpSession) => Promise<T>,
    happened: (session: SftpSession) => Promise<Done<T> | undefined>,
  ): Promise<T> {
    for (;;) {
      const session = await this.sessionBy(deadline, op, path);
      try {
        if (uncertain) {
          const done = await this.within(deadline, op, path, happened(session));
          if (done) return done.value;
        }
        return await this.within(deadline, op, path, request(session));
      } catch (err) {
        if (!isTransportFailure(err) || Date.now() >= deadline || this.closed) throw err;
        uncertain = true;
      }
    }
  }

  /**
   * The common case, connected: `request` goes straight to the session,
   * whose own timeout is the whole budget. With no session, or after a
   * transport failure (`failed`), `loop` waits, retries and decides until
   * the deadline. A synchronous throw (a handle not reattached) becomes a rejection.
   */
  private firstTry<T>(deadline: number, request: (session: SftpSession) => Promise<T>, loop: (failed: boolean) => Promise<T>): Promise<T> {
    const session = this.session;
    if (!session) return loop(false);
    let sent: Promise<T>;
    try {
      sent = request(session);
    } catch (err) {
      sent = Promise.reject(err);
    }
    return sent.catch((err: unknown) => {
      if (!isTransportFailure(err) || Date.now() >= deadline || this.closed) throw err;
      return loop(true);
    });
  }

  private async exists(session: SftpSession, path: string): Promise<RemoteAttrs | undefined> {
    return session.lstat(path).catch((err: unknown) => {
      if (isTransportFailure(err)) throw err;
      return undefined;
    });
  }

  lstat(path: string): Promise<RemoteAttrs> {
    return this.retrying('lstat', path, (s) => s.lstat(path));
  }

  stat(path: string): Promise<RemoteAttrs> {
    return this.retrying('stat', path, (s) => s.stat(path));
  }

  fstat(handle: HandleRef): Promise<RemoteAttrs> {
    return this.retrying('fstat', handle.path, (s) => s.fstat(RemoteLink.bufferOn(s, handle), handle.path));
  }

  /** A change of attributes (idempotent, so retried). */
  changeAttrs(target: AttrTarget, attrs: InputAttributes): Promise<void> {
    return this.retrying(setstatOp(target), targetPath(target), (s) => RemoteLink.changeOn(s, target, attrs));
  }

  /** A change of attributes and the attributes it left, in one round trip. Both are idempotent. */
  changeAndStat(target: AttrTarget, attrs: InputAttributes): Promise<RemoteAttrs> {
    const path = targetPath(target);
    return this.retrying(setstatOp(target), path, (s) =>
      answerBehind(RemoteLink.changeOn(s, target, attrs), 'handle' in target ? s.fstat(RemoteLink.bufferOn(s, target.handle), path) : s.lstat(path)),
    );
  }

  private static changeOn(s: SftpSession, target: AttrTarget, attrs: InputAttributes): Promise<void> {
    if ('handle' in target) return s.fsetstat(RemoteLink.bufferOn(s, target.handle), target.handle.path, attrs);
    return target.link ? s.lsetstat(target.path, attrs) : s.setstat(target.path, attrs);
  }

  /**
   * Opens a file and stats it in one round trip. Plain opens are retried;
   * one that creates exclusively is retried only if the file is not there,
   * else it is opened as created. Where the session can tell the handle the
   * open will get (SftpSession.nextHandle), the stat goes through that handle
   * and, with `earlyBytes`, so does a read of the file's first bytes; `early`
   * resolves with what it returned once the open's answer confirmed the
   * handle, else undefined.
   */
  open(path: string, flags: number, mode: number | undefined, exclusive: boolean, plainFlags: number, earlyBytes = 0): Promise<OpenedFile> {
    const request = (s: SftpSession): Promise<OpenedFile> => {
      const guess = s.nextHandle();
      // All requests are written now, in this order; the server answers in
      // order, so the stat sees the file as the open left it (created,
      // truncated) and the pair costs one round trip instead of two. Through
      // the handle it describes the opened file even if the path was renamed
      // over in between; by path, the file the name held right after. The
      // read goes last: the stat's answer does not wait for the disk.
      const opened = s.open(path, flags, mode);
      const stat = (guess ? s.fstat(guess, path) : s.stat(path)).then(
        (attrs) => ({ attrs }),
        (error: unknown) => ({ error }),
      );
      const read = guess && earlyBytes > 0 ? s.readChunk(guess, path, 0, earlyBytes).catch(() => undefined) : undefined;
      return opened.then(async (buffer) => {
        const ref: HandleRef = { buffer, path, owner: s };
        const behind = await stat;
        // A wrong guess stat and read another open file, or none: their
        // answers are dropped. The early data also goes when the stat failed:
        // the fstat instead is answered after the read, and the data might
        // predate its version.
        const confirmed = guess === undefined || guess.equals(buffer);
        if (!confirmed || !('attrs' in behind)) {
          // Failing, the open hands out no handle: nothing else would close this one.
          const attrs = await s.fstat(buffer, path).catch(async (err: unknown) => {
            await s.close(buffer, path).catch(() => undefined);
            throw err;
          });
          return { ref, attrs };
        }
        return read ? { ref, attrs: behind.attrs, early: read } : { ref, attrs: behind.attrs };
      });
    };
    if (!exclusive) return this.retrying('open', path, request);
    return this.once('open', path, request, async (s) => {
      if (!(await this.exists(s, path))) return undefined;
      const buffer = await s.open(path, plainFlags);
      return { value: { ref: { buffer, path, owner: s }, attrs: await s.fstat(buffer, path) } };
    });
  }

  /** Reopens on a new session without creating or truncating (used by reattach). */
  static reopen(session: SftpSession, handle: HandleRef, flags: number): Promise<void> {
    handle.owner = undefined;
    return session.open(handle.path, flags).then((buffer) => {
      handle.buffer = buffer;
      handle.owner = session;
    });
  }

  /** The buffer of `handle` if it is valid on `session`; otherwise the file was not reattached. */
  private static bufferOn(session: SftpSession, handle: HandleRef): Buffer {
    if (handle.owner !== session) throw new SftpError('io', handle.path, SftpStatus.failure, 'the file could not be reopened after a reconnect');
    return handle.buffer;
  }

  /** Closes a remote file; one whose session is gone was closed with it. */
  async closeHandle(handle: HandleRef): Promise<void> {
    if (handle.users !== undefined && --handle.users > 0) return;
    const session = this.session;
    if (!session || handle.owner !== session) return;
    await session.close(handle.buffer, handle.path).catch((err: unknown) => {
      if (!isTransportFailure(err)) throw err;
    });
  }

  readChunk(handle: HandleRef, position: number, length: number): Promise<Buffer> {
    return this.retrying('read', handle.path, (s) => s.readChunk(RemoteLink.bufferOn(s, handle), handle.path, position, length));
  }

  /** Writing the same bytes at the same offset twice leaves the same file: retried. */
  writeChunk(handle: HandleRef, position: number, data: Buffer): Promise<void> {
    return this.retrying('write', handle.path, (s) => s.writeChunk(RemoteLink.bufferOn(s, handle), handle.path, position, data));
  }

  readdir(path: string): Promise<RemoteDirEntry[]> {
    return this.retrying('readdir', path, (s) => s.readdir(path));
  }

  /** Makes a directory and returns its attributes. */
  mkdir(path: string, mode: number): Promise<RemoteAttrs> {
    return this.made('mkdir', path, (s) => s.mkdir(path, mode));
  }

  /**
   * Creates a name and returns what it made, the LSTAT right behind the
   * request. After a transport failure, the name existing means the creation happened.
   */
  private made(op: string, path: string, create: (session: SftpSession) => Promise<void>): Promise<RemoteAttrs> {
    return this.once(
      op,
      path,
      (s) => answerBehind(create(s), s.lstat(path)),
      async (s) => {
        const attrs = await this.exists(s, path);
        return attrs ? { value: attrs } : undefined;
      },
    );
  }

  rmdir(path: string): Promise<void> {
    return this.once('rmdir', path, (s) => s.rmdir(path), async (s) => ((await this.exists(s, path)) ? undefined : done));
  }

  unlink(path: string): Promise<void> {
    return this.once('unlink', path, (s) => s.unlink(path), async (s) => ((await this.exists(s, path)) ? undefined : done));
  }

  rename(from: string, to: string): Promise<void> {
    return this.once('rename', from, (s) => s.rename(from, to), (s) => this.renamed(s, from, to));
  }

  posixRename(from: string, to: string): Promise<void> {
    return this.once('rename', from, (s) => s.posixRename(from, to), (s) => this.renamed(s, from, to));
  }

  private async renamed(session: SftpSession, from: string, to: string): Promise<Done<void> | undefined> {
    const [source, target] = await Promise.all([this.exists(session, from), this.exists(session, to)]);
    return !source && target ? done : undefined;
  }

  /** Makes a symbolic link and returns its attributes. */
  symlink(target: string, linkPath: string): Promise<RemoteAttrs> {
    return this.made('symlink', linkPath, (s) => s.symlink(target, linkPath));
  }

  readlink(path: string): Promise<string> {
    return this.retrying('readlink', path, (s) => s.readlink(path));
  }

  /** Makes a hard link and returns the attributes of the (shared) file. */
  hardlink(existing: string, linkPath: string): Promise<RemoteAttrs> {
    return this.made('link', linkPath, (s) => s.hardlink(existing, linkPath));
  }

  fsync(handle: HandleRef): Promise<void> {
    return this.retrying('fsync', handle.path, (s) => s.fsync(RemoteLink.bufferOn(s, handle), handle.path));
  }

  statvfs(path: string): Promise<RemoteStatvfs> {
    return this.retrying('statfs', path, (s) => s.statvfs(path));
  }
}
