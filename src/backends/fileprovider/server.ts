import { randomBytes } from 'node:crypto';
import { chmodSync, constants as fsConstants } from 'node:fs';
import { lstat, mkdir, open, readdir as readLocalDir, realpath, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { FsError } from '../../vfs/errors.js';
import { childPath, isInside, isValidName, parentOf } from '../../vfs/paths.js';
import { type Attr, type DirEntry, FileType, ROOT_INO, type RemoteFs } from '../../vfs/remote-fs.js';
import { IdTable, ROOT_ID, TRASH, WORKING_SET } from './identifiers.js';
import { ChangeJournal, coalesce, type JournalEntry } from './journal.js';
import {
  encodeLine,
  type ErrorCode,
  field,
  FP_PROTOCOL_VERSION,
  type Hello,
  type ItemKind,
  LineSplitter,
  type Op,
  OPS,
  ProtocolError,
  type RequestBase,
  type Response,
  type WireError,
  type WireItem,
} from './protocol.js';

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_TRUNC } = fsConstants;
const CHUNK = 1024 * 1024;
const PAGE = { fallback: 200, max: 1000 };
const BATCH = { fallback: 500, max: 5000 };
const RESCAN_PARALLEL = 4;
const MAX_LINE = 1024 * 1024;

export interface FileProviderServerOptions {
  socketPath: string;
  /** Where the extension stages uploads and the server places downloads; emptied at start and close. */
  stagingDir: string;
  domain: string;
  displayName: string;
  version: string;
  /** The root item's filename (FileProvider shows it; it must not be empty). */
  rootName: string;
  readonly: boolean;
  /** A watched listing older than this is read again before changes are answered (the dir cache TTL). */
  rescanAfterMs: number;
  /** How often watched directories are re-read in the background; 0 turns the watcher off. */
  watchIntervalMs: number;
  journalCapacity?: number;
  /** Directories whose changes are followed, most recently enumerated first; older ones are dropped. */
  maxWatchedDirs?: number;
  /** Called after the watcher journaled remote changes, so the system can be told to ask for them. */
  onRemoteChanges?: () => void;
  log?: (line: string) => void;
}

/** A directory the extension enumerated: what it held when last listed. */
interface Watch {
  entries: Map<string, Attr>;
  listedAt: number;
}

function kindOf(attr: { mode: number }): ItemKind | undefined {
  switch (attr.mode & FileType.S_IFMT) {
    case FileType.S_IFDIR:
      return 'folder';
    case FileType.S_IFLNK:
      return 'symlink';
    case FileType.S_IFREG:
      return 'file';
    default:
      // FIFOs, sockets and devices: reading one over SFTP blocks or fails, so they are not shown.
      return undefined;
  }
}

/**
 * What makes an item "changed" for the journal. A folder's mtime is left
 * out: it moves whenever a child comes or goes, and those children are
 * reported themselves.
 */
function signature(attr: Attr): string {
  const perms = attr.mode & 0o7777;
  switch (kindOf(attr)) {
    case 'folder':
      return `d:${perms}`;
    case 'symlink':
      return `l:${attr.size}:${attr.mtimeMs}`;
    default:
      return `f:${attr.size}:${attr.mtimeMs}:${perms}`;
  }
}

const baseName = (path: string) => path.slice(path.lastIndexOf('/') + 1);

function clampLimit(value: number | undefined, limits: { fallback: number; max: number }): number {
  if (value === undefined) return limits.fallback;
  return Math.min(limits.max, Math.max(1, Math.floor(value)));
}

const ERRNO_CODES: Partial<Record<string, ErrorCode>> = {
  ENOENT: 'notFound',
  EEXIST: 'exists',
  ENOTEMPTY: 'notEmpty',
  ENOTDIR: 'notDirectory',
  EISDIR: 'isDirectory',
  EROFS: 'readOnly',
  EACCES: 'denied',
  EPERM: 'denied',
  ETIMEDOUT: 'timeout',
  ENOTCONN: 'unavailable',
  ENOSYS: 'notSupported',
  ENOTSUP: 'notSupported',
  EINVAL: 'badRequest',
  ENAMETOOLONG: 'badRequest',
};

async function mapLimit<T>(items: T[], parallel: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(parallel, items.length) }, worker));
}

/**
 * The tmount side of one FileProvider domain: serves the extension's
 * requests over RemoteFs, keeps the change journal, and follows the
 * directories the extension enumerated. Remote changes are noticed by
 * listing those directories again (on a changes request when the listing is
 * older than the cache TTL, and on the watch interval); changes made through
 * the extension are journaled as they are made.
 */
export class FileProviderServer {
  readonly journal: ChangeJournal;
  readonly ids = new IdTable();
  private readonly watched = new Map<string, Watch>();
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  private timer: NodeJS.Timeout | undefined;
  private rescanning: Promise<boolean> | undefined;
  private closed = false;

  constructor(
    private readonly fs: RemoteFs,
    private readonly options: FileProviderServerOptions,
  ) {
    this.journal = new ChangeJournal(options.journalCapacity ?? 10_000);
  }

  get hello(): Hello {
    return {
      type: 'hello',
      protocol: FP_PROTOCOL_VERSION,
      version: this.options.version,
      domain: this.options.domain,
      displayName: this.options.displayName,
      readonly: this.options.readonly,
      staging: resolve(this.options.stagingDir),
    };
  }

  /** Directories whose changes are followed (mount-relative paths), for tests and status. */
  get watchedDirs(): string[] {
    return [...this.watched.keys()];
  }

  async listen(): Promise<void> {
    await mkdir(this.options.stagingDir, { recursive: true, mode: 0o700 });
    await this.emptyStaging();
    // The caller made sure no live process owns this socket: what is there is a leftover.
    await rm(this.options.socketPath, { force: true });
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    await new Promise<void>((resolvePromise, reject) => {
      server.once('error', reject);
      // As for the control socket: the umask makes it 0600 from its first moment.
      const previous = process.umask(0o177);
      server.listen(this.options.socketPath, () => {
        process.umask(previous);
        chmodSync(this.options.socketPath, 0o600);
        server.off('error', reject);
        resolvePromise();
      });
    });
    if (this.options.watchIntervalMs > 0) {
      this.timer = setInterval(() => void this.watchTick(), this.options.watchIntervalMs);
      this.timer.unref();
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolvePromise) => (this.server ? this.server.close(() => resolvePromise()) : resolvePromise()));
    await rm(this.options.socketPath, { force: true });
    await this.emptyStaging().catch(() => {});
  }

  private async emptyStaging(): Promise<void> {
    for (const name of await readLocalDir(this.options.stagingDir).catch(() => [] as string[])) {
      await rm(join(this.options.stagingDir, name), { recursive: true, force: true });
    }
  }

  private async watchTick(): Promise<void> {
    if (this.closed) return;
    try {
      if (await this.rescan(false)) this.options.onRemoteChanges?.();
    } catch (err) {
      this.options.log?.(`fileprovider: watching for remote changes failed: ${(err as Error).message}`);
    }
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.setEncoding('utf8');
    socket.write(encodeLine(this.hello));
    const splitter = new LineSplitter(MAX_LINE);
    socket.on('data', (chunk: string) => {
      const { lines, overlong } = splitter.push(chunk);
      for (let i = 0; i < overlong; i++) {
        this.send(socket, { type: 'response', id: null, ok: false, error: { code: 'badRequest', message: `a request line longer than ${MAX_LINE} bytes was dropped` } });
      }
      for (const line of lines) void this.handleLine(socket, line);
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
  }

  private send(socket: Socket, response: Response): void {
    if (!socket.destroyed) socket.write(encodeLine(response));
  }

  private async handleLine(socket: Socket, line: string): Promise<void> {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch (err) {
      this.send(socket, { type: 'response', id: null, ok: false, error: { code: 'badRequest', message: `a line of ${line.length} bytes is not JSON: ${(err as Error).message}` } });
      return;
    }
    if (typeof message !== 'object' || message === null || Array.isArray(message) || !Number.isSafeInteger((message as { id?: unknown }).id)) {
      this.send(socket, { type: 'response', id: null, ok: false, error: { code: 'badRequest', message: 'a request is a JSON object with an integer id' } });
      return;
    }
    const request = message as RequestBase;
    try {
      if (request.v !== FP_PROTOCOL_VERSION) {
        throw new ProtocolError('unsupportedVersion', `this tmount speaks FileProvider protocol ${FP_PROTOCOL_VERSION}, the request is for ${JSON.stringify(request.v ?? null)}; install the tmount.app built with this tmount`, { protocol: FP_PROTOCOL_VERSION });
      }
      if (typeof request.op !== 'string' || !(OPS as readonly string[]).includes(request.op)) {
        throw new ProtocolError('unknownOp', `unknown op ${JSON.stringify(request.op ?? null)}; known: ${OPS.join(', ')}`);
      }
      const result = await this.dispatch(request.op as Op, request);
      this.send(socket, { type: 'response', id: request.id, ok: true, result });
    } catch (err) {
      this.send(socket, { type: 'response', id: request.id, ok: false, error: this.toWireError(err, request) });
    }
  }

  private toWireError(err: unknown, request: RequestBase): WireError {
    if (err instanceof ProtocolError) return { code: err.code, message: err.message, ...err.extra };
    if (err instanceof FsError) return { code: ERRNO_CODES[err.code] ?? 'io', message: err.message };
    this.options.log?.(`fileprovider: internal error in ${request.op}: ${(err as Error)?.stack ?? String(err)}`);
    return { code: 'io', message: `${request.op}: ${(err as Error)?.message ?? String(err)}` };
  }

  private dispatch(op: Op, request: RequestBase): Promise<unknown> {
    switch (op) {
      case 'item':
        return this.item(request);
      case 'enumerate':
        return this.enumerate(request);
      case 'anchor':
        return Promise.resolve({ anchor: this.journal.anchor });
      case 'changes':
        return this.changes(request);
      case 'fetch':
        return this.fetch(request);
      case 'create':
        return this.create(request);
      case 'modify':
        return this.modify(request);
      case 'delete':
        return this.delete(request);
    }
  }

  /**
   * Runs `work` with the inode of `path` held by a lookup, as the kernel
   * holds one for the duration of a request, so the node cannot be dropped
   * under it. Walking by name needs no round trip.
   */
  private async withNode<T>(path: string, work: (ino: number) => Promise<T>): Promise<T> {
    if (path === '') return work(ROOT_INO);
    let parent = ROOT_INO;
    const parts = path.split('/');
    for (const part of parts.slice(0, -1)) parent = this.fs.peekIno(parent, part);
    const ino = this.fs.remember(parent, parts[parts.length - 1]!);
    try {
      return await work(ino);
    } finally {
      this.fs.forget(ino, 1);
    }
  }

  private withParent<T>(path: string, work: (parentIno: number, name: string) => Promise<T>): Promise<T> {
    return this.withNode(parentOf(path), (parentIno) => work(parentIno, baseName(path)));
  }

  private attrsOf(path: string): Promise<Attr> {
    return this.withNode(path, (ino) => this.fs.getattr(ino));
  }

  private pathOf(id: string, op: string): string {
    const path = id === WORKING_SET || id === TRASH ? undefined : this.ids.pathOf(id);
    if (path === undefined) throw new ProtocolError('notFound', `${op}: no item has the identifier ${JSON.stringify(id)}`);
    return path;
  }

  private async folderPath(id: string, op: string): Promise<string> {
    const path = this.pathOf(id, op);
    if (kindOf(await this.attrsOf(path)) !== 'folder') throw new ProtocolError('notDirectory', `${op}: ${JSON.stringify(id)} is not a folder`);
    return path;
  }

  private async toItem(path: string, attr: Attr): Promise<WireItem> {
    const kind = kindOf(attr) ?? 'file';
    const perms = attr.mode & 0o7777;
    const item: WireItem = {
      id: this.ids.idFor(path),
      parent: path === '' ? ROOT_ID : this.ids.idFor(parentOf(path)),
      name: path === '' ? this.options.rootName : baseName(path),
      kind,
      size: kind === 'folder' ? 0 : attr.size,
      mtime: attr.mtimeMs,
      mode: perms,
      contentVersion: kind === 'folder' ? 'd' : kind === 'symlink' ? `l:${attr.size}:${attr.mtimeMs}` : `${attr.size}:${attr.mtimeMs}`,
      metadataVersion: kind === 'folder' ? `${perms}` : `${perms}:${attr.mtimeMs}`,
      writable: !this.options.readonly,
    };
    if (kind === 'symlink') item.target = await this.withNode(path, (ino) => this.fs.readlink(ino)).catch(() => '');
    return item;
  }

  private async item(request: RequestBase): Promise<{ item: WireItem }> {
    const path = this.pathOf(field(request, 'identifier', 'string', true)!, 'item');
    return { item: await this.toItem(path, await this.attrsOf(path)) };
  }

  private async enumerate(request: RequestBase): Promise<{ items: WireItem[]; nextPage: string | null }> {
    const container = field(request, 'container', 'string', true)!;
    const page = field(request, 'page', 'string', false);
    const limit = clampLimit(field(request, 'limit', 'number', false), PAGE);
    if (container === TRASH) return { items: [], nextPage: null };
    if (container === WORKING_SET) return this.enumerateWorkingSet(page, limit);
    const path = this.pathOf(container, 'enumerate');
    const attr = await this.attrsOf(path);
    // An enumerator on a document follows just that document.
    if (kindOf(attr) !== 'folder') return { items: [await this.toItem(path, attr)], nextPage: null };
    const entries = (await this.list(path))
      .filter((entry) => isValidName(entry.name) && kindOf(entry.attr) !== undefined)
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const start = page === undefined ? 0 : entries.findIndex((entry) => entry.name > page);
    const slice = start < 0 ? [] : entries.slice(start, start + limit);
    const more = start >= 0 && start + limit < entries.length;
    const items = await Promise.all(slice.map((entry) => this.toItem(childPath(path, entry.name), entry.attr)));
    return { items, nextPage: more ? slice[slice.length - 1]!.name : null };
  }

  /**
   * Everything in the followed directories, in path order: the items whose
   * changes the journal reports. Its pages are positions, not paths, since
   * FileProvider caps a page at 500 bytes and a path can be longer.
   */
  private async enumerateWorkingSet(page: string | undefined, limit: number): Promise<{ items: WireItem[]; nextPage: string | null }> {
    const all: [string, Attr][] = [];
    for (const [dir, watch] of this.watched) {
      for (const [name, attr] of watch.entries) all.push([childPath(dir, name), attr]);
    }
    all.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    const start = page === undefined ? 0 : Number(page);
    if (!Number.isSafeInteger(start) || start < 0) throw new ProtocolError('badRequest', `enumerate: ${JSON.stringify(page)} is not a page of the working set`);
    const slice = all.slice(start, start + limit);
    const items = await Promise.all(slice.map(([path, attr]) => this.toItem(path, attr)));
    return { items, nextPage: start + limit < all.length ? String(start + limit) : null };
  }

  private async changes(request: RequestBase): Promise<{ updated: WireItem[]; deleted: string[]; anchor: string; more: boolean }> {
    const container = field(request, 'container', 'string', true)!;
    const anchor = field(request, 'anchor', 'string', true)!;
    const limit = clampLimit(field(request, 'limit', 'number', false), BATCH);
    // An expired anchor is answered before any remote work: the system starts over anyway.
    const expired = this.journal.read(anchor, 1);
    if (!expired.ok) throw new ProtocolError('anchorExpired', `changes: ${expired.reason}`);
    await this.rescan(false);
    const read = this.journal.read(anchor, limit);
    if (!read.ok) throw new ProtocolError('anchorExpired', `changes: ${read.reason}`);
    const relevant = coalesce(read.entries).filter((entry) => this.concerns(container, entry));
    const updated: WireItem[] = [];
    const deleted: string[] = [];
    for (const entry of relevant) {
      const path = entry.kind === 'update' ? this.ids.pathOf(entry.id) : undefined;
      const attr = path === undefined ? undefined : await this.attrsOf(path).catch((err: unknown) => {
        if (err instanceof FsError && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) return undefined;
        throw err;
      });
      if (path !== undefined && attr !== undefined && kindOf(attr) !== undefined) updated.push(await this.toItem(path, attr));
      else deleted.push(entry.id);
    }
    return { updated, deleted, anchor: read.anchor, more: read.more };
  }

  /** Whether a change belongs to what an enumerator on `container` follows. */
  private concerns(container: string, entry: JournalEntry): boolean {
    if (container === WORKING_SET) return true;
    if (container === TRASH) return false;
    return entry.id === container || entry.parent === container || entry.oldParent === container;
  }

  private async fetch(request: RequestBase): Promise<{ item: WireItem; path: string }> {
    const path = this.pathOf(field(request, 'identifier', 'string', true)!, 'fetch');
    const kind = kindOf(await this.attrsOf(path));
    if (kind !== 'file') throw new ProtocolError(kind === 'folder' ? 'isDirectory' : 'notSupported', `fetch: ${path || '/'} is a ${kind ?? 'special file'}, only files have contents`);
    const staged = join(this.options.stagingDir, `fetch-${randomBytes(8).toString('hex')}`);
    try {
      const attr = await this.withNode(path, async (ino) => {
        const opened = await this.fs.open(ino, O_RDONLY);
        const out = await open(staged, 'wx', 0o600);
        try {
          for (let offset = 0; ; ) {
            const data = await this.fs.read(opened.fh, offset, CHUNK);
            if (data.length === 0) break;
            await out.write(data, 0, data.length, offset);
            offset += data.length;
          }
        } finally {
          await out.close();
          await this.fs.release(opened.fh);
        }
        return opened.attr;
      });
      return { item: await this.toItem(path, attr), path: staged };
    } catch (err) {
      await rm(staged, { force: true });
      throw err;
    }
  }

  /** A file the extension staged for upload: only regular files inside the staging directory are read. */
  private async stagedFile(request: RequestBase): Promise<string | undefined> {
    const given = field(request, 'contents', 'string', false);
    if (given === undefined) return undefined;
    const full = resolve(given);
    const info = await lstat(full).catch(() => undefined);
    if (!info?.isFile()) throw new ProtocolError('badRequest', `${request.op}: the staged contents ${full} are not a regular file`);
    // Through the real paths, so a symlinked folder inside staging cannot point elsewhere.
    const inside = relative(await realpath(this.options.stagingDir), await realpath(full));
    if (inside === '' || inside.startsWith('..') || isAbsolute(inside)) {
      throw new ProtocolError('badRequest', `${request.op}: contents must be staged in ${this.hello.staging}`);
    }
    return full;
  }

  private async upload(fh: number, staged: string): Promise<void> {
    const input = await open(staged, 'r');
    try {
      for (let offset = 0; ; ) {
        // RemoteFs keeps the buffer it is given: each chunk gets its own.
        const chunk = Buffer.allocUnsafe(CHUNK);
        const { bytesRead } = await input.read(chunk, 0, CHUNK, offset);
        if (bytesRead === 0) break;
        await this.fs.write(fh, offset, bytesRead === CHUNK ? chunk : chunk.subarray(0, bytesRead));
        offset += bytesRead;
      }
    } finally {
      await input.close();
    }
  }

  private async collision(op: string, path: string): Promise<ProtocolError> {
    const attr = await this.attrsOf(path).catch(() => undefined);
    const item = attr && kindOf(attr) ? await this.toItem(path, attr) : undefined;
    return new ProtocolError('exists', `${op}: ${path} already exists`, item ? { item } : {});
  }

  private async create(request: RequestBase): Promise<{ item: WireItem }> {
    const staged = await this.stagedFile(request);
    try {
      const parentPath = await this.folderPath(field(request, 'parent', 'string', true)!, 'create');
      const name = field(request, 'filename', 'string', true)!;
      if (!isValidName(name)) throw new ProtocolError('badRequest', `create: ${JSON.stringify(name)} is not a file name`);
      const kind = field(request, 'kind', 'string', true)!;
      const mtime = field(request, 'mtime', 'number', false);
      const mayExist = field(request, 'mayExist', 'boolean', false) ?? false;
      if (this.options.readonly) throw new ProtocolError('readOnly', 'create: the mount is read-only');
      const path = childPath(parentPath, name);
      const exists = (err: unknown) => err instanceof FsError && err.code === 'EEXIST';
      switch (kind) {
        case 'folder':
          try {
            const entry = await this.withNode(parentPath, (parentIno) => this.fs.mkdir(parentIno, name, 0o755));
            this.fs.forget(entry.ino, 1);
          } catch (err) {
            if (!exists(err)) throw err;
            const existing = await this.attrsOf(path);
            if (!mayExist || kindOf(existing) !== 'folder') throw await this.collision('create', path);
          }
          break;
        case 'symlink': {
          const target = field(request, 'target', 'string', true)!;
          try {
            const entry = await this.withNode(parentPath, (parentIno) => this.fs.symlink(parentIno, name, target));
            this.fs.forget(entry.ino, 1);
          } catch (err) {
            throw exists(err) ? await this.collision('create', path) : err;
          }
          break;
        }
        case 'file': {
          const flags = O_WRONLY | O_CREAT | (mayExist ? O_TRUNC : O_EXCL);
          let created: { fh: number; entry: { ino: number } };
          try {
            created = await this.withNode(parentPath, (parentIno) => this.fs.create(parentIno, name, 0o644, flags));
          } catch (err) {
            throw exists(err) ? await this.collision('create', path) : err;
          }
          try {
            if (staged) await this.upload(created.fh, staged);
          } finally {
            await this.fs.release(created.fh);
            this.fs.forget(created.entry.ino, 1);
          }
          break;
        }
        default:
          throw new ProtocolError('badRequest', `create: kind must be file, folder or symlink, not ${JSON.stringify(kind)}`);
      }
      if (mtime !== undefined && kind !== 'symlink') await this.withNode(path, (ino) => this.fs.setattr(ino, { mtimeMs: mtime }));
      const attr = await this.attrsOf(path);
      this.noteLocal(path, attr);
      return { item: await this.toItem(path, attr) };
    } finally {
      if (staged) await rm(staged, { force: true });
    }
  }

  private async modify(request: RequestBase): Promise<{ item: WireItem }> {
    const staged = await this.stagedFile(request);
    try {
      let path = this.pathOf(field(request, 'identifier', 'string', true)!, 'modify');
      const newName = field(request, 'filename', 'string', false);
      const newParent = field(request, 'parent', 'string', false);
      const mtime = field(request, 'mtime', 'number', false);
      if (newParent === TRASH) throw new ProtocolError('notSupported', 'modify: this domain has no trash; delete the item instead');
      if (newName !== undefined && !isValidName(newName)) throw new ProtocolError('badRequest', `modify: ${JSON.stringify(newName)} is not a file name`);
      if (this.options.readonly) throw new ProtocolError('readOnly', 'modify: the mount is read-only');
      const current = await this.attrsOf(path);
      const parentPath = newParent === undefined ? parentOf(path) : await this.folderPath(newParent, 'modify');
      const target = childPath(parentPath, newName ?? baseName(path));
      if (target !== path) {
        if (path === '') throw new ProtocolError('denied', 'modify: the root of the mount cannot be renamed or moved');
        const from = path;
        try {
          await this.withParent(from, (fromParent, fromName) =>
            this.withParent(target, (toParent, toName) => this.fs.rename(fromParent, fromName, toParent, toName, { noReplace: true })),
          );
        } catch (err) {
          throw err instanceof FsError && err.code === 'EEXIST' ? await this.collision('modify', target) : err;
        }
        this.noteMoved(from, target, current);
        path = target;
      }
      if (staged) {
        if (kindOf(current) !== 'file') throw new ProtocolError('isDirectory', `modify: only a file has contents, ${path} is a ${kindOf(current)}`);
        await this.withNode(path, async (ino) => {
          const { fh } = await this.fs.open(ino, O_WRONLY | O_TRUNC);
          try {
            await this.upload(fh, staged);
          } finally {
            await this.fs.release(fh);
          }
        });
      }
      if (mtime !== undefined && kindOf(current) !== 'symlink') await this.withNode(path, (ino) => this.fs.setattr(ino, { mtimeMs: mtime }));
      const attr = await this.attrsOf(path);
      this.noteLocal(path, attr);
      return { item: await this.toItem(path, attr) };
    } finally {
      if (staged) await rm(staged, { force: true });
    }
  }

  private async delete(request: RequestBase): Promise<Record<string, never>> {
    const id = field(request, 'identifier', 'string', true)!;
    const recursive = field(request, 'recursive', 'boolean', false) ?? false;
    // An identifier nobody has any more was deleted already: FileProvider wants success.
    const path = id === WORKING_SET || id === TRASH ? undefined : this.ids.pathOf(id);
    if (path === undefined) return {};
    if (path === '') throw new ProtocolError('denied', 'delete: the root of the mount cannot be deleted');
    if (this.options.readonly) throw new ProtocolError('readOnly', 'delete: the mount is read-only');
    const attr = await this.attrsOf(path).catch((err: unknown) => {
      if (err instanceof FsError && err.code === 'ENOENT') return undefined;
      throw err;
    });
    if (attr) {
      if (kindOf(attr) === 'folder') {
        if (recursive) await this.removeTree(path);
        else await this.withParent(path, (parentIno, name) => this.fs.rmdir(parentIno, name));
      } else {
        await this.withParent(path, (parentIno, name) => this.fs.unlink(parentIno, name));
      }
    }
    this.noteRemoved(path);
    return {};
  }

  private async removeTree(path: string): Promise<void> {
    const entries = await this.withNode(path, (ino) => this.fs.readdir(ino));
    for (const entry of entries) {
      const child = childPath(path, entry.name);
      if (kindOf(entry.attr) === 'folder') await this.removeTree(child);
      else await this.withParent(child, (parentIno, name) => this.fs.unlink(parentIno, name));
    }
    await this.withParent(path, (parentIno, name) => this.fs.rmdir(parentIno, name));
  }

  /** Lists a directory and starts (or goes on) following it; differences from its last listing are journaled. */
  private async list(path: string): Promise<DirEntry[]> {
    const entries = await this.withNode(path, (ino) => this.fs.readdir(ino));
    this.observe(path, entries);
    return entries;
  }

  private observe(dir: string, entries: DirEntry[]): void {
    const fresh = new Map<string, Attr>();
    for (const entry of entries) if (isValidName(entry.name) && kindOf(entry.attr) !== undefined) fresh.set(entry.name, entry.attr);
    const previous = this.watched.get(dir);
    this.watched.delete(dir);
    this.watched.set(dir, { entries: fresh, listedAt: Date.now() });
    this.evictWatches();
    if (!previous) return;
    const dirId = this.ids.idFor(dir);
    for (const [name, attr] of fresh) {
      const path = childPath(dir, name);
      const before = previous.entries.get(name);
      if (before && kindOf(before) !== kindOf(attr)) {
        // FileProvider cannot turn a file into a folder: the old item goes, a new one comes.
        this.gone(path, dirId);
        this.journal.record({ kind: 'update', id: this.ids.idFor(path), parent: dirId });
      } else if (!before || signature(before) !== signature(attr)) {
        this.journal.record({ kind: 'update', id: this.ids.idFor(path), parent: dirId });
      }
    }
    for (const name of previous.entries.keys()) if (!fresh.has(name)) this.gone(childPath(dir, name), dirId);
  }

  private evictWatches(): void {
    const max = this.options.maxWatchedDirs ?? 2_000;
    for (const dir of this.watched.keys()) {
      if (this.watched.size <= max) return;
      if (dir !== '') this.watched.delete(dir);
    }
  }

  /** The item at `path` is gone: its identifier and those below it are journaled as deleted and forgotten. */
  private gone(path: string, parentId: string): void {
    const removed = new Map<string, string>();
    for (const id of this.ids.subtree(path)) {
      const known = this.ids.pathOf(id);
      if (known !== undefined) removed.set(known, id);
    }
    for (const [known, id] of removed) {
      this.journal.record({ kind: 'delete', id, parent: known === path ? parentId : (removed.get(parentOf(known)) ?? parentId) });
    }
    this.ids.remove(path);
    for (const dir of [...this.watched.keys()]) if (dir === path || isInside(dir, path)) this.watched.delete(dir);
  }

  private noteLocal(path: string, attr: Attr): void {
    const parent = parentOf(path);
    if (path !== '') this.watched.get(parent)?.entries.set(baseName(path), attr);
    this.journal.record({ kind: 'update', id: this.ids.idFor(path), parent: path === '' ? ROOT_ID : this.ids.idFor(parent) });
  }

  private noteMoved(from: string, to: string, attr: Attr): void {
    const oldParent = this.ids.idFor(parentOf(from));
    this.watched.get(parentOf(from))?.entries.delete(baseName(from));
    const replaced = this.watched.get(parentOf(to))?.entries.get(baseName(to));
    if (replaced) this.gone(to, this.ids.idFor(parentOf(to)));
    this.ids.move(from, to);
    for (const [dir, watch] of [...this.watched]) {
      if (dir === from || isInside(dir, from)) {
        this.watched.delete(dir);
        this.watched.set(to + dir.slice(from.length), watch);
      }
    }
    this.watched.get(parentOf(to))?.entries.set(baseName(to), attr);
    this.journal.record({ kind: 'update', id: this.ids.idFor(to), parent: this.ids.idFor(parentOf(to)), oldParent });
  }

  private noteRemoved(path: string): void {
    const parent = parentOf(path);
    this.watched.get(parent)?.entries.delete(baseName(path));
    this.gone(path, this.ids.idFor(parent));
  }

  /**
   * Lists the followed directories again (all of them with `force`, else
   * those listed longer ago than the TTL) and journals what changed.
   * Concurrent callers share one pass. Resolves true when the journal grew.
   */
  rescan(force: boolean): Promise<boolean> {
    if (this.rescanning) return this.rescanning;
    const pass = (async () => {
      const before = this.journal.position;
      const now = Date.now();
      const due = [...this.watched.entries()]
        .filter(([, watch]) => force || now - watch.listedAt >= this.options.rescanAfterMs)
        .map(([dir]) => dir);
      await mapLimit(due, RESCAN_PARALLEL, async (dir) => {
        if (this.closed || !this.watched.has(dir)) return;
        try {
          const entries = await this.withNode(dir, (ino) => this.fs.readdir(ino));
          if (this.watched.has(dir)) this.observe(dir, entries);
        } catch (err) {
          if (err instanceof FsError && (err.code === 'ENOENT' || err.code === 'ENOTDIR')) {
            if (!this.watched.has(dir) || dir === '') return;
            this.watched.get(parentOf(dir))?.entries.delete(baseName(dir));
            this.gone(dir, this.ids.idFor(parentOf(dir)));
          } else {
            this.options.log?.(`fileprovider: re-reading ${dir || '/'} failed: ${(err as Error).message}`);
          }
        }
      });
      return this.journal.position !== before;
    })();
    this.rescanning = pass.finally(() => {
      this.rescanning = undefined;
    });
    return this.rescanning;
  }
}
