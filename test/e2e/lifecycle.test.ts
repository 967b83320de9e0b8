import { spawn } from 'node:child_process';
import { readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { kernelTmountMounts } from '../../src/control/mounts.js';
import { SERVER_NODE_FLAGS } from '../../src/platform/server-process.js';
import { CLI } from '../fixtures/cli.js';
import { run } from '../fixtures/tmount-mount.js';
import { isAlive, killQuietly, startSshd, type SshServer } from '../fixtures/sshd.mjs';

const WATCHDOG = fileURLToPath(new URL('../fixtures/mount-watchdog.mjs', import.meta.url));
const SCHEMA = JSON.parse(readFileSync(fileURLToPath(new URL('../../schema/status.schema.json', import.meta.url)), 'utf8'));

let server: SshServer;
let base: string;
let stateDir: string;
const env = () => ({ ...process.env, TMOUNT_STATE_DIR: stateDir, SSH_AUTH_SOCK: '' });

const tmount = (args: string[], timeout = 30_000) => run(process.execPath, [CLI, ...args], { env: env(), timeout });

interface Status {
  schemaVersion: number;
  mounts: { id: string; pid: number; mountpoint: string; remote: string; backend: string; state: { state: string }; connection: { state: string; latencyMs: number | null }; stats: Record<string, number> }[];
}

async function status(): Promise<Status> {
  const result = await tmount(['status', '--format', 'json']);
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as Status;
}

/** A background mount of `sub` (made on the remote) at a fresh local dir; a watchdog unmounts it if this process dies. */
async function backgroundMount(sub: string): Promise<{ id: string; pid: number; mountpoint: string }> {
  await mkdir(join(server.remoteRoot, sub), { recursive: true });
  await writeFile(join(server.remoteRoot, sub, 'name.txt'), sub);
  const mountpoint = join(base, `mnt-${sub}`);
  await mkdir(mountpoint);
  const result = await tmount([
    'mount', '--identity', server.privateKeyPath, '--ssh-option', `UserKnownHostsFile=${server.knownHostsPath}`,
    `${server.user}@127.0.0.1:${server.port}:${join(server.remoteRoot, sub)}`, mountpoint,
  ]);
  expect(result.code, result.stderr).toBe(0);
  const id = /\(fuse, id (m-[0-9a-f]{4})\)$/m.exec(result.stdout)?.[1];
  expect(id).toBeDefined();
  const entry = (await status()).mounts.find((m) => m.id === id)!;
  spawn(process.execPath, [WATCHDOG, String(process.pid), String(entry.pid), mountpoint], { detached: true, stdio: 'ignore' }).unref();
  return { id: id!, pid: entry.pid, mountpoint };
}

beforeAll(async () => {
  server = await startSshd();
  base = await mkdtemp(join(tmpdir(), 'tmount-life-'));
  stateDir = join(base, 'state');
}, 30_000);

afterEach(async () => {
  // Whatever a test left mounted goes, forcibly if need be.
  await tmount(['unmount', '--all', '--force']);
});

afterAll(async () => {
  for (const path of kernelTmountMounts().filter((p) => p.startsWith(base))) await run('umount', ['-l', path]);
  await rm(base, { recursive: true, force: true });
  await server?.stop();
}, 30_000);

describe('background mounts, status, events and unmount', () => {
  it('status lists two mounts with their fields, in the committed JSON schema', async () => {
    const a = await backgroundMount('alpha');
    const b = await backgroundMount('beta');
    expect((await run('cat', [join(a.mountpoint, 'name.txt')])).stdout).toBe('alpha');
    expect((await run('cat', [join(b.mountpoint, 'name.txt')])).stdout).toBe('beta');

    const document = await status();
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    addFormats.default(ajv);
    const valid = ajv.validate(SCHEMA, document);
    expect(ajv.errors ?? []).toEqual([]);
    expect(valid).toBe(true);

    const byId = new Map(document.mounts.map((m) => [m.id, m]));
    for (const [mount, sub] of [[a, 'alpha'], [b, 'beta']] as const) {
      const entry = byId.get(mount.id)!;
      expect(entry.mountpoint).toBe(mount.mountpoint);
      expect(entry.remote).toBe(`${server.user}@127.0.0.1:${join(server.remoteRoot, sub)}`);
      expect(entry.backend).toBe('fuse');
      expect(entry.state).toEqual({ state: 'active' });
      expect(entry.connection.state).toBe('connected');
      expect(isAlive(entry.pid)).toBe(true);
      // The serving process runs with the heap settings large writes need.
      expect(readFileSync(`/proc/${entry.pid}/cmdline`, 'utf8').split('\0')).toEqual(expect.arrayContaining([...SERVER_NODE_FLAGS]));
      expect(entry.stats.bytesRead).toBeGreaterThan(0);
    }
    const table = await tmount(['status']);
    expect(table.stdout).toMatch(/^ID\s+MOUNTPOINT\s+REMOTE\s+BACKEND\s+STATE/m);
    expect(table.stdout).toContain(a.id);
    expect(table.stdout).toContain(b.id);
  });

  it('a mount whose process was killed disappears from status and its mountpoint is unmounted', async () => {
    const a = await backgroundMount('killed');
    const b = await backgroundMount('survivor');
    killQuietly(a.pid, 'SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(kernelTmountMounts()).toContain(a.mountpoint);
    const ids = (await status()).mounts.map((m) => m.id);
    expect(ids).toContain(b.id);
    expect(ids).not.toContain(a.id);
    expect(kernelTmountMounts()).not.toContain(a.mountpoint);
    expect(kernelTmountMounts()).toContain(b.mountpoint);
  });

  it('unmounts by id and by path, leaving no mount and no process', async () => {
    const a = await backgroundMount('by-id');
    const b = await backgroundMount('by-path');
    expect((await tmount(['unmount', a.id])).code).toBe(0);
    expect((await tmount(['unmount', b.mountpoint])).code).toBe(0);
    expect(kernelTmountMounts()).not.toContain(a.mountpoint);
    expect(kernelTmountMounts()).not.toContain(b.mountpoint);
    expect(isAlive(a.pid)).toBe(false);
    expect(isAlive(b.pid)).toBe(false);
    expect((await status()).mounts).toEqual([]);
    expect((await readdir(stateDir)).filter((name) => !name.endsWith('.log'))).toEqual([]);
  });

  it('events streams a mount_state event when a mount is unmounted', async () => {
    const a = await backgroundMount('watched');
    const events = spawn(process.execPath, [CLI, 'events', '--format', 'json'], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      events.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      await new Promise((resolve) => setTimeout(resolve, 700));
      expect((await tmount(['unmount', a.id])).code).toBe(0);
      const deadline = Date.now() + 5_000;
      while (!out.includes('"unmounted"') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      const lines = out.trim().split('\n').map((line) => JSON.parse(line));
      const last = lines[lines.length - 1];
      expect(last).toMatchObject({ type: 'event', event: { type: 'mount_state', mount: a.id, state: { state: 'unmounted' } } });
      expect(Number.isNaN(Date.parse(last.at))).toBe(false);
    } finally {
      events.kill('SIGINT');
    }
  });

  it('a mount started later is picked up by a running events stream (shell format)', async () => {
    const events = spawn(process.execPath, [CLI, 'events'], { env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      events.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
      await new Promise((resolve) => setTimeout(resolve, 300));
      const a = await backgroundMount('late');
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      expect((await tmount(['unmount', a.mountpoint])).code).toBe(0);
      const deadline = Date.now() + 5_000;
      while (!out.includes('unmounted') && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
      expect(out).toContain(`[tmount] ${a.id}: mount unmounted`);
    } finally {
      events.kill('SIGINT');
    }
  });

  it('status, unmount and events of an unknown id or path are exit code 8 with one line', async () => {
    for (const args of [['status', 'm-ffff'], ['unmount', 'm-ffff'], ['unmount', join(base, 'nowhere')], ['events', 'm-ffff']]) {
      const result = await tmount(args);
      expect(result.code).toBe(8);
      expect(result.stderr.trim().split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(/no mount matches/);
    }
  });

  it('keeps the control socket private: the state dir is 0700 and the socket 0600, owned by this user', async () => {
    const a = await backgroundMount('private');
    const dir = statSync(stateDir);
    expect(dir.mode & 0o777).toBe(0o700);
    const socket = statSync(join(stateDir, `${a.id}.sock`));
    expect(socket.isSocket()).toBe(true);
    expect(socket.mode & 0o777).toBe(0o600);
    expect(socket.uid).toBe(process.getuid!());
  });

  it('a mount failure in the background is reported by the foreground command, with nothing left behind', async () => {
    const mountpoint = join(base, 'mnt-missing-remote');
    await mkdir(mountpoint);
    const result = await tmount([
      'mount', '--identity', server.privateKeyPath, '--ssh-option', `UserKnownHostsFile=${server.knownHostsPath}`,
      `${server.user}@127.0.0.1:${server.port}:${join(server.remoteRoot, 'no-such-dir')}`, mountpoint,
    ]);
    expect(result.code).toBe(9);
    expect(result.stderr.trim()).toMatch(/^tmount: the remote path of .* does not exist/);
    expect(kernelTmountMounts()).not.toContain(mountpoint);
    expect((await status()).mounts).toEqual([]);
  });

  it('refuses to talk to a mount process of another protocol version, naming both', async () => {
    const socketPath = join(stateDir, 'm-abcd.sock');
    const fake = createServer((socket) => socket.end(`${JSON.stringify({ type: 'hello', protocol: 99, version: '9.9.9', mount: 'm-abcd' })}\n`));
    await new Promise<void>((resolve) => fake.listen(socketPath, resolve));
    try {
      await writeFile(join(stateDir, 'm-abcd.json'), JSON.stringify({
        id: 'm-abcd', pid: process.pid, remote: 'x@y:/z', mountpoint: join(base, 'fake'), backend: 'fuse',
        startedAt: new Date().toISOString(), socket: socketPath, protocol: 99,
      }));
      const result = await tmount(['status', 'm-abcd']);
      expect(result.code).toBe(10);
      expect(result.stderr).toMatch(/runs tmount 9\.9\.9 \(control protocol 99\) but this is protocol 1/);
    } finally {
      await rm(join(stateDir, 'm-abcd.json'), { force: true });
      await new Promise((resolve) => fake.close(resolve));
    }
  });
});
