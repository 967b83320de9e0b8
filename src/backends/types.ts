import type { SshTarget } from '../remote/target.js';

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

export interface MountContext {
  target: SshTarget;
  /** Absolute local path, or undefined for backends of kind 'none'. */
  mountpoint: string | undefined;
  readonly: boolean;
}

export interface MountHandle {
  backend: BackendName;
  mountpoint: string | undefined;
  unmount(): Promise<void>;
  /** Settles when the mount ends, however it ends. */
  closed: Promise<void>;
}

export interface Backend {
  readonly name: BackendName;
  /** One line for `tmount backends`. */
  readonly summary: string;
  readonly mountpointKind: MountpointKind;
  available(facts: HostFacts): Availability;
  mount(context: MountContext): Promise<MountHandle>;
}
