import { OpenFlags, type RemoteFs } from '../../vfs/remote-fs.js';

interface OpenFile {
  fh: number;
  writable: boolean;
  /** READ/WRITE/COMMIT calls using the handle right now. */
  users: number;
  lastUse: number;
  /** Replaced by a writable handle: closes once its last user is done. */
  retired: boolean;
}

export interface OpenFilesOptions {
  /** A handle nobody used for this long is closed (its writes flushed). */
  idleMs: number;
  /** Handles kept open at most; the least recently used idle one goes first. */
  max: number;
  /** A close found unflushed writes that could not be written: the write verifier must change. */
  onLostWrites(err: unknown, ino: number): void;
}

/**
 * NFS has no OPEN or CLOSE: READ, WRITE and COMMIT name a file by handle.
 * They borrow a RemoteFs handle per inode, opened on first use, shared by
 * concurrent calls, and closed after a quiet spell, so sequential I/O keeps
 * RemoteFs's read-ahead and write-back buffers and nothing stays open
 * forever. Runs on the JS main thread.
 */
export class OpenFiles {
  private readonly files = new Map<number, OpenFile>();
  private readonly opening = new Map<number, Promise<OpenFile>>();
  private readonly timer: NodeJS.Timeout;
  private closedAll = false;

  constructor(
    private readonly fs: RemoteFs,
    private readonly options: OpenFilesOptions,
  ) {
    this.timer = setInterval(() => this.sweep(), Math.max(100, Math.floor(options.idleMs / 2)));
    this.timer.unref();
  }

  get size(): number {
    return this.files.size;
  }

  /** Runs `work` with an open handle of `ino`, writable when asked. */
  async use<T>(ino: number, write: boolean, work: (fh: number) => Promise<T>): Promise<T> {
    const file = await this.get(ino, write);
    file.users++;
    try {
      return await work(file.fh);
    } finally {
      file.users--;
      file.lastUse = Date.now();
      if (file.retired && file.users === 0) void this.close(ino, file);
    }
  }

  /** A handle CREATE opened: READ and WRITE of the new file use it. */
  adopt(ino: number, fh: number): void {
    const previous = this.files.get(ino);
    this.files.set(ino, { fh, writable: true, users: 0, lastUse: Date.now(), retired: false });
    if (previous) this.retire(ino, previous);
    this.trim();
  }

  /** The open handle of `ino`, if any, without opening one. */
  async ifOpen<T>(ino: number, work: (fh: number) => Promise<T>): Promise<T | undefined> {
    const pending = this.opening.get(ino);
    if (pending) await pending.catch(() => undefined);
    const file = this.files.get(ino);
    if (!file) return undefined;
    return this.use(ino, file.writable, work);
  }

  private async get(ino: number, write: boolean): Promise<OpenFile> {
    if (this.closedAll) throw new Error(`open of inode ${ino} after the NFS server stopped`);
    for (;;) {
      const file = this.files.get(ino);
      if (file && (file.writable || !write)) return file;
      const pending = this.opening.get(ino);
      if (!pending) break;
      const opened = await pending.catch(() => undefined);
      if (opened && (opened.writable || !write)) return opened;
      if (!opened) break;
    }
    const opening = (async () => {
      const { fh } = await this.fs.open(ino, write ? OpenFlags.rdwr : 0);
      const file: OpenFile = { fh, writable: write, users: 0, lastUse: Date.now(), retired: false };
      const previous = this.files.get(ino);
      this.files.set(ino, file);
      if (previous) this.retire(ino, previous);
      this.trim();
      return file;
    })();
    this.opening.set(ino, opening);
    try {
      return await opening;
    } finally {
      if (this.opening.get(ino) === opening) this.opening.delete(ino);
    }
  }

  private retire(ino: number, file: OpenFile): void {
    file.retired = true;
    if (file.users === 0) void this.close(ino, file);
  }

  private async close(ino: number, file: OpenFile): Promise<void> {
    if (this.files.get(ino) === file) this.files.delete(ino);
    try {
      await this.fs.release(file.fh);
    } catch (err) {
      if (file.writable) this.options.onLostWrites(err, ino);
    }
  }

  /** Closes (and flushes) the handle of `ino` now, before its name goes away. */
  async closeIno(ino: number): Promise<void> {
    const pending = this.opening.get(ino);
    if (pending) await pending.catch(() => undefined);
    const file = this.files.get(ino);
    if (!file) return;
    this.files.delete(ino);
    file.retired = true;
    if (file.users === 0) await this.close(ino, file);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [ino, file] of this.files) {
      if (file.users === 0 && now - file.lastUse >= this.options.idleMs) void this.close(ino, file);
    }
  }

  private trim(): void {
    if (this.files.size <= this.options.max) return;
    const idle = [...this.files].filter(([, file]) => file.users === 0).sort((a, b) => a[1].lastUse - b[1].lastUse);
    for (const [ino, file] of idle.slice(0, this.files.size - this.options.max)) void this.close(ino, file);
  }

  /** Closes every handle, flushing writes; for server shutdown. */
  async closeAll(): Promise<void> {
    this.closedAll = true;
    clearInterval(this.timer);
    await Promise.all([...this.opening.values()].map((pending) => pending.catch(() => undefined)));
    await Promise.all([...this.files].map(([ino, file]) => this.close(ino, file)));
  }
}
