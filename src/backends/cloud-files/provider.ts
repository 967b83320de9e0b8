import { constants as fsConstants } from 'node:fs';
import { open } from 'node:fs/promises';
import { FsError } from '../../vfs/errors.js';
import { type Attr, ROOT_INO, type RemoteFs } from '../../vfs/remote-fs.js';
import type { CfPinState } from './addon-types.js';
import { baseName, isWithin, joinPath, parentPath } from './paths.js';
import {
  type FetchRange,
  type LocalState,
  type PlaceholderOutcome,
  type PlaceholderSpec,
  placeholdersOf,
  planTransfer,
  specChanged,
} from './placeholders.js';

const O_RDONLY = fsConstants.O_RDONLY ?? 0;
const O_WRONLY = fsConstants.O_WRONLY ?? 1;
const O_TRUNC = fsConstants.O_TRUNC ?? 0o1000;

/**
 * The local side of a sync root, as the provider needs it: on Windows the
 * Cloud Files API through the addon (windows-port.ts), in tests an
 * in-memory stand-in over a temp directory. Paths are mount-relative.
 */
export interface SyncRootPort {
  /** Creates placeholders in a local directory outside any callback (CfCreatePlaceholders). */
  createPlaceholders(dir: string, specs: PlaceholderSpec[]): Promise<Map<string, PlaceholderOutcome>>;
  /**
   * Gives a placeholder the remote's new metadata and, for files, drops its
   * local data; refuses (rejects) when the file was changed locally meanwhile.
   */
  updatePlaceholder(path: string, spec: PlaceholderSpec): Promise<void>;
  /** Makes the platform ask for a directory's children again at its next enumeration. */
  markStale(dir: string): Promise<void>;
  localState(path: string): Promise<LocalState | undefined>;
  /** Sets the in-sync bit, only if the file still has `usn`; resolves false when it changed meanwhile. */
  markInSync(path: string, usn: bigint | undefined): Promise<boolean>;
  /** Takes a new local file or directory over as a placeholder, not yet in sync. */
  convertToPlaceholder(path: string, isDirectory: boolean): Promise<void>;
  /** Fetches all of a file's data (the platform asks this very provider for it). */
  hydrate(path: string): Promise<void>;
  dehydrate(path: string): Promise<void>;
  setPinState(path: string, state: CfPinState, recurse: boolean): Promise<void>;
  /** Deletes a local file or directory tree. */
  remove(path: string, isDirectory: boolean): Promise<void>;
  /** The local entries of a directory. */
  list(dir: string): Promise<{ name: string; isDirectory: boolean }[]>;
  /** Where node:fs reads a local file. */
  localFile(path: string): string;
}

/** Receives the placeholders of a FETCH_PLACEHOLDERS answer and reports what became of each. */
export type PlaceholderSink = (specs: PlaceholderSpec[]) => Promise<Map<string, PlaceholderOutcome>>;
/** Receives the data of a FETCH_DATA answer, one block-aligned chunk at a time. */
export type DataSink = (offset: number, data: Buffer) => Promise<void>;

/** Thrown into a fetch the platform cancelled: it ends without an answer. */
export class FetchCancelled extends Error {
  constructor(path: string) {
    super(`fetch of ${path} was cancelled`);
    this.name = 'FetchCancelled';
  }
}

export interface ProviderOptions {
  readonly: boolean;
  /** Bytes per TRANSFER_DATA call (a multiple of 4 KiB). */
  chunkBytes: number;
  /** How far past the requested range a fetch may read when the platform says more is missing. */
  readAheadBytes: number;
  /** A listing older than this is asked for again at the directory's next enumeration. */
  dirTtlMs: number;
  /** Directories enumerated this recently are compared with the remote on every watch tick. */
  activeDirMs: number;
  /** How often the watch tick runs. */
  watchIntervalMs: number;
  /** First retry delay of a failed upload; it doubles up to `maxRetryMs`. */
  retryMs: number;
  maxRetryMs: number;
  /** --debug lines. */
  log?: (line: string) => void;
  /** Things the user should hear about (left-out names, failed uploads, conflicts). */
  notice?: (line: string) => void;
  now?: () => number;
}

export const DEFAULT_PROVIDER_OPTIONS: ProviderOptions = {
  readonly: false,
  chunkBytes: 1024 * 1024,
  readAheadBytes: 8 * 1024 * 1024,
  dirTtlMs: 20_000,
  activeDirMs: 10 * 60_000,
  watchIntervalMs: 20_000,
  retryMs: 5_000,
  maxRetryMs: 5 * 60_000,
};

export interface FailedUpload {
  path: string;
  error: string;
  since: string;
  attempts: number;
  /** When the watch tick tries again; null when only a new local change will. */
  nextRetry: string | null;
}

interface DirState {
  /** What the provider last put (or found) in the local directory, by name. */
  entries: Map<string, PlaceholderSpec>;
  listedAt: number;
  browsedAt: number;
  /** On-demand population was switched back on: the next enumeration asks again. */
  stale: boolean;
}

interface Failure {
  error: string;
  since: number;
  attempts: number;
  retryAt: number;
}

interface RunningUpload {
  again: boolean;
  done: Promise<void>;
}

/** Rounds one upload call makes while the file keeps changing under it. */
const MAX_UPLOAD_ROUNDS = 3;

const isCode = (err: unknown, ...codes: string[]) => err instanceof FsError && codes.includes(err.code);
const describe = (err: unknown) => (err instanceof Error ? err.message : String(err));

/**
 * The Cloud Files provider: everything that decides what a sync root shows
 * and what local changes do to the remote, over RemoteFs and a SyncRootPort.
 * The addon's callbacks reach it through CloudFilesDriver; tests call the
 * same methods. Runs on the JS main thread only; its maps are not shared.
 *
 * Remote changes reach the local side three ways: when a directory is
 * enumerated (FETCH_PLACEHOLDERS, answered from RemoteFs's listing cache),
 * on the watch tick for recently browsed directories, and because a listing
 * older than the directory TTL is marked stale so that the next enumeration
 * asks again. Local changes go up when a placeholder is closed after a
 * change, and for new local files when the watcher reports them.
 */
export class CloudFilesProvider {
  readonly options: ProviderOptions;
  private readonly dirs = new Map<string, DirState>();
  /** Paths the provider itself is deleting locally: their NOTIFY_DELETE must not touch the remote. */
  private readonly removals = new Set<string>();
  private readonly uploads = new Map<string, RunningUpload>();
  private readonly failures = new Map<string, Failure>();
  private readonly pins = new Map<string, CfPinState>();
  private readonly skippedNoted = new Set<string>();
  /** CfHydratePlaceholder holds a pool thread until this provider answers: one at a time. */
  private hydrating: Promise<void> = Promise.resolve();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;

  constructor(
    private readonly fs: RemoteFs,
    private readonly port: SyncRootPort,
    options: Partial<ProviderOptions> = {},
  ) {
    this.options = { ...DEFAULT_PROVIDER_OPTIONS, ...options };
  }

  private now(): number {
    return this.options.now?.() ?? Date.now();
  }

  private log(line: string): void {
    this.options.log?.(`cloud-files: ${line}`);
  }

  private notice(line: string): void {
    this.options.notice?.(`cloud-files: ${line}`);
  }

  /** Runs `work` with the ino of `path`, giving back the lookups taken on the way. */
  private async withIno<T>(path: string, work: (ino: number, attr: Attr | undefined) => Promise<T>): Promise<T> {
    const taken: number[] = [];
    let ino = ROOT_INO;
    let attr: Attr | undefined;
    try {
      for (const name of path === '' ? [] : path.split('/')) {
        const entry = await this.fs.lookup(ino, name);
        taken.push(entry.ino);
        ino = entry.ino;
        attr = entry.attr;
      }
      return await work(ino, attr);
    } finally {
      for (const done of taken.reverse()) this.fs.forget(done, 1);
    }
  }

  private withParent<T>(path: string, work: (parentIno: number, name: string) => Promise<T>): Promise<T> {
    return this.withIno(parentPath(path), (ino) => work(ino, baseName(path)));
  }

  private writable(op: string, path: string): void {
    if (this.options.readonly) throw new FsError('EROFS', op, path, 'mounted read-only');
  }

  /** The placeholders of a remote directory: files and directories Windows can name, with sizes and times. */
  async listPlaceholders(dir: string): Promise<PlaceholderSpec[]> {
    const entries = await this.withIno(dir, (ino) => this.fs.readdir(ino));
    const { specs, skipped } = placeholdersOf(dir, entries, this.options.readonly);
    for (const { name, reason } of skipped) {
      const key = joinPath(dir, name);
      if (this.skippedNoted.has(key)) continue;
      this.skippedNoted.add(key);
      this.notice(`'${key}' is not shown: it ${reason}`);
    }
    return specs;
  }

  /**
   * FETCH_PLACEHOLDERS: hands `sink` the placeholders the local directory
   * does not have yet, then (after the answer is out, so the enumeration
   * does not wait) brings existing ones up to date and removes those gone
   * from the remote. A directory gone from the remote answers with nothing.
   */
  async fetchPlaceholders(dir: string, sink: PlaceholderSink): Promise<void> {
    let specs: PlaceholderSpec[];
    try {
      specs = await this.listPlaceholders(dir);
    } catch (err) {
      if (!isCode(err, 'ENOENT', 'ENOTDIR')) throw err;
      specs = [];
    }
    const previous = this.dirs.get(dir)?.entries;
    const fresh = previous ? specs.filter((spec) => !previous.has(spec.name)) : specs;
    const outcomes = await sink(fresh);
    this.log(`listed '${dir}': ${specs.length} entries, ${fresh.length} new`);
    const now = this.now();
    const state: DirState = { entries: new Map(), listedAt: now, browsedAt: now, stale: false };
    this.dirs.set(dir, state);
    await this.followUp(state, previous, specs, outcomes);
  }

  /** One watch-tick comparison of a populated directory with the remote. */
  async reconcile(dir: string): Promise<void> {
    const state = this.dirs.get(dir);
    if (!state) return;
    let specs: PlaceholderSpec[];
    try {
      specs = await this.listPlaceholders(dir);
    } catch (err) {
      // Gone from the remote: the parent's comparison removes it.
      if (isCode(err, 'ENOENT', 'ENOTDIR')) return;
      throw err;
    }
    const previous = state.entries;
    const fresh = specs.filter((spec) => !previous.has(spec.name));
    const outcomes = fresh.length > 0 ? await this.port.createPlaceholders(dir, fresh) : new Map<string, PlaceholderOutcome>();
    state.entries = new Map();
    state.listedAt = this.now();
    await this.followUp(state, previous, specs, outcomes);
  }

  /**
   * After new placeholders were made: existing ones the remote changed get
   * its metadata, ones it deleted are removed locally, and entries found
   * already there (left from an earlier mount, or made here) are checked.
   * Whatever fails keeps its old record, so the next comparison tries again.
   */
  private async followUp(
    state: DirState,
    previous: Map<string, PlaceholderSpec> | undefined,
    specs: PlaceholderSpec[],
    outcomes: Map<string, PlaceholderOutcome>,
  ): Promise<void> {
    for (const spec of specs) {
      const outcome = outcomes.get(spec.name);
      const before = previous?.get(spec.name);
      if (outcome === 'failed') continue;
      try {
        if (outcome === 'exists' && !before) await this.adopt(spec);
        else if (before && specChanged(before, spec)) await this.remoteChanged(spec);
        state.entries.set(spec.name, spec);
      } catch (err) {
        this.notice(`cannot bring '${spec.path}' up to date: ${describe(err)}`);
        if (before) state.entries.set(spec.name, before);
      }
    }
    const current = new Set(specs.map((spec) => spec.name));
    for (const [name, before] of previous ?? []) {
      if (current.has(name)) continue;
      try {
        if (!(await this.remoteGone(before))) state.entries.set(name, before);
      } catch (err) {
        this.notice(`cannot remove '${before.path}', deleted on the remote: ${describe(err)}`);
        state.entries.set(name, before);
      }
    }
  }

  /** An entry that was already in the local directory when the provider put its placeholder there. */
  private async adopt(spec: PlaceholderSpec): Promise<void> {
    const local = await this.port.localState(spec.path);
    if (!local) return;
    if (local.isDirectory) {
      // Its children may be from an earlier mount: list them again when opened.
      if (local.placeholder) await this.port.markStale(spec.path);
      return;
    }
    if (!local.placeholder) {
      // A file tmount never had (the folder was not empty): replacing the
      // remote one with it unasked could destroy either; it goes up only
      // once it is changed here.
      this.notice(`'${spec.path}' is both here (not from this mount) and on the remote; the local file is kept and not uploaded until it changes`);
      return;
    }
    if (!local.inSync) {
      // Changes from an earlier mount that never reached the remote: they win, as on close.
      this.upload(spec.path).catch(() => {});
      return;
    }
    // Size only: a file uploaded from here keeps its local write time, older
    // than the remote's, so times would call every such file changed.
    if (local.size !== spec.size) await this.remoteChanged(spec);
  }

  private async remoteChanged(spec: PlaceholderSpec): Promise<void> {
    const local = await this.port.localState(spec.path);
    if (!local) {
      await this.port.createPlaceholders(parentPath(spec.path), [spec]);
      return;
    }
    if (local.isDirectory !== spec.isDirectory) {
      this.notice(`'${spec.path}' is a ${spec.isDirectory ? 'directory' : 'file'} on the remote but not here; the local one is kept`);
      return;
    }
    if (!local.placeholder || !local.inSync) {
      this.notice(`'${spec.path}' changed both here and on the remote; the local copy is kept and replaces the remote one when uploaded`);
      return;
    }
    this.log(`'${spec.path}' changed on the remote (${spec.size} bytes)`);
    if (spec.isDirectory) {
      // Its children changed: list them again when it is next opened.
      await this.port.updatePlaceholder(spec.path, spec);
      const state = this.dirs.get(spec.path);
      if (state && !state.stale) {
        await this.port.markStale(spec.path);
        state.stale = true;
      }
      return;
    }
    // A pinned file cannot be dehydrated: unpin, update, pin again and fetch the new data.
    const pinned = local.pin === 'pinned';
    if (pinned) await this.port.setPinState(spec.path, 'unspecified', false);
    try {
      await this.port.updatePlaceholder(spec.path, spec);
    } finally {
      if (pinned) await this.port.setPinState(spec.path, 'pinned', false);
    }
    if (pinned) void this.queueHydrate(spec.path).catch((err) => this.notice(`cannot fetch '${spec.path}' again: ${describe(err)}`));
  }

  /** Removes a local entry the remote deleted, unless it holds local changes; true when it is gone. */
  private async remoteGone(before: PlaceholderSpec): Promise<boolean> {
    const local = await this.port.localState(before.path);
    if (!local) return true;
    if (local.isDirectory ? !(await this.treeInSync(before.path)) : !local.placeholder || !local.inSync) {
      this.notice(`'${before.path}' was deleted on the remote but has local changes; it is kept`);
      return false;
    }
    this.log(`'${before.path}' was deleted on the remote`);
    await this.removeLocal(before.path, local.isDirectory);
    return true;
  }

  private async treeInSync(dir: string): Promise<boolean> {
    for (const entry of await this.port.list(dir)) {
      const path = joinPath(dir, entry.name);
      if (entry.isDirectory) {
        if (!(await this.treeInSync(path))) return false;
        continue;
      }
      const local = await this.port.localState(path);
      if (local && (!local.placeholder || !local.inSync)) return false;
    }
    return true;
  }

  private async removeLocal(path: string, isDirectory: boolean): Promise<void> {
    this.removals.add(path);
    try {
      await this.port.remove(path, isDirectory);
    } finally {
      this.removals.delete(path);
    }
    this.forgetTree(path);
  }

  private isOwnRemoval(path: string): boolean {
    for (const removal of this.removals) if (isWithin(path, removal)) return true;
    return false;
  }

  /** Drops every record at or below `path`. */
  private forgetTree(path: string): void {
    this.dirs.get(parentPath(path))?.entries.delete(baseName(path));
    for (const key of [...this.dirs.keys()]) if (isWithin(key, path) && key !== '') this.dirs.delete(key);
    for (const key of [...this.failures.keys()]) if (isWithin(key, path)) this.failures.delete(key);
    for (const key of [...this.pins.keys()]) if (isWithin(key, path)) this.pins.delete(key);
  }

  /**
   * FETCH_DATA: reads the planned range from the remote and hands it to
   * `sink` chunk by chunk, reading the next chunk while the previous one is
   * written. A file whose remote size no longer matches its placeholder is
   * refused and its placeholder refreshed, so a reader never gets a mix of
   * old and new content.
   */
  async fetchData(path: string, range: FetchRange, sink: DataSink, signal?: AbortSignal): Promise<void> {
    const chunks = planTransfer(range, { chunkBytes: this.options.chunkBytes, readAheadBytes: this.options.readAheadBytes });
    if (chunks.length === 0) return;
    await this.withIno(path, async (ino) => {
      const { fh, attr } = await this.fs.open(ino, O_RDONLY);
      let next: Promise<Buffer> | undefined;
      try {
        if (attr.size !== range.fileSize) {
          void this.reconcile(parentPath(path)).catch(() => {});
          throw new FsError('EIO', 'fetch', path, `the file changed on the remote (${range.fileSize} → ${attr.size} bytes); open it again`);
        }
        next = this.fs.read(fh, chunks[0]!.offset, chunks[0]!.length);
        for (let index = 0; index < chunks.length && next; index++) {
          const chunk = chunks[index]!;
          const data: Buffer = await next;
          const following = chunks[index + 1];
          next = following ? this.fs.read(fh, following.offset, following.length) : undefined;
          if (data.length !== chunk.length) throw new FsError('EIO', 'fetch', path, `the remote file is shorter than its placeholder (${chunk.offset + data.length} bytes)`);
          if (signal?.aborted) throw new FetchCancelled(path);
          await sink(chunk.offset, data);
        }
      } finally {
        next?.catch(() => {});
        await this.fs.release(fh).catch(() => {});
      }
    });
  }

  /** NOTIFY_DELETE: deletes the remote entry first; a failure refuses the local delete. */
  async delete(path: string, isDirectory: boolean): Promise<void> {
    if (this.isOwnRemoval(path)) return;
    this.writable('delete', path);
    // An upload still running would bring the file back on the remote.
    await this.uploads.get(path)?.done.catch(() => {});
    try {
      await this.withParent(path, (parent, name) => (isDirectory ? this.fs.rmdir(parent, name) : this.fs.unlink(parent, name)));
    } catch (err) {
      // Never uploaded, or already deleted there: nothing to do on the remote.
      if (!isCode(err, 'ENOENT')) throw err;
    }
    this.log(`deleted '${path}' on the remote`);
    this.forgetTree(path);
  }

  /**
   * NOTIFY_RENAME: renames on the remote first; a failure refuses the local
   * rename. Moving out of the sync root is refused: the remote copy would be
   * deleted while the local one may hold no data.
   */
  async rename(from: string, to: string | undefined, isDirectory: boolean): Promise<void> {
    if (to === undefined) throw new FsError('EXDEV', 'rename', from, 'moving out of the sync root would delete the remote copy; copy it out instead');
    this.writable('rename', from);
    if (from === to) return;
    await this.uploads.get(from)?.done.catch(() => {});
    try {
      await this.withParent(from, (fromParent, fromName) =>
        this.withParent(to, (toParent, toName) => this.fs.rename(fromParent, fromName, toParent, toName)),
      );
    } catch (err) {
      // A new local file whose upload has not happened yet: the upload takes its new name.
      const local = isCode(err, 'ENOENT') ? await this.port.localState(from) : undefined;
      if (!local || (local.placeholder && local.inSync)) throw err;
    }
    this.log(`renamed '${from}' to '${to}' on the remote`);
    this.moveRecords(from, to, isDirectory);
  }

  private moveRecords(from: string, to: string, isDirectory: boolean): void {
    const moved = (key: string) => to + key.slice(from.length);
    const spec = this.dirs.get(parentPath(from))?.entries.get(baseName(from));
    this.dirs.get(parentPath(from))?.entries.delete(baseName(from));
    if (spec) this.dirs.get(parentPath(to))?.entries.set(baseName(to), { ...spec, name: baseName(to), path: to });
    if (isDirectory) {
      for (const [key, state] of [...this.dirs]) {
        if (key === '' || !isWithin(key, from)) continue;
        this.dirs.delete(key);
        for (const [name, entry] of state.entries) state.entries.set(name, { ...entry, path: moved(entry.path) });
        this.dirs.set(moved(key), state);
      }
    }
    for (const [key, failure] of [...this.failures]) {
      if (!isWithin(key, from)) continue;
      this.failures.delete(key);
      this.failures.set(moved(key), { ...failure, retryAt: Math.min(failure.retryAt, this.now()) });
    }
  }

  /** NOTIFY_FILE_CLOSE_COMPLETION: a closed file that was changed goes up now. */
  async closed(path: string, deleted: boolean): Promise<void> {
    if (deleted) return;
    await this.upload(path).catch(() => {});
  }

  /**
   * Sends a local file or directory to the remote if it is new or changed
   * since it was last in sync, then marks it in sync. One upload per path at
   * a time; a request while one runs makes it run once more afterwards. A
   * failure is recorded (see `state()`), retried by the watch tick, and the
   * local file stays as it is, not in sync, so nothing is lost.
   */
  upload(path: string): Promise<void> {
    const running = this.uploads.get(path);
    if (running) {
      running.again = true;
      return running.done;
    }
    const entry: RunningUpload = { again: true, done: Promise.resolve() };
    entry.done = (async () => {
      try {
        for (let round = 0; entry.again; round++) {
          entry.again = false;
          if (round === MAX_UPLOAD_ROUNDS) throw new FsError('EIO', 'upload', path, 'the file kept changing while it was uploaded');
          if (await this.uploadOnce(path)) entry.again = true;
        }
        this.failures.delete(path);
      } catch (err) {
        this.recordFailure(path, err);
        throw err;
      } finally {
        this.uploads.delete(path);
      }
    })();
    this.uploads.set(path, entry);
    return entry.done;
  }

  /** One pass; true when the file changed during it and needs another. */
  private async uploadOnce(path: string): Promise<boolean> {
    let local = await this.port.localState(path);
    if (!local || (local.placeholder && local.inSync)) return false;
    this.writable('upload', path);
    if (local.isDirectory) {
      // Creates it on the remote and takes it over when it is new.
      await this.ensureRemoteDir(path);
      await this.port.markInSync(path, undefined);
      const attr = await this.withIno(path, async (_ino, found) => found);
      if (attr) this.remember(path, attr);
      if (!this.dirs.has(path)) this.dirs.set(path, { entries: new Map(), listedAt: 0, browsedAt: this.now(), stale: false });
      return false;
    }
    await this.ensureRemoteDir(parentPath(path));
    if (!local.placeholder) {
      await this.port.convertToPlaceholder(path, false);
      local = await this.port.localState(path);
      if (!local) return false;
    }
    const usn = local.usn;
    const attr = await this.sendFile(path);
    this.remember(path, attr);
    if (!(await this.port.markInSync(path, usn))) {
      this.log(`'${path}' changed while it was uploaded; uploading again`);
      return true;
    }
    this.log(`uploaded '${path}' (${attr.size} bytes)`);
    return false;
  }

  /** Writes the local file over the remote one (created when missing); resolves with the remote attributes after close. */
  private sendFile(path: string): Promise<Attr> {
    return this.withParent(path, async (parent, name) => {
      const { fh, entry } = await this.fs.create(parent, name, 0o644, O_WRONLY | O_TRUNC);
      try {
        const local = await open(this.port.localFile(path), 'r');
        try {
          for (let offset = 0; ; ) {
            // RemoteFs keeps each written buffer until it is flushed: a fresh one per chunk.
            const buffer = Buffer.allocUnsafe(this.options.chunkBytes);
            const { bytesRead } = await local.read(buffer, 0, buffer.length, offset);
            if (bytesRead === 0) break;
            await this.fs.write(fh, offset, buffer.subarray(0, bytesRead));
            offset += bytesRead;
          }
        } finally {
          await local.close();
        }
      } catch (err) {
        await this.fs.release(fh).catch(() => {});
        this.fs.forget(entry.ino, 1);
        throw err;
      }
      // Closing flushes: a failure here is the upload failing.
      try {
        await this.fs.release(fh);
      } finally {
        this.fs.forget(entry.ino, 1);
      }
      const after = await this.fs.lookup(parent, name);
      this.fs.forget(after.ino, 1);
      return after.attr;
    });
  }

  /**
   * Makes the remote directories a local path needs, top down, and takes
   * over local directories that are not placeholders yet (a placeholder's
   * parent must be one).
   */
  private async ensureRemoteDir(dir: string): Promise<void> {
    if (dir === '') return;
    await this.ensureRemoteDir(parentPath(dir));
    let created = false;
    try {
      await this.withIno(dir, async () => {});
    } catch (err) {
      if (!isCode(err, 'ENOENT')) throw err;
      await this.withParent(dir, async (parent, name) => {
        try {
          const made = await this.fs.mkdir(parent, name, 0o755);
          this.fs.forget(made.ino, 1);
        } catch (mkdirErr) {
          if (!isCode(mkdirErr, 'EEXIST')) throw mkdirErr;
        }
      });
      created = true;
    }
    const local = await this.port.localState(dir);
    if (!local || (local.placeholder && !created)) return;
    if (!local.placeholder) await this.port.convertToPlaceholder(dir, true);
    await this.port.markInSync(dir, undefined);
    // Now the provider's: the tick compares it with the remote like any browsed directory.
    if (!this.dirs.has(dir)) this.dirs.set(dir, { entries: new Map(), listedAt: this.now(), browsedAt: this.now(), stale: false });
  }

  private remember(path: string, attr: Attr): void {
    const { specs } = placeholdersOf(parentPath(path), [{ name: baseName(path), attr }], this.options.readonly);
    if (specs[0]) this.dirs.get(parentPath(path))?.entries.set(baseName(path), specs[0]);
  }

  private recordFailure(path: string, err: unknown): void {
    const previous = this.failures.get(path);
    const attempts = (previous?.attempts ?? 0) + 1;
    // A read-only mount refuses every time; only a new local change tries again.
    const delay = isCode(err, 'EROFS') ? Infinity : Math.min(this.options.maxRetryMs, this.options.retryMs * 2 ** (attempts - 1));
    this.failures.set(path, { error: describe(err), since: previous?.since ?? this.now(), attempts, retryAt: this.now() + delay });
    this.notice(`upload of '${path}' failed (attempt ${attempts}): ${describe(err)}; the local file is kept${Number.isFinite(delay) ? `, retrying in ${Math.round(delay / 1000)} s` : ''}`);
  }

  /** "Always keep on this device": fetches all data of a file, or of everything below a directory. */
  async pin(path: string): Promise<void> {
    const local = await this.port.localState(path);
    if (!local) throw new FsError('ENOENT', 'pin', path);
    if (local.isDirectory) await this.populateTree(path);
    await this.port.setPinState(path, 'pinned', local.isDirectory);
    this.pins.set(path, 'pinned');
    await this.hydrateTree(path, local.isDirectory);
  }

  /** "Free up space": drops the local data of in-sync files (changed ones keep theirs until uploaded). */
  async unpin(path: string): Promise<void> {
    const local = await this.port.localState(path);
    if (!local) throw new FsError('ENOENT', 'unpin', path);
    await this.port.setPinState(path, 'unpinned', local.isDirectory);
    this.pins.set(path, 'unpinned');
    await this.dehydrateTree(path, local.isDirectory);
  }

  /** Makes sure every remote entry below `dir` has a local placeholder. */
  private async populateTree(dir: string): Promise<void> {
    const specs = await this.listPlaceholders(dir);
    const state = this.dirs.get(dir);
    const missing = state ? specs.filter((spec) => !state.entries.has(spec.name)) : specs;
    if (missing.length > 0) await this.port.createPlaceholders(dir, missing);
    const now = this.now();
    const entries = new Map(specs.map((spec) => [spec.name, spec] as const));
    this.dirs.set(dir, { entries, listedAt: now, browsedAt: state?.browsedAt ?? now, stale: state?.stale ?? true });
    for (const spec of specs) if (spec.isDirectory) await this.populateTree(spec.path);
  }

  private async hydrateTree(path: string, isDirectory: boolean): Promise<void> {
    if (!isDirectory) {
      const local = await this.port.localState(path);
      if (local && !local.hydrated) await this.queueHydrate(path);
      return;
    }
    for (const entry of await this.port.list(path)) await this.hydrateTree(joinPath(path, entry.name), entry.isDirectory);
  }

  private async dehydrateTree(path: string, isDirectory: boolean): Promise<void> {
    if (isDirectory) {
      for (const entry of await this.port.list(path)) await this.dehydrateTree(joinPath(path, entry.name), entry.isDirectory);
      return;
    }
    const local = await this.port.localState(path);
    if (!local || !local.placeholder || !local.inSync || local.size === 0) return;
    try {
      await this.port.dehydrate(path);
    } catch (err) {
      this.notice(`cannot free the space of '${path}': ${describe(err)}`);
    }
  }

  private queueHydrate(path: string): Promise<void> {
    const run = this.hydrating.then(() => this.port.hydrate(path));
    this.hydrating = run.catch(() => {});
    return run;
  }

  /**
   * What the local watcher reports: a new or changed local file or
   * directory goes up; a pin state changed in Explorer is carried out.
   */
  async localChanged(path: string): Promise<void> {
    if (this.isOwnRemoval(path)) return;
    const local = await this.port.localState(path);
    if (!local) return;
    if (!local.placeholder || !local.inSync) {
      await this.upload(path).catch(() => {});
      return;
    }
    const before = this.pins.get(path);
    this.pins.set(path, local.pin);
    if (local.pin === before) return;
    if (local.pin === 'pinned') {
      if (local.isDirectory) await this.populateTree(path);
      await this.hydrateTree(path, local.isDirectory).catch((err) => this.notice(`cannot keep '${path}' on this device: ${describe(err)}`));
    } else if (local.pin === 'unpinned' && before !== undefined) {
      await this.dehydrateTree(path, local.isDirectory);
    }
  }

  /** One watch tick: compare recently browsed directories, mark old listings stale, retry failed uploads. */
  refresh(): Promise<void> {
    if (this.ticking) return this.ticking;
    const tick = this.tick().finally(() => {
      if (this.ticking === tick) this.ticking = undefined;
    });
    this.ticking = tick;
    return tick;
  }

  private async tick(): Promise<void> {
    const now = this.now();
    for (const [dir, state] of [...this.dirs]) {
      if (now - state.browsedAt <= this.options.activeDirMs) {
        await this.reconcile(dir).catch((err) => this.notice(`cannot compare '${dir}' with the remote: ${describe(err)}`));
      } else if (!state.stale && now - state.listedAt >= this.options.dirTtlMs) {
        await this.port
          .markStale(dir)
          .then(() => (state.stale = true))
          .catch((err) => this.log(`cannot mark '${dir}' stale: ${describe(err)}`));
      }
    }
    for (const [path, failure] of [...this.failures]) {
      if (failure.retryAt <= this.now()) await this.upload(path).catch(() => {});
    }
  }

  start(): void {
    this.timer ??= setInterval(() => void this.refresh(), this.options.watchIntervalMs);
    this.timer.unref();
  }

  /** Settles when the background work started so far (uploads, hydrations, a tick) has ended. */
  async settled(): Promise<void> {
    await Promise.allSettled([...[...this.uploads.values()].map((upload) => upload.done), this.hydrating, this.ticking]);
  }

  /** Stops the tick and waits (at most `timeoutMs`) for uploads and fetches under way. */
  async stop(timeoutMs: number): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.settled(), new Promise((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /**
   * Before the sync root goes away: deletes every local entry whose data is
   * on the remote (in-sync placeholders, and directories left empty), so the
   * folder holds nothing that could not be opened without the provider.
   * Entries with local changes stay. The deletes are the provider's own: the
   * remote is not touched.
   */
  async cleanup(): Promise<{ removed: number; kept: string[] }> {
    const kept: string[] = [];
    let removed = 0;
    const sweep = async (dir: string): Promise<boolean> => {
      let entries: { name: string; isDirectory: boolean }[];
      try {
        entries = await this.port.list(dir);
      } catch {
        kept.push(dir);
        return false;
      }
      let empty = true;
      for (const entry of entries) {
        const path = joinPath(dir, entry.name);
        if (entry.isDirectory) {
          if ((await sweep(path)) && (await this.tryRemove(path, true))) removed++;
          else empty = false;
          continue;
        }
        const local = await this.port.localState(path);
        if (local?.placeholder && local.inSync && (await this.tryRemove(path, false))) {
          removed++;
        } else {
          if (local) kept.push(path);
          empty = false;
        }
      }
      return empty;
    };
    await sweep('');
    return { removed, kept };
  }

  private async tryRemove(path: string, isDirectory: boolean): Promise<boolean> {
    try {
      await this.removeLocal(path, isDirectory);
      return true;
    } catch (err) {
      this.log(`cannot remove '${path}': ${describe(err)}`);
      return false;
    }
  }

  /** For `status`: uploads under way and those that failed. */
  state(): { pendingUploads: number; failedUploads: FailedUpload[] } {
    return {
      pendingUploads: this.uploads.size,
      failedUploads: [...this.failures].map(([path, failure]) => ({
        path,
        error: failure.error,
        since: new Date(failure.since).toISOString(),
        attempts: failure.attempts,
        nextRetry: Number.isFinite(failure.retryAt) ? new Date(failure.retryAt).toISOString() : null,
      })),
    };
  }
}
