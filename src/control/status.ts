import type { FsStats } from '../vfs/stats.js';
import type { BackendName, FileProviderDetails, NfsDetails, SyncRootDetails } from '../backends/types.js';
import type { MountState } from './mount-state.js';

/** One mount in `tmount status --format json` (schemaVersion 1, schema/status.schema.json). */
export interface MountStatus {
  id: string;
  remote: string;
  mountpoint: string | null;
  backend: BackendName;
  pid: number;
  startedAt: string;
  state: MountState;
  connection: {
    state: 'connecting' | 'connected' | 'reconnecting' | 'disconnected';
    since: string;
    reconnects: number;
    latencyMs: number | null;
  };
  stats: FsStats;
  /** NFS backend only: where its loopback server listens. */
  nfs?: NfsDetails;
  /** Cloud Files backend only: the sync root and its uploads. */
  syncRoot?: SyncRootDetails;
  /** FileProvider backend only: the domain Finder shows. */
  fileProvider?: FileProviderDetails;
}

/** Where a user-space client finds an NFS mount's export. */
export function nfsUrl(nfs: NfsDetails): string {
  return `nfs://127.0.0.1${nfs.exportPath}?nfsport=${nfs.port}&mountport=${nfs.mountPort}&version=3`;
}

export interface StatusDocument {
  schemaVersion: 1;
  mounts: MountStatus[];
}

function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(1)} ${units[unit]}`;
}

export function statusRow(mount: MountStatus): string[] {
  const failedUploads = mount.syncRoot?.failedUploads.length ?? 0;
  const state =
    (mount.state.state === 'failed' ? `failed: ${mount.state.reason}` : mount.state.state) +
    (failedUploads > 0 ? `, ${failedUploads} upload${failedUploads === 1 ? '' : 's'} failed` : '');
  const latency = mount.connection.latencyMs === null ? '-' : `${mount.connection.latencyMs} ms`;
  return [
    mount.id,
    mount.mountpoint ?? (mount.nfs ? nfsUrl(mount.nfs) : mount.fileProvider ? `Finder: ${mount.fileProvider.displayName}` : '(Finder)'),
    mount.remote,
    mount.backend,
    state,
    `${mount.connection.state} (${latency})`,
    String(mount.stats.ops),
    `${formatBytes(mount.stats.bytesRead)} / ${formatBytes(mount.stats.bytesWritten)}`,
  ];
}

export const STATUS_HEADERS = ['ID', 'MOUNTPOINT', 'REMOTE', 'BACKEND', 'STATE', 'CONNECTION', 'OPS', 'READ / WRITTEN'];
