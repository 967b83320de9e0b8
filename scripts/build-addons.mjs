#!/usr/bin/env node
// Builds each native addon that applies to this OS with cmake-js, offline
// against node-api-headers, and only when a source is newer than the build.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
// Node installs its own headers, libuv's among them, beside its binary; the
// FUSE addon reads requests on the event loop when they are there.
const NODE_INCLUDE = join(dirname(process.execPath), '..', 'include', 'node');

/** Which OSes each addon is for; an addon folder not listed here is not built. */
const ADDONS = {
  fuse: ['linux', 'freebsd'],
  'cloud-files': ['win32'],
};

function newestMtime(dir) {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.name === 'build') continue;
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtime(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function builtAt(dir, name) {
  const output = join(dir, 'build', 'Release', `tmount_${name.replace('-', '_')}.node`);
  return existsSync(output) ? statSync(output).mtimeMs : 0;
}

for (const [name, platforms] of Object.entries(ADDONS)) {
  const dir = join(ROOT, 'addons', name);
  if (!platforms.includes(process.platform) || !existsSync(join(dir, 'CMakeLists.txt'))) continue;
  if (builtAt(dir, name) >= newestMtime(dir)) continue;
  process.stdout.write(`build-addons: building ${name}\n`);
  const cmakeJs = join(ROOT, 'node_modules', 'cmake-js', 'bin', 'cmake-js');
  const defines = existsSync(join(NODE_INCLUDE, 'uv.h')) ? [`--CDTMOUNT_NODE_INCLUDE=${NODE_INCLUDE}`] : [];
  const result = spawnSync(process.execPath, [cmakeJs, 'build', '--directory', dir, '--out', join(dir, 'build'), ...defines], {
    stdio: 'inherit',
    cwd: ROOT,
  });
  if (result.status !== 0) {
    process.stderr.write(`build-addons: building the ${name} addon failed (exit ${result.status}); see the compiler output above\n`);
    process.exit(1);
  }
}
