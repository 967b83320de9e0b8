import type { SshTarget } from '../remote/target.js';
import type { RemoteFs } from '../vfs/remote-fs.js';

export const BACKEND_NAMES = ['fuse', 'nfs', 'cloud-files', 'fileprovider'] as const;
export type BackendName = (typeof BACKEND_NAMES)[number];

export type Availability = { ok: true; detail: string } | { ok: false; reason: string };

/**
 * Everything the availability rules look at, gathered once by
 * `platform/host-facts.ts`. Keeping the rules pure over this record is what
 * lets one table test every platform from this one machine.
 */
export interface HostFacts {
  platform: NodeJS.Platform;
  /** `os.release()`; on Windows "10.0.<build>", on macOS the Darwin version. */
  osRelease: string;
  devFuse: Availability;
  libfuse3: Availability;
  fuseAddon: Availability;
  cloudFilesAddon: Availability;
  fileProviderApp: Availability;
  nfsMountCommand: Availability;
}

/** How a backend wants its local location. */
export type MountpointKind =
  /** An existing empty directory, as FUSE and NFS mounts need. */
  | 'empty-dir'
  /** A folder the backend registers as a sync root, created when missing. */
  | 'sync-root'
  /** No local path: the OS shows the mount in its own UI (Finder's sidebar). */
  | 'none';

/** Settings users of sshfs expect, in units the OS interfaces take. */
export interface MountTuning {
  /** Seconds the OS may trust names, attributes and "does not exist". */
  entryTimeout: number;
  attrTimeout: number;
  negativeTimeout: number;
  maxReadAhead: number;
  allowOther: boolean;
  defaultPermissions: boolean;
  /** Show every file as owned by these ids. */
  uid?: number;
  gid?: number;
  /** Map the remote account's ids to the local user's (sshfs idmap=user). */
  idmapUser: boolean;
  /** Logs every request with its latency when set. */
  debug?: (line: string) => void;
}

export interface MountContext {
  fs: RemoteFs;
  target: SshTarget;
  /** `user@host:/path`, as mount tables and status show the source. */
  source: string;
  /** Absolute local path, or undefined for backends of kind 'none'. */
  mountpoint: string | undefined;
  readonly: boolean;
  tuning: MountTuning;
  /** Owner of the remote home directory: the ids the remote account writes with. */
  remoteOwner: { uid: number; gid: number };
  /** NFS backend only: serve without the OS mount (then `mountpoint` is undefined), and accept unprivileged client ports. */
  nfs?: NfsMountOptions;
}

export interface NfsMountOptions {
  noOsMount: boolean;
  insecure: boolean;
}

/** Where the NFS backend's loopback server listens, for `status` and user-space clients. */
export interface NfsDetails {
  port: number;
  mountPort: number;
  exportPath: string;
}

/** A FileProvider domain as `status` shows it (there is no mountpoint: Finder shows the domain). */
export interface FileProviderDetails {
  /** NSFileProviderDomainIdentifier ("tmount-<key>"). */
  domain: string;
  /** What Finder shows under Locations. */
  displayName: string;
  /** The Unix socket the extension talks to, in the App Group container. */
  socket: string;
}

/** A Cloud Files sync root as `status` shows it (the folder itself is the mountpoint). */
export interface SyncRootDetails {
  /** StorageProviderSyncRootManager id ("tmount!<SID>!<account>"). */
  id: string;
  /** Its name in File Explorer's navigation pane. */
  displayName: string;
  /** False when only the Cloud Files filter knows it (no navigation pane entry). */
  shell: boolean;
  pendingUploads: number;
  /** Local changes the remote refused or could not take; they stay local and are retried. */
  failedUploads: { path: string; error: string; since: string; attempts: number; nextRetry: string | null }[];
}

export interface MountHandle {
  backend: BackendName;
  mountpoint: string | undefined;
  unmount(): Promise<void>;
  /** Settles when the mount ends, however it ends. */
  closed: Promise<void>;
  /** Set by the NFS backend. */
  nfs?: NfsDetails;
  /** Set by the Cloud Files backend: the sync root's state now. */
  syncRoot?: () => SyncRootDetails;
  /** Set by the FileProvider backend. */
  fileProvider?: FileProviderDetails;
}

export interface Backend {
  readonly name: BackendName;
  /** One line for `tmount backends`. */
  readonly summary: string;
  readonly mountpointKind: MountpointKind;
  available(facts: HostFacts): Availability;
  mount(context: MountContext): Promise<MountHandle>;
}
