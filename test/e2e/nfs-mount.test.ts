import { existsSync, readFileSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { release } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { useSshServer } from '../fixtures/ssh-server.js';
import { isMounted, mountTmount } from '../fixtures/tmount-mount.js';

/** Why the kernel NFS mount cannot be tested on this machine, or undefined when it can. */
function kernelNfsUnavailable(): string | undefined {
  if (process.platform !== 'linux') return `the kernel NFS mount test drives Linux's mount.nfs; this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'an NFS mount on Linux needs root';
  if (!existsSync('/sbin/mount.nfs') && !existsSync('/usr/sbin/mount.nfs')) return 'mount.nfs is not installed (Debian: nfs-common)';
  const filesystems = readFileSync('/proc/filesystems', 'utf8');
  const loadable = existsSync(`/lib/modules/${release()}/kernel/fs/nfs`);
  if (!/\tnfs$/m.test(filesystems) && !loadable) return `this kernel (${release()}) has no NFS client: /proc/filesystems lists no nfs and no nfs module is installed`;
  return undefined;
}

const reason = kernelNfsUnavailable();
const ssh = useSshServer();

describe('the nfs backend through the kernel NFS client', () => {
  (reason ? it.skip : it)(`mounts, reads and writes through the mountpoint, and unmounts${reason ? ` (skipped: ${reason})` : ''}`, async () => {
    await writeFile(join(ssh.server.remoteRoot, 'from-remote.txt'), 'written remotely');
    const mount = await mountTmount(ssh.server, { args: ['--backend', 'nfs'] });
    try {
      expect(await readFile(join(mount.mountpoint, 'from-remote.txt'), 'utf8')).toBe('written remotely');
      await writeFile(join(mount.mountpoint, 'from-local.txt'), 'written through NFS');
      expect(await readFile(join(ssh.server.remoteRoot, 'from-local.txt'), 'utf8')).toBe('written through NFS');
    } finally {
      await mount.unmount();
    }
    expect(await isMounted(mount.mountpoint)).toBe(false);
  }, 60_000);
});
