import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { UserError } from '../errors.js';
import { linuxMounts } from '../platform/mounts.js';
import { unmountPath } from '../platform/unmount.js';
import { readRegistry, type Registration } from './registry.js';
import { ensureStateDir } from './state-dir.js';

/** Mountpoints the kernel still shows as tmount's (Linux; elsewhere the registry is all there is). */
export function kernelTmountMounts(): string[] {
  if (process.platform !== 'linux') return [];
  return linuxMounts()
    .filter((m) => m.fstype === 'fuse.tmount')
    .map((m) => m.mountpoint);
}

/**
 * The live registrations. Each read prunes those whose process is gone and
 * lazily unmounts what such a process left mounted, so a crashed mount never
 * lingers past the next command.
 */
export async function liveMounts(dir = ensureStateDir()): Promise<Registration[]> {
  const { live, pruned } = readRegistry(dir);
  const stale = new Set(kernelTmountMounts());
  for (const dead of pruned) {
    if (dead.mountpoint && stale.has(dead.mountpoint)) await unmountPath(dead.mountpoint, true).catch(() => {});
  }
  return live;
}

/**
 * tmount mounts the kernel shows whose serving process is gone: stat fails
 * with ENOTCONN. Mounts of other users or other state dirs answer normally and
 * are left alone.
 */
export async function crashedTmountMounts(): Promise<string[]> {
  const crashed: string[] = [];
  for (const path of kernelTmountMounts()) {
    const error = await stat(path).then(() => undefined, (err: NodeJS.ErrnoException) => err.code);
    if (error === 'ENOTCONN') crashed.push(path);
  }
  return crashed;
}

export function matches(registration: Registration, target: string): boolean {
  return registration.id === target || (registration.mountpoint !== null && registration.mountpoint === resolve(target));
}

export async function findMount(target: string, dir?: string): Promise<Registration> {
  const found = (await liveMounts(dir)).find((registration) => matches(registration, target));
  if (!found) throw new UserError('notFound', `no mount matches '${target}'; list mounts with tmount status`);
  return found;
}
