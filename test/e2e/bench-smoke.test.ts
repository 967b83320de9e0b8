import { spawn } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const RUN = fileURLToPath(new URL('../../bench/run.mjs', import.meta.url));
const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));
const LIMIT_MS = 240_000;
const METRICS = ['seq-read', 'create-files'];

function fuseUsable(): boolean {
  if (process.platform !== 'linux' || !existsSync(CLI)) return false;
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** Processes whose command line or environment mentions `marker`: everything the run started inherits TMPDIR. */
function processesMentioning(marker: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    if (Number(pid) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      const environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')) continue;
      if (cmdline.includes(marker) || environ.includes(marker)) found.push(`${pid}: ${cmdline.replaceAll('\0', ' ')}`);
    } catch {
      // Gone, or not ours to read.
    }
  }
  return found;
}

function run(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [RUN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    // SIGTERM lets the benchmark clean up after itself, which this test then checks.
    const timer = setTimeout(() => child.kill('SIGTERM'), LIMIT_MS - 20_000);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

describe.skipIf(!fuseUsable())('npm run bench, quick', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'tmount-bench-smoke-'));
  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it(
    'prints a row with a number for tmount for each chosen metric, exits 0 and leaves nothing behind',
    async () => {
      const temp = join(scratch, 'tmp');
      const out = join(scratch, 'results');
      mkdirSync(temp);
      const result = await run(['--quick', '--samples', '1', '--only', METRICS.join(','), '--out', out], { ...process.env, TMPDIR: temp });
      expect(result.code, result.stderr).toBe(0);
      for (const metric of METRICS) {
        const row = result.stdout.split('\n').find((line) => line.startsWith(`${metric}:`));
        expect(row, `no row for ${metric} in:\n${result.stdout}`).toBeDefined();
        const tmountCell = row!.split(' | ')[1]?.trim();
        expect(tmountCell).toMatch(/^\d+(\.\d+)?$/);
      }
      const json = readdirSync(out).filter((name) => name.endsWith('.json'));
      expect(json).toHaveLength(1);
      const saved = JSON.parse(readFileSync(join(out, json[0]!), 'utf8'));
      expect(saved.complete).toBe(true);
      // Each sample carries the host's steal share while it ran (Linux has /proc/stat).
      for (const row of saved.metrics) {
        const tmount = row.tools.tmount;
        expect(tmount.steal).toHaveLength(tmount.samples.length);
        for (const share of tmount.steal) {
          expect(share).toBeGreaterThanOrEqual(0);
          expect(share).toBeLessThanOrEqual(1);
        }
      }
      expect(result.stdout).toMatch(/^host steal during samples: median \d+ %/m);
      // And the peak memory of tmount's process in each workload, tens of MiB at least (Node alone takes that).
      expect(result.stdout).toMatch(/^peak memory \(MiB, resident, median; tmount/m);
      for (const byTool of Object.values(saved.peakRssKiB) as Record<string, number[]>[]) {
        expect(byTool.tmount).toHaveLength(1);
        expect(byTool.tmount![0]).toBeGreaterThan(20 * 1024);
      }
      expect(Object.keys(saved.peakRssKiB).length).toBeGreaterThan(0);

      const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((line) => line.includes(temp));
      expect(mounts).toEqual([]);
      // The sshd fixture's and the benchmark's watchdogs exit within a poll or two of the end.
      let left = processesMentioning(temp);
      for (let i = 0; i < 20 && left.length; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        left = processesMentioning(temp);
      }
      expect(left).toEqual([]);
      expect(readdirSync(temp)).toEqual([]);
    },
    LIMIT_MS,
  );
});
