// The data set, written straight to the server's disk (never through a mount)
// so that both tools see exactly the same files.
import { randomFillSync } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readdirSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { runQuick } from './proc.mjs';

const MiB = 1024 * 1024;

/** @typedef {ReturnType<typeof sizesFor>} Sizes */

/** @param {boolean} quick */
export function sizesFor(quick) {
  return quick
    ? { bigMiB: 64, smallWriteMiB: 8, createFiles: 300, treeFiles: 1_000, flatFiles: 1_000, repoFiles: 300, tarFiles: 300, randomReads: 500 }
    : { bigMiB: 512, smallWriteMiB: 64, createFiles: 2_000, treeFiles: 10_000, flatFiles: 10_000, repoFiles: 3_000, tarFiles: 2_000, randomReads: 3_000 };
}

/** @param {string} path @param {number} bytes */
function writeRandomFile(path, bytes) {
  const fd = openSync(path, 'w');
  try {
    const chunk = Buffer.alloc(4 * MiB);
    for (let left = bytes; left > 0; left -= chunk.length) {
      const part = chunk.subarray(0, Math.min(chunk.length, left));
      randomFillSync(part);
      writeSync(fd, part);
    }
  } finally {
    closeSync(fd);
  }
}

/** Files spread over `fanout` × `fanout` directories, as a source tree is. @param {string} root @param {number} count @param {number} fanout @param {(i: number) => string} content */
function writeTree(root, count, fanout, content) {
  const leaves = fanout * fanout;
  for (let i = 0; i < count; i++) {
    const leaf = i % leaves;
    const dir = join(root, `d${String(Math.floor(leaf / fanout)).padStart(2, '0')}`, `e${String(leaf % fanout).padStart(2, '0')}`);
    if (i < leaves) mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `f${String(i).padStart(5, '0')}.txt`), content(i));
  }
}

/**
 * Lays out remote/{big.bin,tree,flat,repo} and local/{source.bin,files.tar}.
 * @param {string} remoteRoot @param {string} localDir @param {Sizes} sizes
 */
export function prepareData(remoteRoot, localDir, sizes) {
  const source = join(localDir, 'source.bin');
  writeRandomFile(source, sizes.bigMiB * MiB);
  runQuick('cp', [source, join(remoteRoot, 'big.bin')]);

  writeTree(join(remoteRoot, 'tree'), sizes.treeFiles, 10, (i) => `file ${i}\n`.repeat(1 + (i % 20)));

  const flat = join(remoteRoot, 'flat');
  mkdirSync(flat);
  for (let i = 0; i < sizes.flatFiles; i++) writeFileSync(join(flat, `entry-${String(i).padStart(5, '0')}`), `${i}\n`);

  const repo = join(remoteRoot, 'repo');
  writeTree(join(repo, 'src'), sizes.repoFiles, 6, (i) => `// module ${i}\nexport const value${i} = ${i};\n`.repeat(1 + (i % 10)));
  const git = ['-c', 'init.defaultBranch=main', '-c', 'user.name=bench', '-c', 'user.email=bench@localhost', '-c', 'commit.gpgsign=false'];
  runQuick('git', [...git, 'init', '-q'], { cwd: repo });
  runQuick('git', [...git, 'add', '-A'], { cwd: repo });
  runQuick('git', [...git, 'commit', '-q', '-m', 'benchmark tree'], { cwd: repo });

  const tarSource = join(localDir, 'tar-source');
  writeTree(tarSource, sizes.tarFiles, 5, (i) => 'x'.repeat(512 + ((i * 997) % 7680)));
  runQuick('tar', ['-cf', join(localDir, 'files.tar'), '-C', tarSource, '.']);
  rmSync(tarSource, { recursive: true, force: true });

  return { source, tar: join(localDir, 'files.tar') };
}

/** Empties the scratch directory the write workloads use. @param {string} remoteRoot */
export function resetScratch(remoteRoot) {
  const scratch = join(remoteRoot, 'scratch');
  rmSync(scratch, { recursive: true, force: true });
  mkdirSync(scratch);
  return scratch;
}

/** Regular files below dir, counted on the server's disk. @param {string} dir */
export function countFiles(dir) {
  let count = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) if (entry.isFile()) count++;
  return count;
}
