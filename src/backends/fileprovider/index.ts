import { readFileSync, writeFileSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { UserError } from '../../errors.js';
import { isProcessAlive } from '../../platform/process.js';
import { VERSION } from '../../version.js';
import type { Backend, MountContext, MountHandle } from '../types.js';
import { allOf, backendUnavailable, no } from '../unavailable.js';
import { type DomainIdentity, domainFor, keyOf, staleDomains } from './domain.js';
import { type DomainHost, findApp, HostAppCli } from './host-app.js';
import { FileProviderServer } from './server.js';

/** Darwin 21 is macOS 12 Monterey, the first with NSFileProviderReplicatedExtension on macOS. */
const FIRST_DARWIN_MAJOR = 21;

/** sun_path on macOS holds 104 bytes, the terminating NUL included. */
const MAX_SOCKET_PATH = 103;

export interface FileProviderMountOptions {
  host: DomainHost;
  version?: string;
  /** Whether the process that wrote a domain's pid file still runs. */
  isAlive?: (pid: number) => boolean;
  /** Background re-reading of followed folders; defaults to the dir cache TTL (at least 1 s). */
  watchIntervalMs?: number;
  warn?: (line: string) => void;
}

export interface FileProviderMount extends MountHandle {
  domain: DomainIdentity;
  server: FileProviderServer;
  socketPath: string;
}

interface PidFile {
  pid: number;
  identifier: string;
  source: string;
}

function readPidFile(path: string): PidFile | undefined {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as PidFile;
  } catch {
    return undefined;
  }
}

/**
 * Serves one remote folder as a FileProvider domain: the protocol server on
 * a socket in the App Group container (`<container>/tmount/<key>.sock`,
 * where the extension of domain `tmount-<key>` looks for it), then the
 * domain registered through the app. Unmounting removes the domain; domains
 * of mounts whose process died are removed by the next mount.
 */
export async function mountFileProvider(context: MountContext, options: FileProviderMountOptions): Promise<FileProviderMount> {
  const { host } = options;
  const isAlive = options.isAlive ?? isProcessAlive;
  const warn = options.warn ?? ((line: string) => process.stderr.write(`${line}\n`));
  const log = context.tuning.debug;
  const domain = domainFor(context.target);
  const { container } = await host.info().catch((err: Error) => {
    throw backendUnavailable('fileprovider', `tmount.app did not say where its App Group container is (${err.message})`);
  });
  const dir = join(container, 'tmount');
  const socketPath = join(dir, `${domain.key}.sock`);
  const pidPath = join(dir, `${domain.key}.pid`);
  const stagingDir = join(dir, domain.key, 'staging');
  if (Buffer.byteLength(socketPath) > MAX_SOCKET_PATH) {
    throw backendUnavailable('fileprovider', `the socket path ${socketPath} is longer than the ${MAX_SOCKET_PATH} bytes macOS allows`);
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const owner = readPidFile(pidPath);
  if (owner && isAlive(owner.pid)) {
    throw new UserError('mountpoint', `${context.source} is already mounted (tmount process ${owner.pid}); unmount it first with: tmount unmount --all, or tmount status to find it`);
  }
  const served = (key: string) => {
    const file = readPidFile(join(dir, `${key}.pid`));
    return file !== undefined && isAlive(file.pid);
  };
  try {
    for (const identifier of staleDomains(await host.listDomains(), domain.identifier, served)) {
      await host.removeDomain(identifier);
      const key = keyOf(identifier)!;
      await rm(join(dir, key), { recursive: true, force: true });
      await rm(join(dir, `${key}.sock`), { force: true });
      await rm(join(dir, `${key}.pid`), { force: true });
      log?.(`fileprovider: removed the domain ${identifier} of a mount that is gone`);
    }
  } catch (err) {
    warn(`tmount: could not clean up Finder locations of earlier mounts: ${(err as Error).message}`);
  }

  writeFileSync(pidPath, JSON.stringify({ pid: process.pid, identifier: domain.identifier, source: context.source } satisfies PidFile), { mode: 0o600 });
  let signalling = false;
  let again = false;
  const signal = (): void => {
    if (signalling) {
      again = true;
      return;
    }
    signalling = true;
    host
      .signal(domain.identifier)
      .catch((err: Error) => log?.(`fileprovider: telling the system about remote changes failed: ${err.message}`))
      .finally(() => {
        signalling = false;
        if (again) {
          again = false;
          signal();
        }
      });
  };
  const dirTtl = context.fs.options.dirTtlMs;
  const server = new FileProviderServer(context.fs, {
    socketPath,
    stagingDir,
    domain: domain.identifier,
    displayName: domain.displayName,
    version: options.version ?? VERSION,
    rootName: domain.rootName,
    readonly: context.readonly,
    rescanAfterMs: dirTtl,
    watchIntervalMs: options.watchIntervalMs ?? Math.max(1_000, dirTtl || 5_000),
    onRemoteChanges: signal,
    ...(log ? { log } : {}),
  });
  const cleanup = async () => {
    await server.close();
    if (readPidFile(pidPath)?.pid === process.pid) await rm(pidPath, { force: true });
    await rm(join(dir, domain.key), { recursive: true, force: true });
  };
  try {
    await server.listen();
    await host.addDomain(domain.identifier, domain.displayName);
  } catch (err) {
    await cleanup().catch(() => {});
    if (err instanceof UserError) throw err;
    throw backendUnavailable('fileprovider', `registering the Finder location failed: ${(err as Error).message}`);
  }
  // A domain kept from an earlier mount holds anchors of that run's journal;
  // asking now makes the system find them expired and enumerate afresh.
  signal();

  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  let unmounting: Promise<void> | undefined;
  const unmount = () =>
    (unmounting ??= (async () => {
      try {
        await host.removeDomain(domain.identifier);
      } catch (err) {
        warn(`tmount: removing the Finder location '${domain.displayName}' failed (${(err as Error).message}); the next fileprovider mount removes it`);
      }
      await cleanup();
      resolveClosed();
    })());
  return {
    backend: 'fileprovider',
    mountpoint: undefined,
    unmount,
    closed,
    domain,
    server,
    socketPath,
    fileProvider: { domain: domain.identifier, displayName: domain.displayName, socket: socketPath },
  };
}

export const fileProviderBackend: Backend = {
  name: 'fileprovider',
  summary: 'FileProvider extension shown in Finder under Locations (macOS 12+)',
  mountpointKind: 'none',
  available(facts) {
    if (facts.platform !== 'darwin') return no(`FileProvider is a macOS framework, this is ${facts.platform}`);
    const major = Number(facts.osRelease.split('.')[0]);
    if (!(major >= FIRST_DARWIN_MAJOR)) {
      return no(`Darwin ${facts.osRelease} is older than macOS 12, which FileProvider needs`);
    }
    return allOf('tmount.app with its extension is installed', facts.fileProviderApp);
  },
  async mount(context) {
    const app = findApp();
    if (!app) throw backendUnavailable('fileprovider', 'tmount.app with its FileProvider extension is not installed; build it with scripts/build-macos-bundle.sh --install');
    return mountFileProvider(context, { host: new HostAppCli(app) });
  },
};
