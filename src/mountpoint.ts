import { mkdir, readdir, rmdir, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { describeCause, UserError } from './errors.js';
import type { MountpointKind } from './backends/types.js';
import { isMountPoint } from './platform/mounts.js';

export interface PreparedMountpoint {
  path: string | undefined;
  /** Undo what preparing did (a folder it created), so a failed mount leaves nothing behind. */
  undo(): Promise<void>;
}

/** Removes `path` and its parents up to `firstCreated`, only while they are empty. */
async function removeCreated(path: string, firstCreated: string | undefined): Promise<void> {
  if (firstCreated === undefined) return;
  for (let dir = path; dir.length >= firstCreated.length; dir = dirname(dir)) {
    try {
      await rmdir(dir);
    } catch {
      return;
    }
  }
}

export function defaultMountpoint(kind: MountpointKind, alias: string, home = homedir()): string | undefined {
  if (kind === 'none') return undefined;
  return join(home, 'tmount', alias);
}

/**
 * Checks the local location before anything is started. An explicit FUSE/NFS
 * mountpoint must already exist, as with sshfs and mount(8); only the default
 * location, which the user never chose, is created.
 */
export async function prepareMountpoint(
  kind: MountpointKind,
  requested: string | undefined,
  alias: string,
  options: { nonempty?: boolean } = {},
): Promise<PreparedMountpoint> {
  const nothing = async () => {};
  if (kind === 'none') {
    if (requested !== undefined) {
      throw new UserError('usage', `this backend shows the mount in Finder and takes no mountpoint; drop '${requested}'`);
    }
    return { path: undefined, undo: nothing };
  }
  const path = resolve(requested ?? defaultMountpoint(kind, alias)!);
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTCONN') {
      throw new UserError('mountpoint', `a crashed mount is still attached at ${path}; clear it with: tmount unmount --force '${path}'`);
    }
    if (code !== 'ENOENT') throw new UserError('mountpoint', `cannot use mountpoint ${path}: ${describeCause(err)}`);
    if (requested !== undefined && kind === 'empty-dir') {
      throw new UserError('mountpoint', `mountpoint ${path} does not exist; create it with: mkdir -p '${path}'`);
    }
    const firstCreated = await mkdir(path, { recursive: true });
    return { path, undo: () => removeCreated(path, firstCreated) };
  }
  if (!info.isDirectory()) throw new UserError('mountpoint', `mountpoint ${path} is not a directory; choose a directory`);
  if (kind === 'empty-dir' && (await isMountPoint(path))) {
    throw new UserError('mountpoint', `something is already mounted at ${path}; unmount it first (tmount unmount '${path}')`);
  }
  if (kind === 'empty-dir' && !options.nonempty) {
    const entries = await readdir(path);
    if (entries.length > 0) {
      throw new UserError('mountpoint', `mountpoint ${path} is not empty; choose an empty directory or pass --nonempty`);
    }
  }
  return { path, undo: nothing };
}
