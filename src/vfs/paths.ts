import { posix } from 'node:path';

/** Paths inside the mount are relative to its root: '' is the root, 'a/b' below it. */
export function childPath(parent: string, name: string): string {
  return parent === '' ? name : `${parent}/${name}`;
}

export function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

export function isInside(path: string, ancestor: string): boolean {
  return ancestor === '' ? path !== '' : path.startsWith(`${ancestor}/`);
}

/** A name the kernel hands us is one path component; anything else is an attack or a bug. */
export function isValidName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

/** The remote path of `path` under `root` (absolute, or relative to the remote home). */
export function remotePath(root: string, path: string): string {
  if (path === '') return root === '' ? '.' : root;
  if (root === '') return path;
  return root.endsWith('/') ? `${root}${path}` : `${root}/${path}`;
}

export const normalizeRemoteRoot = (root: string): string => (root === '' || root === '/' ? root : posix.normalize(root).replace(/\/$/, ''));
