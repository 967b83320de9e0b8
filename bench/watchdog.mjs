// Runs detached beside a benchmark: argv = <benchmark pid> <state file>.
// While the benchmark lives it only watches. If the benchmark disappears and
// its state file is still there, it did not clean up: this kills the recorded
// process groups (mount daemons first release processes blocked in them),
// detaches the recorded mounts and removes the recorded directories.
// It exits quietly once the state file is gone, which is a normal end.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';

const [parentPid, stateFile] = [Number(process.argv[2]), String(process.argv[3])];
const POLL_MS = 250;

/** @param {number} pid */
function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return /** @type {NodeJS.ErrnoException} */ (err).code === 'EPERM';
  }
}

function reap() {
  let state;
  try {
    state = JSON.parse(readFileSync(stateFile, 'utf8'));
  } catch {
    return;
  }
  for (const pid of state.groups ?? []) {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // Gone already.
    }
  }
  for (const dir of state.mounts ?? []) {
    spawnSync('fusermount3', ['-u', '-z', dir], { stdio: 'ignore', timeout: 10_000 });
    if (process.getuid?.() === 0) spawnSync('umount', ['-l', dir], { stdio: 'ignore', timeout: 10_000 });
  }
  for (const dir of state.dirs ?? []) rmSync(dir, { recursive: true, force: true });
  rmSync(stateFile, { force: true });
}

const timer = setInterval(() => {
  if (!existsSync(stateFile)) {
    clearInterval(timer);
    return;
  }
  if (!alive(parentPid)) {
    clearInterval(timer);
    reap();
  }
}, POLL_MS);
