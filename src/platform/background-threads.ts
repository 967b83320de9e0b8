import { readdirSync, readFileSync } from 'node:fs';
import { availableParallelism, setPriority } from 'node:os';
import koffi from 'koffi';

/** Linux's SCHED_IDLE policy: a normal thread of the same process that wakes on its core preempts it at once. */
const SCHED_IDLE = 5;

/** The lowest nice value, for when SCHED_IDLE cannot be set. */
const BACKGROUND_NICE = 19;

/** V8's default number of background threads in Node (`--v8-pool-size`). */
const DEFAULT_POOL_SIZE = 4;

/** The kernel's default pid_max, for when /proc/sys cannot be read. */
const DEFAULT_PID_MAX = 4_194_304;

export interface ThreadInfo {
  tid: number;
  name: string;
}

/**
 * Which of this process's threads are Node's platform threads: V8's optimizing
 * compiler and garbage-collector helpers run there, nothing that answers a
 * request does.
 *
 * Node 23 and later name them 'V8Worker'. Before that every thread keeps the
 * process's name, and the platform's are the first threads Node creates (its
 * delayed-task scheduler, then `poolSize` workers), before any JavaScript runs
 * and so before libuv's thread pool or an addon's thread. Thread ids are handed
 * out in ascending order from the process id, wrapping at pid_max, so creation
 * order is the distance from the process id modulo pid_max.
 */
export function platformThreads(pid: number, threads: readonly ThreadInfo[], poolSize: number, pidMax: number): number[] {
  const named = threads.filter((t) => t.name === 'V8Worker');
  if (named.length > 0) return named.map((t) => t.tid);
  const main = threads.find((t) => t.tid === pid);
  if (main === undefined || threads.some((t) => t.name !== main.name)) return [];
  const created = (tid: number) => (((tid - pid) % pidMax) + pidMax) % pidMax;
  return threads
    .filter((t) => t.tid !== pid)
    .sort((a, b) => created(a.tid) - created(b.tid))
    .slice(0, poolSize + 1)
    .map((t) => t.tid);
}

/** The V8 pool size this process was started with, as Node derives it from `--v8-pool-size`. */
export function v8PoolSize(execArgv: readonly string[], nodeOptions: string | undefined): number {
  let size = DEFAULT_POOL_SIZE;
  for (const arg of [...(nodeOptions ?? '').split(/\s+/), ...execArgv]) {
    const match = /^--v8-pool-size=(\d+)$/.exec(arg);
    if (match) size = Number(match[1]);
  }
  return size >= 1 ? size : Math.max(availableParallelism() - 1, 1);
}

function ownThreads(): ThreadInfo[] {
  const threads: ThreadInfo[] = [];
  for (const entry of readdirSync('/proc/self/task')) {
    try {
      threads.push({ tid: Number(entry), name: readFileSync(`/proc/self/task/${entry}/comm`, 'utf8').trim() });
    } catch {
      // The thread ended while we listed them.
    }
  }
  return threads;
}

function pidMax(): number {
  try {
    return Number(readFileSync('/proc/sys/kernel/pid_max', 'utf8')) || DEFAULT_PID_MAX;
  } catch {
    return DEFAULT_PID_MAX;
  }
}

type SchedSetscheduler = (tid: number, policy: number, param: number[]) => number;
let schedSetscheduler: SchedSetscheduler | undefined;

/** sched_setscheduler(2) for one thread, through libc; struct sched_param is one int. */
function setIdlePolicy(tid: number): boolean {
  schedSetscheduler ??= koffi.load('libc.so.6').func('int sched_setscheduler(int pid, int policy, const int *param)') as SchedSetscheduler;
  return schedSetscheduler(tid, SCHED_IDLE, [0]) === 0;
}

function lower(tid: number): boolean {
  try {
    if (setIdlePolicy(tid)) return true;
  } catch {
    // No libc to call: the nice value is the next best thing.
  }
  try {
    setPriority(tid, BACKGROUND_NICE);
    return true;
  } catch {
    return false; // The thread ended.
  }
}

/**
 * Runs V8's background threads under SCHED_IDLE (or at nice 19) in the process
 * that serves a mount, on Linux; elsewhere it does nothing. Returns the thread
 * ids it lowered.
 *
 * A fresh mount's first few thousand requests have V8 compile the request
 * path on those threads (~80 ms of CPU). On a machine with few cores, a
 * thread that the request chain wakes can land on the core where a compile
 * runs and wait behind it, up to a scheduler tick (4 ms at HZ=250). tmount's
 * own serving thread takes the core back from a SCHED_IDLE thread at once.
 * Processes of other sessions (sshd, the application waiting for its read)
 * compete as groups when Linux groups sessions (autogroup), so for them this
 * shortens the wait less. Measured on 2 vCPUs, 3,000 cold random 4 KiB reads
 * on fresh mounts: reads over 1 ms fell from ~45 to 20-30 per run, the mean
 * read time by 5-10 %. Nothing starves: the scheduler still gives these
 * threads a small share of a busy core, and all of an idle one.
 */
export function lowerBackgroundThreads(): number[] {
  if (process.platform !== 'linux') return [];
  let picked: number[];
  try {
    picked = platformThreads(process.pid, ownThreads(), v8PoolSize(process.execArgv, process.env.NODE_OPTIONS), pidMax());
  } catch {
    return []; // No /proc: nothing to lower.
  }
  return picked.filter(lower);
}
