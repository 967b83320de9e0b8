// The workloads, each run as ordinary processes against a fresh mount.
// Paths: `ctx.mnt` is the mountpoint; `ctx.remote` the same directory on the
// server's disk, used only to check results after the mount is gone.
import { closeSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { countFiles } from './data.mjs';
import { q } from './proc.mjs';

const PY = fileURLToPath(new URL('./py/', import.meta.url));
const MB = 1e6;
const MiB = 1024 * 1024;

/**
 * @typedef {{ id: string, label: string, unit: string, better: 'higher' | 'lower', target: number }} Metric
 * @typedef {{
 *   mnt: string, remote: string, scratch: string, local: { source: string, tar: string },
 *   sizes: import('./data.mjs').Sizes, sample: number,
 *   sh(command: string, what: string): Promise<{ seconds: number, stdout: string }>,
 * }} Context
 * @typedef {{
 *   id: string, metrics: Metric[], warm?: string[],
 *   run(ctx: Context): Promise<{ values: Record<string, number>, extra?: Record<string, number> }>,
 *   verify?(ctx: Context): void,
 * }} Workload
 */

/**
 * Goals as a ratio to sshfs in the better direction: never slower than sshfs,
 * and twice as good where kernel caching and bounded write pipelining should
 * make the difference (small writes, warm git status, cold tree stat).
 */
const TARGETS = { 'small-writes': 2.0, 'git-status': 2.0, 'stat-tree-cold': 2.0 };

/** @param {string} id @param {string} label @param {string} unit @param {'higher' | 'lower'} better */
const metric = (id, label, unit, better) => ({ id, label, unit, better, target: TARGETS[/** @type {keyof typeof TARGETS} */ (id)] ?? 1.0 });

/** Compares a file on the server's disk with the first `bytes` of a local one. @param {string} actual @param {string} expected @param {number} bytes */
function sameBytes(actual, expected, bytes) {
  const size = statSync(actual).size;
  if (size !== bytes) throw new Error(`${actual} has ${size} bytes on the server, expected ${bytes}`);
  const a = openSync(actual, 'r');
  const b = openSync(expected, 'r');
  try {
    const bufA = Buffer.alloc(4 * MiB);
    const bufB = Buffer.alloc(4 * MiB);
    for (let offset = 0; offset < bytes; offset += bufA.length) {
      const n = Math.min(bufA.length, bytes - offset);
      readSync(a, bufA, 0, n, offset);
      readSync(b, bufB, 0, n, offset);
      if (!bufA.subarray(0, n).equals(bufB.subarray(0, n))) throw new Error(`${actual} differs from what was written within bytes ${offset}..${offset + n}`);
    }
  } finally {
    closeSync(a);
    closeSync(b);
  }
}

/** @param {string} stdout */
function pythonResult(stdout) {
  const result = JSON.parse(stdout.trim().split('\n').pop() ?? '{}');
  if (typeof result.seconds !== 'number') throw new Error(`unexpected output from the python script: ${stdout.trim()}`);
  return result;
}

/** @param {import('./data.mjs').Sizes} sizes @returns {Workload[]} */
export function workloads(sizes) {
  const bigBytes = sizes.bigMiB * MiB;
  const smallBytes = sizes.smallWriteMiB * MiB;
  return [
    {
      id: 'seq-read',
      metrics: [metric('seq-read', `sequential read ${sizes.bigMiB} MiB, cold`, 'MB/s', 'higher')],
      async run(ctx) {
        const { seconds } = await ctx.sh(`dd if=${q(join(ctx.mnt, 'big.bin'))} of=/dev/null bs=1M`, 'dd read');
        return { values: { 'seq-read': bigBytes / MB / seconds } };
      },
    },
    {
      id: 'seq-write',
      metrics: [metric('seq-write', `sequential write ${sizes.bigMiB} MiB, fsync`, 'MB/s', 'higher')],
      warm: ['source'],
      async run(ctx) {
        const { seconds } = await ctx.sh(`dd if=${q(ctx.local.source)} of=${q(join(ctx.mnt, 'scratch', 'seq.bin'))} bs=1M conv=fsync`, 'dd write');
        return { values: { 'seq-write': bigBytes / MB / seconds } };
      },
      verify(ctx) {
        sameBytes(join(ctx.scratch, 'seq.bin'), ctx.local.source, bigBytes);
      },
    },
    {
      id: 'small-writes',
      metrics: [metric('small-writes', `${sizes.smallWriteMiB} MiB in 4 KiB writes, fsync`, 'MB/s', 'higher')],
      warm: ['source'],
      async run(ctx) {
        const count = smallBytes / 4096;
        const { seconds } = await ctx.sh(`dd if=${q(ctx.local.source)} of=${q(join(ctx.mnt, 'scratch', 'small.bin'))} bs=4k count=${count} conv=fsync`, 'dd 4k writes');
        return { values: { 'small-writes': smallBytes / MB / seconds } };
      },
      verify(ctx) {
        sameBytes(join(ctx.scratch, 'small.bin'), ctx.local.source, smallBytes);
      },
    },
    {
      id: 'create-files',
      metrics: [metric('create-files', `create ${sizes.createFiles.toLocaleString('en-US')} files of 4 KiB`, 'files/s', 'higher')],
      async run(ctx) {
        const dir = join(ctx.mnt, 'scratch', 'created');
        const { stdout } = await ctx.sh(`mkdir ${q(dir)} && python3 ${q(join(PY, 'create_files.py'))} ${q(dir)} ${sizes.createFiles} 4096`, 'python3 create_files.py');
        return { values: { 'create-files': sizes.createFiles / pythonResult(stdout).seconds } };
      },
      verify(ctx) {
        const found = countFiles(join(ctx.scratch, 'created'));
        if (found !== sizes.createFiles) throw new Error(`${found} files arrived on the server, expected ${sizes.createFiles}`);
        const size = statSync(join(ctx.scratch, 'created', 'file-00000')).size;
        if (size !== 4096) throw new Error(`a created file has ${size} bytes on the server, expected 4096`);
      },
    },
    {
      id: 'stat-tree',
      metrics: [
        metric('stat-tree-cold', `find | xargs stat, ${sizes.treeFiles.toLocaleString('en-US')} files, cold`, 's', 'lower'),
        metric('stat-tree-warm', `find | xargs stat, ${sizes.treeFiles.toLocaleString('en-US')} files, warm`, 's', 'lower'),
      ],
      async run(ctx) {
        const command = `find ${q(join(ctx.mnt, 'tree'))} -type f -print0 | xargs -0 stat > /dev/null`;
        const cold = await ctx.sh(command, 'find | xargs stat (cold)');
        const warm = await ctx.sh(command, 'find | xargs stat (warm)');
        return { values: { 'stat-tree-cold': cold.seconds, 'stat-tree-warm': warm.seconds } };
      },
    },
    {
      id: 'ls-flat',
      metrics: [metric('ls-flat', `ls -l of ${sizes.flatFiles.toLocaleString('en-US')} entries, first listing`, 's', 'lower')],
      async run(ctx) {
        const { seconds } = await ctx.sh(`ls -l ${q(join(ctx.mnt, 'flat'))} > /dev/null`, 'ls -l');
        return { values: { 'ls-flat': seconds } };
      },
    },
    {
      id: 'git-status',
      metrics: [metric('git-status', `git status, ${sizes.repoFiles.toLocaleString('en-US')} files, warm`, 's', 'lower')],
      async run(ctx) {
        // Inode numbers differ between the server's disk and the mount, so the
        // first run also refreshes and rewrites the index; the second is the one users wait for.
        const command = `git -c safe.directory='*' -C ${q(join(ctx.mnt, 'repo'))} status --porcelain > /dev/null`;
        const first = await ctx.sh(command, 'git status (first)');
        const second = await ctx.sh(command, 'git status (warm)');
        return { values: { 'git-status': second.seconds }, extra: { 'git-status-first': first.seconds } };
      },
    },
    {
      id: 'untar',
      metrics: [metric('untar', `untar ${sizes.tarFiles.toLocaleString('en-US')} small files`, 's', 'lower')],
      warm: ['tar'],
      async run(ctx) {
        const dir = join(ctx.mnt, 'scratch', 'untar');
        // Run as root, tar would also chown every file; an ordinary user's untar does not.
        const { seconds } = await ctx.sh(`mkdir ${q(dir)} && tar --no-same-owner -xf ${q(ctx.local.tar)} -C ${q(dir)}`, 'tar -x');
        return { values: { untar: seconds } };
      },
      verify(ctx) {
        const found = countFiles(join(ctx.scratch, 'untar'));
        if (found !== sizes.tarFiles) throw new Error(`${found} files arrived on the server, expected ${sizes.tarFiles}`);
      },
    },
    {
      id: 'rand-read',
      metrics: [metric('rand-read', `random 4 KiB reads (pread), ${sizes.randomReads.toLocaleString('en-US')} of them, cold`, 'reads/s', 'higher')],
      async run(ctx) {
        const script = join(PY, 'random_read.py');
        const { stdout } = await ctx.sh(`python3 ${q(script)} ${q(join(ctx.mnt, 'big.bin'))} ${sizes.randomReads} ${ctx.sample + 1}`, 'python3 random_read.py');
        return { values: { 'rand-read': sizes.randomReads / pythonResult(stdout).seconds } };
      },
    },
  ];
}
