import { describe, expect, it } from 'vitest';
import { platformThreads, v8PoolSize } from '../../src/platform/background-threads.js';

const PID_MAX = 4_194_304;
const unnamed = (tids: number[]) => tids.map((tid) => ({ tid, name: 'node' }));

describe('platformThreads', () => {
  it("takes the threads Node created first: its delayed-task scheduler and the pool's workers", () => {
    // main, scheduler, 4 workers, inspector signal thread, libuv pool, an addon's thread
    const threads = unnamed([1000, 1010, 1011, 1012, 1013, 1014, 1020, 1021, 1022, 1023, 1024, 1100]);
    expect(platformThreads(1000, threads, 4, PID_MAX)).toEqual([1010, 1011, 1012, 1013, 1014]);
  });

  it('follows creation order across the wrap of thread ids at pid_max', () => {
    const threads = unnamed([PID_MAX - 3, PID_MAX - 2, PID_MAX - 1, 301, 302, 303, 304]);
    expect(platformThreads(PID_MAX - 3, threads, 3, PID_MAX)).toEqual([PID_MAX - 2, PID_MAX - 1, 301, 302]);
  });

  it('takes the threads Node names V8Worker when it names them, and only those', () => {
    const threads = [
      { tid: 50, name: 'MainThread' },
      { tid: 51, name: 'DelayedTaskSched' },
      { tid: 52, name: 'V8Worker' },
      { tid: 53, name: 'V8Worker' },
      { tid: 60, name: 'libuv-worker' },
    ];
    expect(platformThreads(50, threads, 4, PID_MAX)).toEqual([52, 53]);
  });

  it('takes nothing when threads carry names it does not know', () => {
    const threads = [
      { tid: 50, name: 'node' },
      { tid: 51, name: 'node' },
      { tid: 60, name: 'libuv-worker' },
    ];
    expect(platformThreads(50, threads, 4, PID_MAX)).toEqual([]);
  });
});

describe('v8PoolSize', () => {
  it("is Node's default of 4 without --v8-pool-size", () => {
    expect(v8PoolSize(['--initial-old-space-size=64'], undefined)).toBe(4);
  });

  it('reads --v8-pool-size from NODE_OPTIONS, the command line winning', () => {
    expect(v8PoolSize([], '--max-old-space-size=100 --v8-pool-size=2')).toBe(2);
    expect(v8PoolSize(['--v8-pool-size=6'], '--v8-pool-size=2')).toBe(6);
  });

  it('is at least one worker when 0 asks Node to choose', () => {
    expect(v8PoolSize(['--v8-pool-size=0'], undefined)).toBeGreaterThanOrEqual(1);
  });
});
