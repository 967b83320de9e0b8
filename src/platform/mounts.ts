import { readFileSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';

export interface MountInfo {
  mountpoint: string;
  fstype: string;
  source: string;
}

/** /proc/self/mountinfo escapes space, tab, newline and backslash as octal. */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** Linux only: every mount this process can see. */
export function linuxMounts(text = readFileSync('/proc/self/mountinfo', 'utf8')): MountInfo[] {
  const mounts: MountInfo[] = [];
  for (const line of text.split('\n')) {
    const dash = line.indexOf(' - ');
    if (dash < 0) continue;
    const before = line.slice(0, dash).split(' ');
    const after = line.slice(dash + 3).split(' ');
    if (before[4] === undefined || after[1] === undefined) continue;
    mounts.push({ mountpoint: unescape(before[4]), fstype: after[0] ?? '', source: unescape(after[1]) });
  }
  return mounts;
}

/** Whether something is mounted at `path` (which must be absolute and resolved). */
export async function isMountPoint(path: string): Promise<boolean> {
  if (process.platform === 'linux') return linuxMounts().some((m) => m.mountpoint === path);
  // Elsewhere a mount point sits on another device than its parent.
  const [self, parent] = await Promise.all([stat(path), stat(dirname(path))]);
  return self.dev !== parent.dev;
}
