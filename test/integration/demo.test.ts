import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { isAlive } from '../fixtures/sshd.mjs';

const DEMO = fileURLToPath(new URL('../../scripts/demo.mjs', import.meta.url));
const leftovers = () => readdirSync(tmpdir()).filter((name) => name.startsWith('tmount-demo-'));

describe('npm run demo (after set-up), without a terminal', () => {
  it('serves the sample folder, mounts it with the auto backend, shows it and cleans up', () => {
    const before = leftovers();
    // The demo registers its mount where a user's would go; here that is a directory of the test's own.
    const stateDir = mkdtempSync(join(tmpdir(), 'tmount-demo-state-'));
    let result;
    try {
      result = spawnSync(process.execPath, [DEMO], { encoding: 'utf8', env: { ...process.env, CI: 'true', TMOUNT_STATE_DIR: stateDir }, timeout: 60_000 });
    } finally {
      rmSync(stateDir, { recursive: true, force: true });
    }
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const out = result.stdout;
    const served = /OpenSSH server on 127\.0\.0\.1:\d+ serving (\S+)\/remote$/m.exec(out)?.[1];
    expect(served).toBeDefined();
    expect(out).toMatch(/BACKEND\s+AVAILABLE\s+DEFAULT\s+WHY/);
    expect(out).toMatch(/^\s+fuse\s+yes\s+yes/m);
    const mountpoint = /^mounted \S+ at (\S+) \(fuse, id m-[0-9a-f]{4}\)$/m.exec(out)?.[1];
    expect(mountpoint).toBeDefined();
    expect(out).toMatch(/^ID\s+MOUNTPOINT/m);
    // The sample folder, seen through the mount.
    expect(out).toMatch(/README\.txt/);
    expect(out).toMatch(/ notes$/m);
    expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(` ${mountpoint} `);
    expect(leftovers()).toEqual(before);
    expect(existsSync(served!)).toBe(false);
    // The demo's sshd ran with -f <its temp dir>/sshd_config: no process may still carry it.
    const sshdPids = spawnSync('pgrep', ['-f', served!], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).map(Number);
    expect(sshdPids.filter(isAlive)).toEqual([]);
  });
});
