import { createHash } from 'node:crypto';
import { win32 } from 'node:path';
import { formatRemoteSpec } from '../../remote/spec.js';

/**
 * Paths in this backend: the provider speaks mount-relative POSIX paths, as
 * RemoteFs and the remote do ('' is the root, 'a/b.txt' below it); cfapi
 * speaks full Windows paths. These functions are the only crossing, and are
 * pure so that every rule is unit-tested on any OS.
 */

/** The StorageProvider id part every tmount sync root starts with. */
export const PROVIDER_NAME = 'tmount';

/**
 * A callback's full path from CF_CALLBACK_INFO's VolumeDosName ("C:") and
 * NormalizedPath ("\Users\…"). A path that is already absolute is kept: the
 * platform gives one when the connection asks for full paths.
 */
export function callbackPath(volume: string, path: string): string {
  if (/^[A-Za-z]:[\\/]/.test(path) || path.startsWith('\\\\')) return path;
  return `${volume}${path.startsWith('\\') ? '' : '\\'}${path}`;
}

function comparable(path: string): string {
  let p = path.replace(/\//g, '\\');
  if (p.startsWith('\\\\?\\')) p = p.slice(4);
  return p.replace(/\\+$/, '');
}

/**
 * The mount-relative path of a full Windows path, or undefined when it is
 * not inside the sync root. NTFS names compare case-insensitively, so the
 * root prefix does too.
 */
export function relativeToRoot(root: string, full: string): string | undefined {
  const base = comparable(root);
  const path = comparable(full);
  if (path.toLowerCase() === base.toLowerCase()) return '';
  if (!path.toLowerCase().startsWith(`${base.toLowerCase()}\\`)) return undefined;
  const parts = path.slice(base.length + 1).split('\\');
  if (parts.some((part) => part === '' || part === '.' || part === '..')) return undefined;
  return parts.join('/');
}

/** The full Windows path of a mount-relative path. */
export function windowsPath(root: string, relative: string): string {
  return relative === '' ? root : win32.join(root, ...relative.split('/'));
}

export function parentPath(relative: string): string {
  const slash = relative.lastIndexOf('/');
  return slash < 0 ? '' : relative.slice(0, slash);
}

export function baseName(relative: string): string {
  return relative.slice(relative.lastIndexOf('/') + 1);
}

export function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** True for `path` itself and everything below it ('' contains everything). */
export function isWithin(path: string, ancestor: string): boolean {
  return ancestor === '' || path === ancestor || path.startsWith(`${ancestor}/`);
}

const RESERVED = /^(con|prn|aux|nul|com[0-9¹²³]|lpt[0-9¹²³])(\..*)?$/i;
const FORBIDDEN = /[<>:"\\|?*\x00-\x1f]/;

/**
 * Why a remote name cannot be a file name on Windows, or undefined when it
 * can. Such entries are left out of the sync root (and logged), since no
 * placeholder can carry them.
 */
export function windowsNameProblem(name: string): string | undefined {
  if (name.length > 255) return 'is longer than 255 UTF-16 units';
  if (FORBIDDEN.test(name)) return 'contains a character Windows does not allow in names (<>:"\\|?* or a control character)';
  if (/[. ]$/.test(name)) return 'ends with a dot or a space, which Windows strips';
  if (RESERVED.test(name)) return 'is a reserved device name on Windows';
  return undefined;
}

/**
 * "tmount!<SID>!<account>", the form StorageProviderSyncRootManager expects.
 * The account part is readable (the remote) plus a hash of the remote and
 * the local folder, so the same mount gets the same id every time (a
 * re-registration updates it) and two mounts never share one.
 */
export function syncRootId(sid: string, source: string, root: string): string {
  const readable = source.replace(/[^A-Za-z0-9._@-]+/g, '_').slice(0, 60);
  const hash = createHash('sha256').update(`${source}\n${comparable(root).toLowerCase()}`).digest('hex').slice(0, 12);
  return `${PROVIDER_NAME}!${sid}!${readable}-${hash}`;
}

/** The navigation pane's name for a mount: "tmount — host:/path" (the user is left out, as Explorer has little room). */
export function syncRootDisplayName(host: string, port: number | undefined, path: string): string {
  return `${PROVIDER_NAME} — ${formatRemoteSpec({ host, ...(port !== undefined && port !== 22 ? { port } : {}), path })}`;
}
