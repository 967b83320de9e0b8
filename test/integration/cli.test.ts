import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tmount } from '../fixtures/cli.js';

const homes: string[] = [];
afterAll(async () => {
  for (const home of homes) await rm(home, { recursive: true, force: true });
});

function expectOneLineError(result: ReturnType<typeof tmount>, code: number, pattern: RegExp): void {
  expect(result.code).toBe(code);
  expect(result.stdout).toBe('');
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(/^tmount: /);
  expect(lines[0]).toMatch(pattern);
}

describe('tmount CLI', () => {
  it('--help lists every command and the exit codes', () => {
    const result = tmount(['--help']);
    expect(result.code).toBe(0);
    for (const command of ['mount', 'unmount', 'status', 'events', 'backends']) {
      expect(result.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    }
    expect(result.stdout).toContain('2 usage');
  });

  it.each(['mount', 'unmount', 'status', 'events', 'backends'])('%s --help describes its options', (command) => {
    const result = tmount([command, '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain(`Usage: tmount ${command}`);
    expect(result.stdout).toContain('--help');
  });

  it('mount --help shows the remote forms and backend choices', () => {
    const { stdout } = tmount(['mount', '--help']);
    expect(stdout).toContain('[user@]host[:port]:/path');
    expect(stdout).toMatch(/auto, or one of fuse, nfs, cloud-files,\s+fileprovider/);
  });

  it('backends --format json lists the four backends with a reason each', () => {
    const result = tmount(['backends', '--format', 'json']);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as { name: string; available: boolean; reason: string; default: boolean }[];
    expect(report.map((entry) => entry.name)).toEqual(['fuse', 'nfs', 'cloud-files', 'fileprovider']);
    for (const entry of report) {
      expect(typeof entry.available).toBe('boolean');
      expect(entry.reason).toMatch(/\w/);
      if (entry.default) expect(entry.available).toBe(true);
    }
    expect(report.filter((entry) => entry.default).length).toBeLessThanOrEqual(1);
    // This machine is Linux: the Windows and macOS backends say why not.
    expect(report[2]!.reason).toMatch(/Windows API/);
    expect(report[3]!.reason).toMatch(/macOS framework/);
  });

  it('backends prints an aligned table by default', () => {
    const { code, stdout } = tmount(['backends']);
    expect(code).toBe(0);
    const lines = stdout.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^BACKEND\s+AVAILABLE\s+DEFAULT\s+WHY$/);
    expect(lines).toHaveLength(5);
    const whyColumn = lines[0]!.indexOf('WHY');
    for (const line of lines.slice(1)) expect(line[whyColumn - 1]).toBe(' ');
  });

  it('rejects a malformed remote spec with exit code 2 and one line', () => {
    expectOneLineError(tmount(['mount', 'example.org', '/tmp']), 2, /invalid remote 'example.org': there is no ':'/);
    expectOneLineError(tmount(['mount', 'host:70000:/x']), 2, /port 70000 is outside 1-65535/);
  });

  it('rejects an unknown backend with exit code 2', () => {
    expectOneLineError(tmount(['mount', 'host:/x', '--backend', 'smb']), 2, /unknown backend 'smb'; choose one of auto/);
  });

  it('names the reason when the chosen backend cannot run here, and creates nothing', async () => {
    const home = await mkdtemp(join(tmpdir(), 'tmount-home-'));
    homes.push(home);
    expectOneLineError(
      tmount(['mount', 'host:/x', '--backend', 'cloud-files'], { HOME: home }),
      3,
      /backend 'cloud-files' is not available: Cloud Files is a Windows API/,
    );
    expect(existsSync(join(home, 'tmount'))).toBe(false);
  });

  it('a host that refuses the connection is exit code 5, and the default mountpoint it made is gone again', async () => {
    const home = await mkdtemp(join(tmpdir(), 'tmount-home-'));
    homes.push(home);
    const result = tmount(['mount', '127.0.0.1:1:/x', '--backend', 'fuse'], { HOME: home, SSH_AUTH_SOCK: '' });
    if (result.code === 3) return; // No FUSE on this machine: covered by the backend tests.
    expectOneLineError(result, 5, /127\.0\.0\.1:1.*refused/i);
    expect(existsSync(join(home, 'tmount'))).toBe(false);
  });

  it('status --format json follows schema version 1', () => {
    const result = tmount(['status', '--format', 'json']);
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ schemaVersion: 1, mounts: [] });
  });

  it('unmount needs a target or --all, and an unknown target is exit code 8', () => {
    expectOneLineError(tmount(['unmount']), 2, /name what to unmount/);
    expectOneLineError(tmount(['unmount', 'm-0000']), 8, /no mount matches 'm-0000'/);
    expect(tmount(['unmount', '--all']).code).toBe(0);
  });

  it('an unknown command or option is a usage error', () => {
    expectOneLineError(tmount(['frobnicate']), 2, /unknown command 'frobnicate'; see 'tmount --help'/);
    expectOneLineError(tmount(['backends', '--format', 'xml']), 2, /argument 'xml' is invalid/);
    expectOneLineError(tmount(['mount']), 2, /missing required argument 'remote'/);
  });
});
