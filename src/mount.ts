import { BACKENDS, availabilityOf, selectBackend } from './backends/index.js';
import type { BackendName, HostFacts, MountHandle, MountTuning, NfsMountOptions } from './backends/types.js';
import { BACKEND_NAMES } from './backends/types.js';
import { backendUnavailable } from './backends/unavailable.js';
import { UserError } from './errors.js';
import { prepareMountpoint } from './mountpoint.js';
import { gatherHostFacts } from './platform/host-facts.js';
import type { ConnectOptions } from './remote/connect.js';
import { DEFAULT_LINK_OPTIONS, type LinkOptions, RemoteLink } from './remote/link.js';
import { SftpSession } from './remote/sftp-session.js';
import { formatRemoteSpec, parseRemoteSpec } from './remote/spec.js';
import { FsError } from './vfs/errors.js';
import type { RemoteFsOptions } from './vfs/options.js';
import { RemoteFs } from './vfs/remote-fs.js';
import { readUserSshConfig, resolveTarget } from './remote/target.js';

export type BackendChoice = BackendName | 'auto';

export interface MountOptions {
  remote: string;
  mountpoint?: string;
  backend?: BackendChoice;
  readonly?: boolean;
  nonempty?: boolean;
  /** For tests and callers that already probed; gathered when absent. */
  facts?: HostFacts;
  sshConfig?: string;
  /**
   * How to connect (flags, prompter). The connection is opened with
   * `openSsh(target, { ...connect, sshConfig })` once the backend is chosen.
   */
  connect?: ConnectOptions;
  /** Cache sizes and lifetimes (RemoteFs defaults otherwise). */
  cache?: Partial<Omit<RemoteFsOptions, 'root' | 'readonly'>>;
  tuning?: Partial<MountTuning>;
  /** Operation timeout and reconnect policy. */
  link?: Partial<LinkOptions>;
  /** Told each phase of getting the mount up (and of later reconnects). */
  onPhase?: (phase: string) => void;
  /** NFS backend only (--no-os-mount, --nfs-insecure). */
  nfs?: Partial<NfsMountOptions>;
}

export function parseBackendChoice(value: string): BackendChoice {
  if (value === 'auto' || (BACKEND_NAMES as readonly string[]).includes(value)) return value as BackendChoice;
  throw new UserError('usage', `unknown backend '${value}'; choose one of auto, ${BACKEND_NAMES.join(', ')}`);
}

export function chooseBackend(choice: BackendChoice, facts: HostFacts): BackendName {
  const availability = availabilityOf(facts);
  if (choice === 'auto') {
    const selection = selectBackend(facts.platform, availability);
    if (!selection.ok) {
      throw new UserError('backendUnavailable', `no backend can mount here (${selection.reason}); see 'tmount backends'`);
    }
    return selection.backend;
  }
  const state = availability[choice];
  if (!state.ok) throw backendUnavailable(choice, state.reason);
  return choice;
}

/**
 * The one entry point every front end uses: validates everything that can be
 * validated locally before any connection or mount is started, then connects,
 * checks the remote path and hands over to the chosen backend. A failure at
 * any step undoes the steps before it.
 */
/** A mount that is up, with what the lifecycle layer watches: the engine and its link to the remote. */
export interface RunningMount extends MountHandle {
  fs: RemoteFs;
  link: RemoteLink;
  /** `user@host:/path`. */
  source: string;
  /** True from the moment an unmount starts: a connection closing after it is expected. */
  readonly closing: boolean;
}

export async function mount(options: MountOptions): Promise<RunningMount> {
  const spec = parseRemoteSpec(options.remote);
  const portFlag = options.connect?.port;
  if (portFlag !== undefined && spec.port !== undefined && portFlag !== spec.port) {
    throw new UserError('usage', `the remote '${options.remote}' says port ${spec.port} but --port says ${portFlag}; give the port once`);
  }
  const phase = options.onPhase ?? (() => {});
  phase('resolving config');
  const sshConfig = options.sshConfig ?? (await readUserSshConfig());
  const target = resolveTarget(spec, sshConfig);
  const nfs = { noOsMount: options.nfs?.noOsMount ?? false, insecure: options.nfs?.insecure ?? false };
  const gathered = options.facts ?? gatherHostFacts();
  // Without the OS mount the NFS server needs no mount command.
  const facts = nfs.noOsMount ? { ...gathered, nfsMountCommand: { ok: true as const, detail: 'not needed with --no-os-mount' } } : gathered;
  const backend = BACKENDS[chooseBackend(options.backend ?? 'auto', facts)];
  if ((nfs.noOsMount || nfs.insecure) && backend.name !== 'nfs') {
    throw new UserError('usage', `--no-os-mount and --nfs-insecure apply to the nfs backend only (this mount uses ${backend.name}); add --backend nfs`);
  }
  if (nfs.noOsMount && options.mountpoint !== undefined) {
    throw new UserError('usage', `--no-os-mount serves NFS without mounting it anywhere; drop the mountpoint '${options.mountpoint}'`);
  }
  const mountpoint = nfs.noOsMount
    ? { path: undefined, undo: async () => {} }
    : await prepareMountpoint(backend.mountpointKind, options.mountpoint, target.alias, {
        nonempty: options.nonempty ?? false,
      });
  const undo: (() => Promise<unknown>)[] = [() => mountpoint.undo()];
  try {
    const { openSsh } = await import('./remote/connect.js');
    const connection = await openSsh(target, { ...options.connect, sshConfig, onPhase: phase });
    undo.unshift(() => connection.close());
    const linkOptions = { ...DEFAULT_LINK_OPTIONS, ...options.link };
    phase('starting SFTP');
    const session = await SftpSession.open(connection.client, { requestTimeoutMs: linkOptions.opTimeoutMs });
    const link = new RemoteLink(session, connection, linkOptions);
    undo.unshift(() => link.shutdown());
    const readonly = options.readonly ?? false;
    const fs = new RemoteFs(link, { ...options.cache, root: target.path, readonly });
    link.hooks.reattach = (fresh) => fs.reattach(fresh);
    const source = formatRemoteSpec({ user: connection.target.user, host: target.alias, path: target.path });
    phase('checking the remote path');
    await checkRemoteRoot(fs, source);
    const home = await session.stat('.').catch(() => ({ uid: -1, gid: -1 }));
    phase('mounting');
    const handle = await backend.mount({
      fs,
      target: connection.target,
      source,
      mountpoint: mountpoint.path,
      readonly,
      tuning: tuningFrom(options, fs),
      remoteOwner: { uid: home.uid, gid: home.gid },
      ...(backend.name === 'nfs' ? { nfs } : {}),
    });
    return withTeardown(handle, fs, link, source);
  } catch (err) {
    for (const step of undo) await step().catch(() => {});
    throw err;
  }
}

async function checkRemoteRoot(fs: RemoteFs, source: string): Promise<void> {
  try {
    await fs.start();
  } catch (err) {
    const code = err instanceof FsError ? err.code : undefined;
    const problem = code === 'ENOENT' ? 'does not exist' : code === 'ENOTDIR' ? 'is not a directory' : code === 'EACCES' ? 'is not readable by this user' : `cannot be read (${(err as Error).message})`;
    throw new UserError('remotePath', `the remote path of ${source} ${problem}; check the path after the ':'`);
  }
}

function tuningFrom(options: MountOptions, fs: RemoteFs): MountTuning {
  const seconds = (ms: number) => ms / 1000;
  return {
    entryTimeout: seconds(fs.options.attrTtlMs),
    attrTimeout: seconds(fs.options.attrTtlMs),
    negativeTimeout: seconds(fs.options.negativeTtlMs),
    maxReadAhead: fs.options.maxReadAheadBytes,
    allowOther: false,
    defaultPermissions: false,
    idmapUser: true,
    ...options.tuning,
  };
}

/**
 * The caller's unmount also ends the connection, after open files are
 * flushed. While disconnected, the link is shut first so that flushing fails
 * at once instead of waiting out the operation timeout: unmount always works.
 */
function withTeardown(handle: MountHandle, fs: RemoteFs, link: RemoteLink, source: string): RunningMount {
  let closing = false;
  let finished: Promise<void> | undefined;
  const finish = () =>
    (finished ??= (async () => {
      closing = true;
      if (link.linkState !== 'connected') await link.shutdown();
      await fs.releaseAll();
      await link.shutdown();
    })());
  return {
    ...handle,
    fs,
    link,
    source,
    get closing() {
      return closing;
    },
    unmount: async () => {
      closing = true;
      await handle.unmount();
      await finish();
    },
    closed: handle.closed.then(finish),
  };
}
