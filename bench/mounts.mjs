// The two filesystems under test, each served by a child process in the
// foreground so the benchmark owns its pid and its whole process group.
import { spawn, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { groupPeakRssKiB, isMounted, killGroup, lazyUnmount, registry, sleep } from './proc.mjs';

export const TMOUNT_CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
/** The node flags `tmount mount` starts its background server with (none before a build; run.mjs reports the missing build). */
export const SERVER_NODE_FLAGS = await import('../dist/platform/server-process.js').then((m) => m.SERVER_NODE_FLAGS, () => []);
const MOUNT_TIMEOUT_MS = 30_000;
const UNMOUNT_TIMEOUT_MS = 20_000;
const STDERR_TAIL = 16 * 1024;

/**
 * @typedef {import('../test/fixtures/sshd.mjs').SshServer} SshServer
 * @typedef {{ tool: string, dir: string, pid: number, unmount(): Promise<void>, kill(): Promise<void>, log(): string, peakRssKiB(): number | null }} Mount
 */

/** The command lines, for the report and for spawning. @param {SshServer} server @param {string} dir @param {string[]} extra */
export function tmountCommand(server, dir, extra = []) {
  return [
    // Started the way `tmount mount` starts its background server, node flags included.
    process.execPath, ...SERVER_NODE_FLAGS, TMOUNT_CLI, 'mount', '--foreground',
    '--identity', server.privateKeyPath,
    '--ssh-option', `UserKnownHostsFile=${server.knownHostsPath}`,
    ...extra,
    `${server.user}@${server.host}:${server.port}:${server.remoteRoot}`, dir,
  ];
}

/** @param {SshServer} server @param {string} dir @param {string[]} extra */
export function sshfsCommand(server, dir, extra = []) {
  const options = [
    `IdentityFile=${server.privateKeyPath}`,
    `UserKnownHostsFile=${server.knownHostsPath}`,
    `port=${server.port}`,
    'StrictHostKeyChecking=yes',
    ...extra,
  ];
  return ['sshfs', '-f', '-o', options.join(','), `${server.user}@${server.host}:${server.remoteRoot}`, dir];
}

/**
 * Starts a mount daemon and resolves once `ready` says the mount is there.
 * @param {string} tool @param {string[]} argv @param {string} dir
 * @param {(child: import('node:child_process').ChildProcess, waiting: () => boolean) => Promise<void>} ready
 * @param {(pid: number) => void} stop   asks the daemon to unmount
 * @param {NodeJS.ProcessEnv} [env]
 * @returns {Promise<Mount>}
 */
async function startDaemon(tool, argv, dir, ready, stop, env = process.env) {
  const child = spawn(/** @type {string} */ (argv[0]), argv.slice(1), { detached: true, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const pid = /** @type {number} */ (child.pid);
  if (!pid) {
    const err = await new Promise((resolve) => child.once('error', resolve));
    throw new Error(`cannot start ${tool}: ${/** @type {Error} */ (err).message}`);
  }
  registry.addGroup(pid);
  registry.addMount(dir);
  let output = '';
  const keep = (/** @type {string} */ chunk) => {
    output = (output + chunk).slice(-STDERR_TAIL);
  };
  child.stdout.setEncoding('utf8').on('data', keep);
  child.stderr.setEncoding('utf8').on('data', keep);
  let exited = false;
  const exit = new Promise((resolve) => child.once('exit', () => {
    exited = true;
    resolve(undefined);
  }));

  const waitExit = (/** @type {number} */ ms) => Promise.race([exit, sleep(ms)]);
  const finish = () => {
    lazyUnmount(dir);
    if (!isMounted(dir)) registry.removeMount(dir);
    if (exited) registry.removeGroup(pid);
  };
  const kill = async () => {
    // Killing the daemon aborts the FUSE connection, which releases any process
    // blocked in a request; the lazy unmount then detaches the mountpoint.
    killGroup(pid, 'SIGKILL');
    await waitExit(5000);
    finish();
  };
  const unmount = async () => {
    if (!exited) {
      stop(pid);
      await waitExit(UNMOUNT_TIMEOUT_MS);
    }
    if (!exited) {
      process.stderr.write(`bench: ${tool} did not exit within ${UNMOUNT_TIMEOUT_MS / 1000} s of being asked to unmount; killing it\n`);
      await kill();
      return;
    }
    // The daemon is gone; its group may still hold a helper (sshfs's ssh).
    killGroup(pid, 'SIGKILL');
    finish();
  };

  let waiting = true;
  try {
    await Promise.race([
      ready(child, () => waiting),
      exit.then(() => {
        throw new Error(`${tool} exited before the mount was ready: ${output.trim() || '(no output)'}`);
      }),
      sleep(MOUNT_TIMEOUT_MS).then(() => {
        throw new Error(`${tool} did not mount within ${MOUNT_TIMEOUT_MS / 1000} s: ${output.trim() || '(no output)'}`);
      }),
    ]);
  } catch (err) {
    await kill();
    throw err;
  } finally {
    waiting = false;
  }
  return { tool, dir, pid, unmount, kill, log: () => output, peakRssKiB: () => (exited ? null : groupPeakRssKiB(pid)) };
}

/**
 * `stateDir` keeps the benchmark's mounts out of the user's `tmount status`
 * and goes away with the benchmark's temporary directory.
 * @param {SshServer} server @param {string} dir @param {string} stateDir @param {string[]} [extra]
 */
export function mountTmount(server, dir, stateDir, extra = []) {
  return startDaemon(
    'tmount',
    tmountCommand(server, dir, extra),
    dir,
    (child) =>
      new Promise((resolve) => {
        let seen = '';
        child.stdout?.on('data', (/** @type {string} */ chunk) => {
          seen += chunk;
          if (/^mounted /m.test(seen) && isMounted(dir)) resolve(undefined);
        });
      }),
    (pid) => process.kill(pid, 'SIGTERM'),
    { ...process.env, TMOUNT_STATE_DIR: stateDir },
  );
}

/** @param {SshServer} server @param {string} dir @param {string[]} [extra] */
export function mountSshfs(server, dir, extra = []) {
  return startDaemon(
    'sshfs',
    sshfsCommand(server, dir, extra),
    dir,
    // sshfs prints nothing when ready: it connects first, then mounts.
    async (_child, waiting) => {
      while (waiting() && !isMounted(dir)) await sleep(25);
    },
    () => {
      const result = spawnSync('fusermount3', ['-u', dir], { stdio: 'ignore', timeout: UNMOUNT_TIMEOUT_MS });
      if (result.status !== 0) lazyUnmount(dir);
    },
  );
}
