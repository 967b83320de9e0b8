import { watch } from 'node:fs';
import { readdir, realpath } from 'node:fs/promises';
import { win32 } from 'node:path';
import { UserError } from '../../errors.js';
import { loadAddon } from '../../platform/addon-loader.js';
import { VERSION } from '../../version.js';
import type { Backend, MountContext, MountHandle } from '../types.js';
import { allOf, backendUnavailable, no } from '../unavailable.js';
import type { CloudFilesAddon, SyncRootConnection, SyncRootRegistered } from './addon-types.js';
import { CloudFilesDriver } from './driver.js';
import { relativeToRoot, syncRootDisplayName, syncRootId } from './paths.js';
import { CloudFilesProvider } from './provider.js';
import { AddonSyncRootPort } from './windows-port.js';

/** Windows 10 1709 (build 16299) introduced the Cloud Files API. */
const FIRST_CFAPI_BUILD = 16299;
/**
 * How long the addon lets a callback wait for JS: under the platform's own
 * 60 s, so a stuck request fails with a clear status before Windows gives up.
 */
const REQUEST_TIMEOUT_MS = 50_000;
/** A local change is taken up once the file has been quiet this long. */
const QUIET_MS = 1_000;
/** Longest an unmount waits for uploads under way. */
const DRAIN_MS = 30_000;

export function windowsBuild(osRelease: string): number | undefined {
  const build = Number(osRelease.split('.')[2]);
  return Number.isInteger(build) ? build : undefined;
}

/**
 * Reports local changes below `root` (fs.watch is ReadDirectoryChangesW
 * here), once per path after it has been quiet for `quietMs`. Runs on the
 * JS main thread.
 */
function watchSyncRoot(root: string, quietMs: number, onChange: (path: string) => void, onError: (err: Error) => void): () => void {
  const timers = new Map<string, NodeJS.Timeout>();
  const watcher = watch(root, { recursive: true }, (_event, filename) => {
    if (!filename) return;
    const path = relativeToRoot(root, win32.join(root, filename.toString()));
    if (!path) return;
    clearTimeout(timers.get(path));
    timers.set(
      path,
      setTimeout(() => {
        timers.delete(path);
        onChange(path);
      }, quietMs),
    );
  });
  watcher.on('error', onError);
  return () => {
    watcher.close();
    for (const timer of timers.values()) clearTimeout(timer);
  };
}

/**
 * Says so when the folder already holds something: those files stay local,
 * and one whose name is also on the remote is not uploaded over it until it
 * changes. Read before the folder becomes a sync root, while listing it
 * cannot ask a provider that is not connected yet.
 */
async function noteExistingContent(root: string, notice: (line: string) => void): Promise<void> {
  const names = await readdir(root).catch(() => [] as string[]);
  if (names.length === 0) return;
  const shown = names.slice(0, 3).join("', '") + (names.length > 3 ? `' and ${names.length - 3} more` : "'");
  notice(`${root} is not empty ('${shown}): files that are not from an earlier mount of this remote stay local until they change`);
}

async function mountCloudFiles(context: MountContext): Promise<MountHandle> {
  const addon = loadAddon<CloudFilesAddon>('cloud-files');
  // The platform reports paths with long names; a root given with 8.3 names (RUNNER~1) would never match them.
  const root = await realpath(context.mountpoint!);
  const { target } = context;
  const id = syncRootId(addon.currentUserSid(), context.source, root);
  const displayName = syncRootDisplayName(target.alias, target.port, target.path);
  const notice = (line: string) => process.stderr.write(`tmount: ${line}\n`);
  const log = context.tuning.debug;
  await noteExistingContent(root, notice);

  let registered: SyncRootRegistered;
  try {
    registered = await addon.registerSyncRoot({
      id,
      path: root,
      displayName,
      // tmount ships no icon of its own; node.exe's is there for certain.
      iconResource: `${process.execPath},0`,
      version: VERSION,
      hydration: 'progressive',
      context: context.source,
    });
  } catch (err) {
    throw new UserError('mountpoint', `cannot register ${root} as a Cloud Files sync root: ${(err as Error).message}`);
  }
  if (!registered.shell) notice(`${root} is registered without a File Explorer entry (${registered.detail})`);

  const undo: (() => Promise<unknown>)[] = [() => addon.unregisterSyncRoot(id, root)];
  try {
    const port = new AddonSyncRootPort(addon, root);
    const dirTtlMs = context.fs.options.dirTtlMs;
    const provider = new CloudFilesProvider(context.fs, port, {
      readonly: context.readonly,
      readAheadBytes: context.tuning.maxReadAhead,
      dirTtlMs,
      watchIntervalMs: Math.max(5_000, dirTtlMs),
      ...(log ? { log } : {}),
      notice,
    });
    const driver = new CloudFilesDriver(provider, root, {
      ...(log ? { log } : {}),
      onUnexpected: (err, op) => process.stderr.write(`tmount: internal error in Cloud Files ${op}: ${(err as Error)?.stack ?? String(err)}\n`),
    });
    const connection: SyncRootConnection = new addon.SyncRootConnection(root, driver.handle, { requestTimeoutMs: REQUEST_TIMEOUT_MS });
    driver.attach(connection);
    try {
      connection.connect();
    } catch (err) {
      throw new UserError('mountpoint', `cannot connect to the sync root ${root}: ${(err as Error).message}`);
    }
    undo.unshift(() => connection.disconnect());
    // A folder left by an earlier mount may hold an old listing: the next look inside asks again.
    await port.markStale('').catch((err: Error) => log?.(`cloud-files: cannot mark the root stale: ${err.message}`));
    provider.start();
    const stopWatching = watchSyncRoot(
      root,
      QUIET_MS,
      (path) => void provider.localChanged(path).catch((err: Error) => notice(`cloud-files: '${path}': ${err.message}`)),
      (err) => notice(`cloud-files: watching ${root} failed: ${err.message}; new local files are picked up by the next close or mount`),
    );

    let finished: Promise<void> | undefined;
    let closedResolve!: () => void;
    const closed = new Promise<void>((resolve) => (closedResolve = resolve));
    const unmount = () =>
      (finished ??= (async () => {
        try {
          stopWatching();
          await provider.stop(DRAIN_MS);
          const { removed, kept } = await provider.cleanup();
          log?.(`cloud-files: removed ${removed} local placeholders`);
          if (kept.length > 0) notice(`kept in ${root}, with changes not on the remote: ${kept.join(', ')}`);
          await connection.disconnect();
          await addon.unregisterSyncRoot(id, root);
        } finally {
          closedResolve();
        }
      })());
    return {
      backend: 'cloud-files',
      mountpoint: root,
      unmount,
      closed,
      syncRoot: () => ({ id, displayName, shell: registered.shell, ...provider.state() }),
    };
  } catch (err) {
    for (const step of undo) await step().catch(() => {});
    throw err;
  }
}

export const cloudFilesBackend: Backend = {
  name: 'cloud-files',
  summary: 'Cloud Files placeholders in File Explorer (Windows 10 1709+)',
  mountpointKind: 'sync-root',
  available(facts) {
    if (facts.platform !== 'win32') return no(`Cloud Files is a Windows API, this is ${facts.platform}`);
    const build = windowsBuild(facts.osRelease);
    if (build === undefined || build < FIRST_CFAPI_BUILD) {
      return no(`Windows build ${build ?? facts.osRelease} predates Cloud Files (needs 10.0.${FIRST_CFAPI_BUILD}, version 1709)`);
    }
    return allOf('cfapi addon built', facts.cloudFilesAddon);
  },
  async mount(context) {
    if (process.platform !== 'win32') throw backendUnavailable('cloud-files', `Cloud Files is a Windows API, this is ${process.platform}`);
    return mountCloudFiles(context);
  },
};
