import { execFile } from 'node:child_process';
import { constants } from 'node:os';
import { promisify } from 'node:util';
import koffi from 'koffi';

const run = promisify(execFile);
const MNT_DETACH = 2;

let umount2: ((target: string, flags: number) => number) | undefined;

/** umount2(2) through libc: no helper process, and MNT_DETACH clears a crashed FUSE mount. */
function linuxUmount2(path: string, flags: number): void {
  umount2 ??= koffi.load('libc.so.6').func('int umount2(const char *target, int flags)') as (target: string, flags: number) => number;
  if (umount2(path, flags) === 0) return;
  const errno = koffi.errno();
  const name = Object.entries(constants.errno).find(([, value]) => value === errno)?.[0] ?? `errno ${errno}`;
  throw Object.assign(new Error(`umount2(${path}) failed: ${name}`), { code: name });
}

/**
 * Unmounts whatever is mounted at `path`. `lazy` detaches it even while busy
 * or when the process serving it is gone (a crashed FUSE mount).
 */
export async function unmountPath(path: string, lazy: boolean): Promise<void> {
  if (process.platform === 'linux') {
    if (process.getuid?.() === 0) return linuxUmount2(path, lazy ? MNT_DETACH : 0);
    await run('fusermount3', lazy ? ['-u', '-z', path] : ['-u', path]);
    return;
  }
  if (process.platform === 'darwin') {
    await run('/usr/sbin/diskutil', lazy ? ['unmount', 'force', path] : ['unmount', path]);
    return;
  }
  await run('umount', lazy ? ['-f', path] : [path]);
}
