import { describe, expect, it } from 'vitest';
import { parseCpuTimes, stealShare, stealSummary } from '../../bench/host-steal.mjs';


const STAT = (steal: number, idle: number) =>
  [`cpu  1000 10 500 ${idle} 40 0 30 ${steal} 7 0`, 'cpu0 500 5 250 100 20 0 15 1 0 0', 'intr 12345', ''].join('\n');

describe('host steal of a benchmark sample', () => {
  it('reads steal and total time from the aggregate cpu line, leaving out guest time counted twice', () => {
    expect(parseCpuTimes(STAT(20, 2000))).toEqual({ steal: 20, total: 1000 + 10 + 500 + 2000 + 40 + 0 + 30 + 20 });
  });

  it('has nothing to say without a cpu line or a steal column', () => {
    expect(parseCpuTimes('intr 1\n')).toBeNull();
    expect(parseCpuTimes('cpu  1 2 3 4 5 6 7\n')).toBeNull();
  });

  it('gives the stolen share of the time between two readings', () => {
    // 300 ticks passed, 60 of them stolen.
    expect(stealShare(parseCpuTimes(STAT(20, 2000)), parseCpuTimes(STAT(80, 2240)))).toBeCloseTo(0.2);
    expect(stealShare(null, parseCpuTimes(STAT(80, 2240)))).toBeNull();
    expect(stealShare(parseCpuTimes(STAT(20, 2000)), parseCpuTimes(STAT(20, 2000)))).toBeNull();
  });

  it('sums up the samples in one line naming the worst', () => {
    const row = (id: string, steal: (number | null)[]) => ({
      id, label: id, unit: 's', better: 'lower', target: 1, ratio: 1, targetMet: true,
      tools: { tmount: { median: 1, samples: steal.map(() => 1), errors: [], steal }, sshfs: { median: 1, samples: [1], errors: [], steal: [0.01] } },
    });
    const line = stealSummary([row('untar', [0.02, 0.3]), row('rand-read', [null, 0.04])]);
    expect(line).toBe('host steal during samples: median 2 %, worst 30 % (untar sample 2 tmount); 1 of 5 samples over 5 %, whose figures a loaded host may have lowered');
    expect(stealSummary([row('untar', [null])].map((r) => ({ ...r, tools: { tmount: r.tools.tmount } })))).toBe('');
  });
});
