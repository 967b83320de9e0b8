import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { kernelTmountMounts } from '../../src/control/mounts.js';
import { socketFor } from '../../src/control/registry.js';
import { CLI } from '../fixtures/cli.js';
import { FaultProxy } from '../fixtures/fault-proxy.js';
import { descendants, isAlive, killQuietly, startSshd, type SshServer } from '../fixtures/sshd.mjs';
import { run } from '../fixtures/tmount-mount.js';

const WATCHDOG = fileURLToPath(new URL('../fixtures/mount-watchdog.mjs', import.meta.url));

let server: SshServer;
let proxy: FaultProxy;
let base: string;
let stateDir: string;
let knownHosts: string;
let counter = 0;
const env = () => ({ ...process.env, TMOUNT_STATE_DIR: stateDir, SSH_AUTH_SOCK: '' });
const tmount = (args: string[], timeout = 60_000) => run(process.execPath, [CLI, ...args], { env: env(), timeout });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface MountEntry {
  id: string;
  pid: number;
  state: { state: string; reason?: string };
  connection: { state: string; reconnects: number };
}

async function statusOf(id: string): Promise<MountEntry | undefined> {
  const result = await tmount(['status', '--format', 'json']);
  return (JSON.parse(result.stdout) as { mounts: MountEntry[] }).mounts.find((m) => m.id === id);
}

async function waitFor(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(200);
  }
  throw new Error(`timed out waiting until ${what}`);
}

/** Connections a mount's control socket has accepted: each shows the socket's path in /proc/net/unix, as the listener does. */
async function controlConnections(id: string): Promise<number> {
  const path = socketFor(id, stateDir);
  const table = await readFile('/proc/net/unix', 'utf8');
  return table.split('\n').filter((line) => line.endsWith(` ${path}`)).length - 1;
}

/**
 * Collects `tmount events --format json` lines for one mount, once it is
 * connected: a loaded machine can take longer to start it than a fixed wait.
 */
async function watchEvents(id: string): Promise<{ stop(): void; events(): { type: string; state: unknown; attempt?: number; reason?: string }[] }> {
  const child: ChildProcess = spawn(process.execPath, [CLI, 'events', '--format', 'json', id], { env: env(), stdio: ['ignore', 'pipe', 'ignore'] });
  let out = '';
  child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
  const watcher = {
    stop: () => child.kill('SIGINT'),
    events: () => out.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line).event),
  };
  try {
    await waitFor('tmount events is connected', async () => (await controlConnections(id)) >= 1);
  } catch (err) {
    watcher.stop();
    throw err;
  }
  // Its subscribe request follows the connection at once.
  await sleep(200);
  return watcher;
}

/** A background mount through the fault proxy, with short timeouts so outages are quick to see. */
async function mountThroughProxy(extra: string[] = []): Promise<{ id: string; pid: number; mountpoint: string; remote: string }> {
  const sub = `r${++counter}`;
  const remote = join(server.remoteRoot, sub);
  await mkdir(remote);
  await writeFile(join(remote, 'hello.txt'), 'hello\n');
  const mountpoint = join(base, `mnt-${sub}`);
  await mkdir(mountpoint);
  const result = await tmount([
    'mount', '--identity', server.privateKeyPath, '--ssh-option', `UserKnownHostsFile=${knownHosts}`,
    '--keepalive', '1,2', '--op-timeout', '4', ...extra,
    `${server.user}@127.0.0.1:${proxy.port}:${remote}`, mountpoint,
  ]);
  expect(result.code, result.stderr).toBe(0);
  const id = /id (m-[0-9a-f]{4})\)/.exec(result.stdout)![1]!;
  const entry = (await statusOf(id))!;
  spawn(process.execPath, [WATCHDOG, String(process.pid), String(entry.pid), mountpoint], { detached: true, stdio: 'ignore' }).unref();
  return { id, pid: entry.pid, mountpoint, remote };
}

beforeAll(async () => {
  server = await startSshd();
  proxy = await new FaultProxy(server.port).start();
  base = await mkdtemp(join(tmpdir(), 'tmount-resil-'));
  stateDir = join(base, 'state');
  knownHosts = join(base, 'known_hosts');
  await writeFile(knownHosts, `[127.0.0.1]:${proxy.port} ${server.hostPublicKey}\n`);
}, 30_000);

beforeEach(() => {
  proxy.pass();
  proxy.setLatency(0);
});

afterEach(async () => {
  proxy.pass();
  await tmount(['unmount', '--all', '--force']);
});

afterAll(async () => {
  for (const path of kernelTmountMounts().filter((p) => p.startsWith(base))) await run('umount', ['-l', path]);
  await proxy?.stop();
  await rm(base, { recursive: true, force: true });
  await server?.stop();
}, 30_000);

describe('riding through network trouble', () => {
  it('(1) reconnects after the connection is cut while idle, and files stay readable', async () => {
    const mount = await mountThroughProxy();
    const events = await watchEvents(mount.id);
    try {
      proxy.cut();
      await waitFor('the mount is active again after a reconnect', async () => {
        const entry = await statusOf(mount.id);
        return entry?.state.state === 'active' && entry.connection.state === 'connected' && entry.connection.reconnects === 1;
      });
      expect((await run('cat', [join(mount.mountpoint, 'hello.txt')])).stdout).toBe('hello\n');
      const seen = events.events();
      expect(seen).toContainEqual(expect.objectContaining({ type: 'connection_state', state: 'reconnecting' }));
      expect(seen).toContainEqual(expect.objectContaining({ type: 'mount_state', state: { state: 'reconnecting' } }));
      expect(seen).toContainEqual(expect.objectContaining({ type: 'connection_state', state: 'connected' }));
      expect(seen).toContainEqual(expect.objectContaining({ type: 'mount_state', state: { state: 'active' } }));
    } finally {
      events.stop();
    }
  });

  it('(2) a file half written before a cut and finished after it arrives byte-identical, never reopened by the user', async () => {
    const mount = await mountThroughProxy();
    const first = randomBytes(3 * 1024 * 1024);
    const second = randomBytes(3 * 1024 * 1024);
    const target = join(mount.mountpoint, 'halves.bin');
    // One process, one open file: writes half, waits for a line on stdin, writes the rest, closes.
    const writer = spawn('python3', ['-c', `
import sys
f = open(sys.argv[1], 'wb')
f.write(open(sys.argv[2], 'rb').read()); f.flush()
print('half', flush=True)
sys.stdin.readline()
f.write(open(sys.argv[3], 'rb').read())
f.close()
print('done', flush=True)
`, target, join(base, 'first.bin'), join(base, 'second.bin')], { stdio: ['pipe', 'pipe', 'pipe'] });
    await writeFile(join(base, 'first.bin'), first);
    await writeFile(join(base, 'second.bin'), second);
    let out = '';
    let err = '';
    writer.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    writer.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    const exited = new Promise<number | null>((resolve) => writer.once('exit', resolve));
    await waitFor('the first half is written', async () => out.includes('half'));
    proxy.cut();
    await waitFor('reconnected', async () => (await statusOf(mount.id))?.connection.reconnects === 1);
    writer.stdin!.write('go\n');
    expect(await exited, err).toBe(0);
    const expected = createHash('sha256').update(Buffer.concat([first, second])).digest('hex');
    const actual = createHash('sha256').update(await readFile(join(mount.remote, 'halves.bin'))).digest('hex');
    expect(actual).toBe(expected);
  }, 60_000);

  it('(3) a blackhole longer than --op-timeout fails an uncached stat in time while a cached one (and a symlink read before) still answers', async () => {
    const mount = await mountThroughProxy(['--attr-timeout', '120']);
    await writeFile(join(mount.remote, 'never-seen.txt'), 'x');
    await symlink('hello.txt', join(mount.remote, 'link'));
    expect((await run('stat', [join(mount.mountpoint, 'hello.txt')])).code).toBe(0);
    expect((await run('readlink', [join(mount.mountpoint, 'link')])).stdout).toBe('hello.txt\n');
    proxy.blackhole();
    const started = Date.now();
    const uncached = await run('stat', [join(mount.mountpoint, 'never-seen.txt')], { timeout: 30_000 });
    const elapsed = Date.now() - started;
    expect(uncached.code).not.toBe(0);
    expect(elapsed).toBeLessThan(4_000 + 2_000);
    const cached = await run('stat', ['-c', '%s', join(mount.mountpoint, 'hello.txt')], { timeout: 5_000 });
    expect(cached.code).toBe(0);
    expect(cached.stdout.trim()).toBe('6');
    const link = await run('readlink', [join(mount.mountpoint, 'link')], { timeout: 5_000 });
    expect(link.stdout).toBe('hello.txt\n');
  }, 60_000);

  it('(4) reconnects when sshd restarts on the same port', async () => {
    const mount = await mountThroughProxy();
    await server.restart();
    await waitFor('reconnected to the restarted server', async () => {
      const entry = await statusOf(mount.id);
      return entry?.connection.reconnects === 1 && entry.state.state === 'active';
    });
    await writeFile(join(mount.remote, 'after-restart.txt'), 'new server\n');
    expect((await run('cat', [join(mount.mountpoint, 'after-restart.txt')])).stdout).toBe('new server\n');
  }, 60_000);

  it('(5) fails with an auth reason, without looping, when the key was removed before the reconnect', async () => {
    const mount = await mountThroughProxy();
    const authorized = join(server.tempDir, 'authorized_keys');
    const saved = await readFile(authorized);
    const events = await watchEvents(mount.id);
    try {
      await writeFile(authorized, '');
      proxy.cut();
      await waitFor('the mount failed', async () => (await statusOf(mount.id))?.state.state === 'failed');
      const entry = (await statusOf(mount.id))!;
      expect(entry.state.reason).toMatch(/authentication/i);
      const attempts = events.events().filter((e) => e.type === 'connection_state' && e.state === 'reconnecting').length;
      await sleep(2_500);
      expect(events.events().filter((e) => e.type === 'connection_state' && e.state === 'reconnecting').length).toBe(attempts);
      expect((await statusOf(mount.id))?.state.state).toBe('failed');
    } finally {
      events.stop();
      await writeFile(authorized, saved);
    }
  }, 60_000);

  it('(6) with --no-reconnect a cut leaves the mount disconnected at once', async () => {
    const mount = await mountThroughProxy(['--no-reconnect']);
    proxy.cut();
    await waitFor('disconnected', async () => {
      const entry = await statusOf(mount.id);
      return entry?.state.state === 'disconnected' && entry.connection.state === 'disconnected';
    }, 10_000);
    const started = Date.now();
    expect((await run('cat', [join(mount.mountpoint, 'hello.txt')], { timeout: 10_000 })).code).not.toBe(0);
    expect(Date.now() - started).toBeLessThan(3_000);
  }, 30_000);

  it('reconnects when the sshd process serving its session is killed', async () => {
    const mount = await mountThroughProxy();
    const sessions = await descendants(server.pid);
    expect(sessions.length).toBeGreaterThan(0);
    for (const pid of sessions) killQuietly(pid, 'SIGKILL');
    await waitFor('reconnected after the session died', async () => {
      const entry = await statusOf(mount.id);
      return entry?.connection.reconnects === 1 && entry.state.state === 'active';
    });
    expect((await run('cat', [join(mount.mountpoint, 'hello.txt')])).stdout).toBe('hello\n');
  }, 60_000);

  it('reports the phases of a slow first connect as events of the mount', async () => {
    const events = spawn(process.execPath, [CLI, 'events', '--format', 'json'], { env: env(), stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    events.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    try {
      await sleep(300);
      // Every packet waits, so the login spans several seconds and the stream catches it.
      proxy.setLatency(400);
      const mount = await mountThroughProxy();
      proxy.setLatency(0);
      await waitFor('the connected event', async () => out.includes('"connected"'), 10_000);
      const seen = out.trim().split('\n').map((line) => JSON.parse(line).event).filter((e) => e.mount === mount.id);
      const phases = seen.filter((e) => e.type === 'connection_state' && e.state === 'connecting' && e.phase);
      expect(phases.length).toBeGreaterThan(0);
      expect(phases.map((e) => e.phase).join(' ')).toMatch(/authenticating|starting SFTP|checking the remote path|mounting/);
      const connected = seen.findIndex((e) => e.type === 'connection_state' && e.state === 'connected');
      expect(connected).toBeGreaterThan(seen.indexOf(phases[0]));
    } finally {
      proxy.setLatency(0);
      events.kill('SIGINT');
    }
  }, 60_000);

  it('(7) unmount during reconnecting completes and leaves no mount or process', async () => {
    const mount = await mountThroughProxy();
    await proxy.down();
    try {
      await waitFor('reconnecting', async () => (await statusOf(mount.id))?.state.state === 'reconnecting');
      const result = await tmount(['unmount', mount.id], 30_000);
      expect(result.code, result.stderr).toBe(0);
      expect(kernelTmountMounts()).not.toContain(mount.mountpoint);
      expect(isAlive(mount.pid)).toBe(false);
    } finally {
      await proxy.up();
    }
  }, 60_000);
});
