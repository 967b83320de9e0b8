// Every process the benchmark starts runs in its own process group and is
// recorded, together with every mount and temporary directory, in a state file
// that bench/watchdog.mjs reads: if the benchmark dies without cleaning up
// (SIGKILL, a crash in native code), the watchdog ends them instead.
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';

const OUTPUT_LIMIT = 1024 * 1024;

export const registry = {
  /** @type {string | undefined} */
  stateFile: undefined,
  /** @type {Set<number>} process group ids */
  groups: new Set(),
  /** @type {Set<string>} */
  mounts: new Set(),
  /** @type {Set<string>} */
  dirs: new Set(),

  /** @param {string} stateFile */
  attach(stateFile) {
    this.stateFile = stateFile;
    this.save();
  },
  save() {
    if (!this.stateFile) return;
    const state = { groups: [...this.groups], mounts: [...this.mounts], dirs: [...this.dirs] };
    // Written whole and renamed so the watchdog never reads half a file.
    writeFileSync(`${this.stateFile}.new`, JSON.stringify(state));
    renameSync(`${this.stateFile}.new`, this.stateFile);
  },
  /** @param {number} pid */ addGroup(pid) { this.groups.add(pid); this.save(); },
  /** @param {number} pid */ removeGroup(pid) { if (this.groups.delete(pid)) this.save(); },
  /** @param {string} dir */ addMount(dir) { this.mounts.add(dir); this.save(); },
  /** @param {string} dir */ removeMount(dir) { if (this.mounts.delete(dir)) this.save(); },
  /** @param {string} dir */ addDir(dir) { this.dirs.add(dir); this.save(); },
  /** @param {string} dir */ removeDir(dir) { if (this.dirs.delete(dir)) this.save(); },
  detach() {
    if (this.stateFile) rmSync(this.stateFile, { force: true });
    this.stateFile = undefined;
  },
};

/** @param {number} pid @param {NodeJS.Signals} signal */
export function killGroup(pid, signal) {
  try {
    process.kill(-pid, signal);
  } catch {
    // The group is already gone.
  }
}

/** Quotes one word for sh. @param {string} word */
export function q(word) {
  return `'${String(word).replaceAll("'", `'\\''`)}'`;
}

export class TimeoutError extends Error {
  /** @param {string} what @param {number} seconds @param {boolean} stuck */
  constructor(what, seconds, stuck) {
    super(`${what} did not finish within ${seconds} s${stuck ? ' and could not be killed (blocked in the filesystem)' : ''}`);
    this.name = 'TimeoutError';
    this.stuck = stuck;
  }
}

/**
 * Runs a command in its own process group and measures its wall-clock time.
 * On timeout the whole group gets SIGKILL; a process blocked inside a FUSE
 * request ignores even that until its mount goes away, so after a grace period
 * this rejects with `stuck` set and leaves the group registered: the caller
 * tears the mount down, which releases the process.
 * @param {string} command @param {string[]} args
 * @param {{ timeoutMs: number, cwd?: string, env?: NodeJS.ProcessEnv, what?: string }} options
 * @returns {Promise<{ seconds: number, stdout: string, stderr: string }>}
 */
export function runTimed(command, args, { timeoutMs, cwd, env, what }) {
  const label = what ?? [command, ...args].join(' ');
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(command, args, { cwd, env: env ?? process.env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const pid = /** @type {number} */ (child.pid);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    let settled = false;
    if (pid) registry.addGroup(pid);
    child.stdout.setEncoding('utf8').on('data', (chunk) => { if (stdout.length < OUTPUT_LIMIT) stdout += chunk; });
    child.stderr.setEncoding('utf8').on('data', (chunk) => { if (stderr.length < OUTPUT_LIMIT) stderr += chunk; });
    /** @type {NodeJS.Timeout | undefined} */
    let grace;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(pid, 'SIGKILL');
      grace = setTimeout(() => {
        settled = true;
        reject(new TimeoutError(label, timeoutMs / 1000, true));
      }, 5000);
    }, timeoutMs);
    child.once('error', (err) => {
      clearTimeout(timer);
      if (pid) registry.removeGroup(pid);
      if (!settled) reject(new Error(`cannot run ${command}: ${err.message}`));
      settled = true;
    });
    child.once('exit', (code, signal) => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      clearTimeout(timer);
      clearTimeout(grace);
      // Kill whatever the command left running in its group (a background job).
      killGroup(pid, 'SIGKILL');
      registry.removeGroup(pid);
      child.once('close', () => {
        if (settled) return;
        settled = true;
        if (timedOut) reject(new TimeoutError(label, timeoutMs / 1000, false));
        else if (code !== 0) {
          // dd reports its error before its statistics: keep the lines that say what went wrong.
          const lines = (stderr.trim() || stdout.trim()).split('\n');
          const telling = lines.filter((line) => !/^\d+\+\d+ records (in|out)$|^\d+ bytes .* copied/.test(line));
          const detail = (telling.length ? telling : lines).slice(-3).join(' / ');
          reject(new Error(`${label} failed (${signal ?? `exit code ${code}`})${detail ? `: ${detail}` : ''}`));
        } else resolve({ seconds, stdout, stderr });
      });
    });
  });
}

/** Runs a short local command to completion; throws on failure. @param {string} command @param {string[]} args @param {{ cwd?: string, env?: NodeJS.ProcessEnv, timeoutMs?: number }} [options] */
export function runQuick(command, args, options = {}) {
  const result = spawnSync(command, args, { encoding: 'utf8', cwd: options.cwd, env: options.env, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024 });
  if (result.error) throw new Error(`cannot run ${command}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`'${[command, ...args].join(' ')}' failed (${result.signal ?? `exit code ${result.status}`}): ${(result.stderr || result.stdout).trim()}`);
  return result.stdout;
}

/** The output of a version query, or 'unknown'. @param {string} command @param {string[]} args */
export function versionOf(command, args) {
  const result = spawnSync(command, args, { encoding: 'utf8', timeout: 10_000 });
  if (result.error) return 'not installed';
  return `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n')[0] || 'unknown';
}

/** @param {string} name */
export function onPath(name) {
  return spawnSync('sh', ['-c', `command -v ${q(name)}`], { encoding: 'utf8' }).status === 0;
}

/** The mountpoints in this mount namespace, from /proc/self/mountinfo. */
export function mountpoints() {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => (line.split(' ')[4] ?? '').replace(/\\([0-7]{3})/g, (_, octal) => String.fromCharCode(parseInt(octal, 8))));
  } catch {
    return [];
  }
}

/** @param {string} dir */
export function isMounted(dir) {
  return mountpoints().includes(dir);
}

/** Detaches a mount even while processes still use it. @param {string} dir */
export function lazyUnmount(dir) {
  if (!isMounted(dir)) return;
  spawnSync('fusermount3', ['-u', '-z', dir], { stdio: 'ignore', timeout: 10_000 });
  if (isMounted(dir) && process.getuid?.() === 0) spawnSync('umount', ['-l', dir], { stdio: 'ignore', timeout: 10_000 });
}

/**
 * The peak resident memory of the processes in process group `pgid` (a
 * daemon and its helpers, such as sshfs's ssh), in KiB: the sum of each
 * one's peak (VmHWM), read while they still run. Null without /proc.
 * @param {number} pgid
 */
export function groupPeakRssKiB(pgid) {
  let names;
  try {
    names = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return null;
  }
  let total = 0;
  let found = false;
  for (const pid of names) {
    try {
      // The group is the fifth field of stat; the name before it may hold spaces, so count from its ')'.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[2]) !== pgid) continue;
      const peak = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (!peak) continue;
      total += Number(peak[1]);
      found = true;
    } catch {
      // Gone meanwhile.
    }
  }
  return found ? total : null;
}

/** @param {number} ms */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
