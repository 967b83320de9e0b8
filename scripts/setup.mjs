#!/usr/bin/env node
// The one set-up used by `npm run demo` and `npm test`: OS packages, npm
// dependencies, native addons and TypeScript. Every step checks first and does
// nothing when already done, so a second run takes a second or two.
// Only Node's built-in modules may be used here: node_modules may not exist yet.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MIN_NODE = [20, 17];

/** Debian/Ubuntu packages: the first seven run and build tmount; sshfs is the benchmark baseline; shellcheck, git, rsync and fio are what the tests drive the mount with. */
const DEBIAN_PACKAGES = ['fuse3', 'libfuse3-dev', 'openssh-server', 'libnfs-utils', 'cmake', 'g++', 'pkg-config', 'sshfs', 'shellcheck', 'git', 'rsync', 'fio'];
const FREEBSD_PACKAGES = ['fusefs-libs3', 'cmake', 'pkgconf'];

function say(message) {
  process.stdout.write(`setup: ${message}\n`);
}

function fail(message) {
  process.stderr.write(`setup: ${message}\n`);
  process.exit(1);
}

function run(command, args, options = {}) {
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: ROOT, ...options });
  if (result.error) fail(`cannot run ${command}: ${result.error.message}`);
  if (result.status !== 0) fail(`'${[command, ...args].join(' ')}' failed with exit code ${result.status}`);
}

function succeeds(command, args) {
  const result = spawnSync(command, args, { stdio: 'ignore' });
  return !result.error && result.status === 0;
}

function checkNode() {
  const [major, minor] = process.versions.node.split('.').map(Number);
  if (major < MIN_NODE[0] || (major === MIN_NODE[0] && minor < MIN_NODE[1])) {
    fail(`Node.js ${process.versions.node} is too old; install Node.js ${MIN_NODE.join('.')} or newer`);
  }
}

function missingDebianPackages() {
  return DEBIAN_PACKAGES.filter((name) => {
    const result = spawnSync('dpkg-query', ['-W', '-f=${Status}', name], { encoding: 'utf8' });
    return result.status !== 0 || !result.stdout.includes('install ok installed');
  });
}

/** root runs apt-get itself; others use sudo only when it needs no password (CI runners). */
function privileged() {
  if (process.getuid?.() === 0) return [];
  if (succeeds('sudo', ['-n', 'true'])) return ['sudo', '-n'];
  return undefined;
}

function installOsPackages() {
  if (process.platform === 'linux' && existsSync('/usr/bin/dpkg-query')) {
    const missing = missingDebianPackages();
    if (missing.length === 0) return;
    const prefix = privileged();
    const command = `apt-get update && apt-get install -y ${missing.join(' ')}`;
    if (!prefix) fail(`missing OS packages: ${missing.join(', ')}; install them with: sudo sh -c '${command}'`);
    say(`installing OS packages: ${missing.join(' ')}`);
    // sudo resets the environment, so the frontend setting travels through env(1).
    const argv = [...prefix, 'env', 'DEBIAN_FRONTEND=noninteractive', 'apt-get'];
    const apt = (...args) => run(argv[0], [...argv.slice(1), ...args]);
    apt('update', '-qq');
    apt('install', '-y', '-qq', '--no-install-recommends', ...missing);
    return;
  }
  if (process.platform === 'freebsd') {
    const missing = FREEBSD_PACKAGES.filter((name) => !succeeds('pkg', ['info', '-e', name]));
    if (missing.length > 0) say(`the FUSE backend needs: pkg install -y ${missing.join(' ')} (and kldload fusefs)`);
    return;
  }
  if (process.platform === 'linux') {
    say(`not a Debian-family system: install with your package manager fuse3 and its headers, openssh-server, libnfs utilities, cmake, a C++ compiler and pkg-config`);
  }
  // macOS and Windows need no OS packages for the build and unit tests.
}

function lockHash() {
  return createHash('sha256').update(readFileSync(join(ROOT, 'package-lock.json'))).digest('hex');
}

function installNpmDependencies() {
  const stamp = join(ROOT, 'node_modules', '.tmount-lock-sha256');
  const wanted = lockHash();
  if (existsSync(stamp) && readFileSync(stamp, 'utf8') === wanted) return;
  say('installing npm dependencies (npm ci)');
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  run(npm, ['ci', '--no-audit', '--no-fund'], { shell: process.platform === 'win32' });
  writeFileSync(stamp, wanted);
}

function build() {
  run(process.execPath, [join(ROOT, 'scripts', 'build-addons.mjs')]);
  run(process.execPath, [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(ROOT, 'tsconfig.json')]);
}

checkNode();
installOsPackages();
installNpmDependencies();
build();
say('ready');
