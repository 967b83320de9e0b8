import { ownerMappingFor } from '../owners.js';
import { posix } from 'node:path';
import { UserError } from '../../errors.js';
import { isMountPoint } from '../../platform/mounts.js';
import type { Backend, MountContext, MountHandle } from '../types.js';
import { no, ok } from '../unavailable.js';
import { startNfsServer } from './nfs-server.js';
import { runOsMount, runOsUnmount } from './os-mount.js';

/** How often a mounted export checks that it is still mounted (someone may run umount(8) directly). */
const MOUNT_POLL_MS = 3_000;

/**
 * The path clients mount: the remote path itself when absolute, so mount
 * tables read `127.0.0.1:/srv/data`; a path relative to the remote home
 * is shown under `/~`.
 */
export function exportPathFor(remotePath: string): string {
  if (remotePath.startsWith('/')) {
    const normalized = posix.normalize(remotePath);
    return normalized.length > 1 ? normalized.replace(/\/+$/, '') : '/';
  }
  const relative = posix.normalize(remotePath.replace(/^~\/?/, '') || '.');
  return relative === '.' ? '/~' : `/~/${relative.replace(/\/+$/, '')}`;
}

export const nfsBackend: Backend = {
  name: 'nfs',
  summary: 'loopback NFSv3 server mounted by the OS NFS client (BSDs, macOS fallback)',
  mountpointKind: 'empty-dir',
  available(facts) {
    if (facts.platform === 'win32') return no('Windows has no NFSv3 client to mount a loopback export with');
    // The server is plain TypeScript; mounting it needs the OS's NFS mount command.
    if (!facts.nfsMountCommand.ok) {
      return no(`${facts.nfsMountCommand.reason}; the NFS server alone still runs with --no-os-mount, for a user-space NFS client`);
    }
    return ok(`loopback NFSv3 server, mounted with ${facts.nfsMountCommand.detail.replace(/ present$/, '')}`);
  },
  mount: mountNfs,
};

async function mountNfs(context: MountContext): Promise<MountHandle> {
  const { tuning } = context;
  const noOsMount = context.nfs?.noOsMount ?? false;
  const insecure = context.nfs?.insecure ?? false;
  const exportPath = exportPathFor(context.target.path);
  const server = await startNfsServer({
    fs: context.fs,
    exportPath,
    insecure,
    readonly: context.readonly,
    allowOther: tuning.allowOther,
    owners: ownerMappingFor(context),
    ...(tuning.debug ? { log: tuning.debug } : {}),
    onUnexpected: (err, what) => process.stderr.write(`tmount: internal error in NFS ${what}: ${(err as Error)?.stack ?? String(err)}\n`),
  });
  const nfs = { port: server.port, mountPort: server.mountPort, exportPath };

  if (noOsMount) {
    return { backend: 'nfs', mountpoint: undefined, nfs, unmount: () => server.close(), closed: server.closed };
  }

  const mountpoint = context.mountpoint!;
  try {
    await runOsMount({
      platform: process.platform,
      port: server.port,
      mountPort: server.mountPort,
      exportPath,
      mountpoint,
      readonly: context.readonly,
      insecure,
    });
  } catch (err) {
    await server.close();
    throw new UserError('mountpoint', `cannot mount ${context.source} at ${mountpoint} over NFS: ${(err as Error).message}`);
  }

  let unmounting: Promise<void> | undefined;
  let poll: NodeJS.Timeout | undefined;
  const unmount = () =>
    (unmounting ??= (async () => {
      clearInterval(poll);
      try {
        await runOsUnmount(process.platform, mountpoint, false);
      } catch (err) {
        unmounting = undefined;
        throw new Error(`unmounting ${mountpoint}: ${(err as Error).message}`);
      }
      await server.close();
    })());
  // Stat of the mountpoint goes through this very server: it runs on the
  // threadpool while the main thread answers it, never synchronously.
  let checking = false;
  poll = setInterval(() => {
    if (checking) return;
    checking = true;
    void isMountPoint(mountpoint)
      .then((mounted) => {
        if (!mounted) {
          clearInterval(poll);
          void server.close();
        }
      })
      .catch(() => undefined)
      .finally(() => (checking = false));
  }, MOUNT_POLL_MS);
  poll.unref();
  return { backend: 'nfs', mountpoint, nfs, unmount, closed: server.closed };
}
