import { mkdirSync, statSync, chmodSync } from 'node:fs';
import { homedir, tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';

/**
 * Where mount processes register and listen: private to the user (0700).
 * TMOUNT_STATE_DIR overrides it, which is how tests keep their mounts apart.
 */
export function stateDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.TMOUNT_STATE_DIR) return env.TMOUNT_STATE_DIR;
  if (process.platform === 'win32') return join(env.LOCALAPPDATA ?? join(homedir(), 'AppData', 'Local'), 'tmount', 'run');
  if (env.XDG_RUNTIME_DIR) return join(env.XDG_RUNTIME_DIR, 'tmount');
  if (process.platform === 'darwin') return join(homedir(), 'Library', 'Application Support', 'tmount', 'run');
  return join(tmpdir(), `tmount-${userInfo().uid}`);
}

/** Creates the state dir if needed and refuses one another user could read or write. */
export function ensureStateDir(dir = stateDir()): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  if (process.platform === 'win32') return dir;
  const info = statSync(dir);
  const uid = process.getuid?.();
  if (uid !== undefined && info.uid !== uid) {
    throw new Error(`the tmount state directory ${dir} belongs to uid ${info.uid}, not to you; remove it or set TMOUNT_STATE_DIR`);
  }
  if ((info.mode & 0o077) !== 0) chmodSync(dir, 0o700);
  return dir;
}

/** Windows has no Unix sockets in every version we support: a named pipe per mount instead. */
export function controlSocketPath(dir: string, id: string): string {
  return process.platform === 'win32' ? `\\\\.\\pipe\\tmount-${userInfo().username}-${id}` : join(dir, `${id}.sock`);
}
