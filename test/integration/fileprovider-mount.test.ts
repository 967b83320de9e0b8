import { existsSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { domainFor } from '../../src/backends/fileprovider/domain.js';
import { type FileProviderMount, mountFileProvider } from '../../src/backends/fileprovider/index.js';
import type { DomainHost, DomainInfo } from '../../src/backends/fileprovider/host-app.js';
import type { WireItem } from '../../src/backends/fileprovider/protocol.js';
import type { MountContext } from '../../src/backends/types.js';
import { ExitCode, UserError } from '../../src/errors.js';
import { FpClient } from '../fixtures/fileprovider-client.js';
import { openRemoteFs, type OpenedFs } from '../fixtures/remote-fs.js';
import { useSshServer } from '../fixtures/ssh-server.js';

/**
 * Stands in for tmount.app, which only macOS can run: it keeps the domain
 * list the system would keep and refuses, as the real app does, to remove a
 * domain that does not exist.
 */
class FakeHost implements DomainHost {
  readonly domains = new Map<string, string>();
  readonly calls: string[] = [];
  failAdd = false;

  constructor(readonly container: string) {}

  async info() {
    return { group: 'group.dev.tmount', container: this.container };
  }

  async listDomains(): Promise<DomainInfo[]> {
    this.calls.push('list');
    return [...this.domains].map(([identifier, displayName]) => ({ identifier, displayName }));
  }

  async addDomain(identifier: string, displayName: string) {
    this.calls.push(`add ${identifier}`);
    if (this.failAdd) throw new Error('the extension is not enabled');
    this.domains.set(identifier, displayName);
  }

  async removeDomain(identifier: string) {
    this.calls.push(`remove ${identifier}`);
    return this.domains.delete(identifier);
  }

  async signal(identifier: string) {
    this.calls.push(`signal ${identifier}`);
  }
}

const ssh = useSshServer();
let counter = 0;
let container: string;
let remoteDir: string;
let opened: OpenedFs;
const mounts: FileProviderMount[] = [];

function context(path = remoteDir, port = 22): MountContext {
  return {
    fs: opened.fs,
    target: { alias: 'build-box', hostname: 'build-box.example.org', port, user: 'alice', identityFiles: [], path },
    source: `alice@build-box:${path}`,
    mountpoint: undefined,
    readonly: false,
    tuning: { entryTimeout: 0, attrTimeout: 0, negativeTimeout: 0, maxReadAhead: 0, allowOther: false, defaultPermissions: false, idmapUser: true },
    remoteOwner: { uid: 0, gid: 0 },
  };
}

async function mount(host: FakeHost, options: { isAlive?: (pid: number) => boolean; watchIntervalMs?: number; path?: string; port?: number } = {}) {
  const handle = await mountFileProvider(context(options.path, options.port), { host, version: '0.0.0-test', warn: () => {}, ...options });
  mounts.push(handle);
  return handle;
}

beforeEach(async () => {
  container = await mkdtemp(join(tmpdir(), 'tmount-group-'));
  remoteDir = join(ssh.server.remoteRoot, `m${++counter}`);
  await mkdir(remoteDir);
  opened = await openRemoteFs(ssh.server, { root: remoteDir, attrTtlMs: 0, dirTtlMs: 0, negativeTtlMs: 0 });
});

afterEach(async () => {
  for (const handle of mounts.splice(0)) await handle.unmount();
  await opened.close();
  await rm(container, { recursive: true, force: true });
});

describe('mountFileProvider with a stand-in for tmount.app', () => {
  it('serves the domain on its socket in the App Group container and registers it with its display name', async () => {
    await writeFile(join(remoteDir, 'hello.txt'), 'hi');
    const host = new FakeHost(container);
    const handle = await mount(host);
    expect(handle.domain.identifier).toMatch(/^tmount-[0-9a-f]{12}$/);
    expect(host.domains.get(handle.domain.identifier)).toBe(`tmount — alice@build-box:${remoteDir}`);
    expect(handle.socketPath).toBe(join(container, 'tmount', `${handle.domain.key}.sock`));
    expect(handle.mountpoint).toBeUndefined();
    // What `tmount status` reports for it.
    expect(handle.fileProvider).toEqual({ domain: handle.domain.identifier, displayName: `tmount — alice@build-box:${remoteDir}`, socket: handle.socketPath });
    // Right after adding it, the system is told to ask for changes (a kept domain's anchors are now expired).
    expect(host.calls).toContain(`signal ${handle.domain.identifier}`);

    const client = await FpClient.connect(handle.socketPath);
    try {
      expect(client.hello.domain).toBe(handle.domain.identifier);
      const page = await client.call<{ items: WireItem[] }>('enumerate', { container: 'root', page: null });
      expect(page.items.map((item) => item.name)).toEqual(['hello.txt']);
    } finally {
      client.close();
    }
  });

  it('gives each remote folder of one host its own domain', async () => {
    await mkdir(join(remoteDir, 'other'));
    const host = new FakeHost(container);
    const first = await mount(host);
    const second = await mount(host, { path: join(remoteDir, 'other') });
    const third = await mount(host, { port: 2222 });
    const ids = new Set([first, second, third].map((handle) => handle.domain.identifier));
    expect(ids.size).toBe(3);
    expect(host.domains.get(third.domain.identifier)).toBe(`tmount — alice@build-box:2222:${remoteDir}`);
  });

  it('refuses to mount the same remote folder twice', async () => {
    const host = new FakeHost(container);
    await mount(host);
    const adds = host.calls.filter((call) => call.startsWith('add')).length;
    const err = await mount(host).then(() => undefined, (e: unknown) => e);
    expect(err).toBeInstanceOf(UserError);
    expect((err as UserError).exitCode).toBe(ExitCode.mountpoint);
    expect((err as Error).message).toMatch(/already mounted/);
    expect(host.calls.filter((call) => call.startsWith('add')).length).toBe(adds);
  });

  it('removes the domains of mounts whose process is gone, and only those', async () => {
    const host = new FakeHost(container);
    await mkdir(join(container, 'tmount'), { recursive: true });
    const pidFile = (key: string, pid: number) => writeFileSync(join(container, 'tmount', `${key}.pid`), JSON.stringify({ pid, identifier: `tmount-${key}`, source: 'x' }));
    host.domains.set('tmount-aaaaaaaaaaaa', 'tmount — dead');
    pidFile('aaaaaaaaaaaa', 1_000_001);
    writeFileSync(join(container, 'tmount', 'aaaaaaaaaaaa.sock'), '');
    host.domains.set('tmount-bbbbbbbbbbbb', 'tmount — alive');
    pidFile('bbbbbbbbbbbb', 1_000_002);
    host.domains.set('tmount-cccccccccccc', 'tmount — no pid file');
    host.domains.set('com.example.other', 'not ours');
    await mount(host, { isAlive: (pid) => pid === 1_000_002 });
    expect([...host.domains.keys()].sort()).toEqual(['com.example.other', mounts[0]!.domain.identifier, 'tmount-bbbbbbbbbbbb'].sort());
    expect(host.calls.filter((call) => call.startsWith('remove')).sort()).toEqual(['remove tmount-aaaaaaaaaaaa', 'remove tmount-cccccccccccc']);
    expect(existsSync(join(container, 'tmount', 'aaaaaaaaaaaa.pid'))).toBe(false);
    expect(existsSync(join(container, 'tmount', 'aaaaaaaaaaaa.sock'))).toBe(false);
    expect(existsSync(join(container, 'tmount', 'bbbbbbbbbbbb.pid'))).toBe(true);
  });

  it('unmounting removes the domain once, and the socket and pid file with it', async () => {
    const host = new FakeHost(container);
    const handle = await mount(host);
    mounts.pop();
    let closed = false;
    void handle.closed.then(() => (closed = true));
    await handle.unmount();
    await handle.unmount();
    expect(host.calls.filter((call) => call.startsWith('remove'))).toEqual([`remove ${handle.domain.identifier}`]);
    expect(host.domains.has(handle.domain.identifier)).toBe(false);
    expect(existsSync(handle.socketPath)).toBe(false);
    expect(existsSync(join(container, 'tmount', `${handle.domain.key}.pid`))).toBe(false);
    await Promise.resolve();
    expect(closed).toBe(true);
    // Mounting it again works: nothing of the first mount is in the way.
    await mount(host);
  });

  it('tells the system when the watcher finds remote changes', async () => {
    const host = new FakeHost(container);
    const handle = await mount(host, { watchIntervalMs: 50 });
    const client = await FpClient.connect(handle.socketPath);
    try {
      await client.call('enumerate', { container: 'root', page: null });
    } finally {
      client.close();
    }
    const signals = () => host.calls.filter((call) => call === `signal ${handle.domain.identifier}`).length;
    await new Promise((resolve) => setTimeout(resolve, 150));
    const before = signals();
    await writeFile(join(remoteDir, 'new.txt'), 'x');
    const deadline = Date.now() + 5_000;
    while (signals() === before && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(signals()).toBeGreaterThan(before);
  });

  it('a failed registration is a backend error that leaves no socket or pid file behind', async () => {
    const host = new FakeHost(container);
    host.failAdd = true;
    const err = await mount(host).then(() => undefined, (e: unknown) => e);
    expect((err as UserError).exitCode).toBe(ExitCode.backendUnavailable);
    expect((err as Error).message).toMatch(/registering the Finder location failed: the extension is not enabled/);
    const { key } = domainFor(context().target);
    expect(existsSync(join(container, 'tmount', `${key}.sock`))).toBe(false);
    expect(existsSync(join(container, 'tmount', `${key}.pid`))).toBe(false);
  });
});
