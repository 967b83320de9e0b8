import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { exportPathFor } from '../../src/backends/nfs/index.js';
import { MOUNT_PROGRAM } from '../../src/backends/nfs/mount-protocol.js';
import { NFS_PROGRAM, Nfs3Proc } from '../../src/backends/nfs/nfs3.js';
import { startNfsServer, type NfsServer } from '../../src/backends/nfs/nfs-server.js';
import { AcceptStat, AuthStat, encodeCall, frameRecord } from '../../src/backends/nfs/rpc.js';
import { XdrWriter } from '../../src/backends/nfs/xdr.js';
import { CLI } from '../fixtures/cli.js';
import { testNfsOptions } from '../fixtures/nfs-server.js';
import { openRemoteFs, type OpenedFs } from '../fixtures/remote-fs.js';
import { RpcTestClient } from '../fixtures/rpc-client.js';
import { useSshServer } from '../fixtures/ssh-server.js';
import { isolatedEnv, loginArgs, ok, remoteSpec, run, tempBase } from '../fixtures/tmount-mount.js';

const WATCHDOG = fileURLToPath(new URL('../fixtures/mount-watchdog.mjs', import.meta.url));
const SCHEMA = JSON.parse(readFileSync(fileURLToPath(new URL('../../schema/status.schema.json', import.meta.url)), 'utf8'));

const MiB = 1024 * 1024;
const hasLibnfs = existsSync('/usr/bin/nfs-ls') && existsSync('/usr/bin/nfs-cp') && existsSync('/usr/bin/nfs-cat');
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

const ssh = useSshServer();
let opened: OpenedFs;
let server: NfsServer;
let exportPath: string;
let local: string;
let dir: string;
let counter = 0;

const remote = (...parts: string[]) => join(ssh.server.remoteRoot, dir, ...parts);
/** A libnfs URL (see libnfs's README: nfsport, mountport and version are query arguments). */
const url = (...parts: string[]) =>
  `nfs://127.0.0.1${[exportPath, dir, ...parts].join('/')}?nfsport=${server.port}&mountport=${server.mountPort}&version=3`;

const libnfs = (tool: string, args: string[], timeout = 60_000) => ok(`/usr/bin/${tool}`, args, { timeout });

beforeAll(async () => {
  opened = await openRemoteFs(ssh.server);
  exportPath = exportPathFor(ssh.server.remoteRoot);
  server = await startNfsServer(testNfsOptions(opened.fs, exportPath));
  local = await mkdtemp(join(tmpdir(), 'tmount-nfs-client-'));
});
afterAll(async () => {
  await server?.close();
  await opened?.close();
  if (local) await rm(local, { recursive: true, force: true });
});
beforeEach(async () => {
  dir = `c${++counter}`;
  await mkdir(join(ssh.server.remoteRoot, dir));
});

describe.skipIf(!hasLibnfs)('a real NFS client (libnfs-utils) against the server', () => {
  it('nfs-ls lists a directory', async () => {
    await writeFile(remote('a.txt'), 'hello');
    await mkdir(remote('sub'));
    await writeFile(remote('sub', 'inner'), 'x');
    const listing = await libnfs('nfs-ls', [url()]);
    const names = listing
      .trim()
      .split('\n')
      .map((line) => line.trim().split(/\s+/).at(-1));
    expect(names).toEqual(expect.arrayContaining(['a.txt', 'sub']));
    expect(listing).toMatch(/^-rw-r--r--.*\s5\s+a\.txt$/m);
    expect(listing).toMatch(/^d.*\ssub$/m);
    const recursive = await libnfs('nfs-ls', ['-R', url()]);
    expect(recursive).toMatch(/inner/);
  });

  it('nfs-cat reads a file written on the remote side', async () => {
    const text = `written remotely at ${new Date().toISOString()}\n`.repeat(100);
    await writeFile(remote('remote.txt'), text);
    expect(await libnfs('nfs-cat', [url('remote.txt')])).toBe(text);
  });

  it('nfs-cp copies a 50 MiB file in and out with identical bytes', async () => {
    const data = randomBytes(50 * MiB);
    const source = join(local, 'in.bin');
    const back = join(local, 'out.bin');
    await writeFile(source, data);
    await libnfs('nfs-cp', [source, url('big.bin')], 120_000);
    expect(sha256(await readFile(remote('big.bin')))).toBe(sha256(data));
    await libnfs('nfs-cp', [url('big.bin'), back], 120_000);
    expect(sha256(await readFile(back))).toBe(sha256(data));
    await rm(source);
    await rm(back);
  }, 180_000);

  it('nfs-cp creates GUARDED: it refuses to replace an existing file, which stays intact', async () => {
    await writeFile(remote('keep.txt'), 'original content');
    const source = join(local, 'short.txt');
    await writeFile(source, 'short');
    await expect(libnfs('nfs-cp', [source, url('keep.txt')])).rejects.toThrow(/NFS3ERR_EXIST/);
    expect(await readFile(remote('keep.txt'), 'utf8')).toBe('original content');
  });
});

describe('malformed and hostile input', () => {
  async function open(): Promise<RpcTestClient> {
    return RpcTestClient.open(server.port);
  }

  async function stillAnswersNull(): Promise<void> {
    const client = await open();
    try {
      expect(await client.call(NFS_PROGRAM, 3, Nfs3Proc.null, [], null)).toMatchObject({ replyStat: 0, stat: AcceptStat.success });
      expect(await client.call(MOUNT_PROGRAM, 3, 0, [], null)).toMatchObject({ replyStat: 0, stat: AcceptStat.success });
    } finally {
      client.close();
    }
  }

  it('drops a connection that sends garbage, and still answers NULL', async () => {
    const client = await open();
    client.send(randomBytes(64 * 1024).fill(0xff, 0, 4));
    expect(await client.closedWithin(5_000)).toBe(true);
    await stillAnswersNull();
  });

  it('refuses a record larger than the cap from its header, without waiting for the bytes', async () => {
    const client = await open();
    const header = Buffer.alloc(4);
    header.writeUInt32BE((0x80000000 | (2 * MiB)) >>> 0);
    client.send(header);
    expect(await client.closedWithin(5_000)).toBe(true);
    await stillAnswersNull();
  });

  it('forgets a truncated record when its client goes away', async () => {
    for (let i = 0; i < 20; i++) {
      const client = await open();
      const call = frameRecord(encodeCall({ xid: 1, prog: NFS_PROGRAM, vers: 3, proc: 0 }));
      client.send(call.subarray(0, 4 + Math.floor(Math.random() * (call.length - 5))));
      client.close();
    }
    await stillAnswersNull();
  });

  it('answers a truncated record only when it is complete, and nothing before', async () => {
    const client = await open();
    const call = frameRecord(encodeCall({ xid: 3, prog: NFS_PROGRAM, vers: 3, proc: 0 }));
    client.send(call.subarray(0, 10));
    await new Promise((resolve) => setTimeout(resolve, 200));
    client.send(call.subarray(10));
    expect(await client.reply(3)).toMatchObject({ stat: AcceptStat.success });
    client.close();
  });

  it('answers unknown programs, versions and procedures and bad arguments with RPC errors', async () => {
    const client = await open();
    expect(await client.call(100227, 3, 0)).toMatchObject({ replyStat: 0, stat: AcceptStat.progUnavail });
    expect(await client.call(NFS_PROGRAM, 4, 0)).toMatchObject({ replyStat: 0, stat: AcceptStat.progMismatch, detail: [3, 3] });
    expect(await client.call(MOUNT_PROGRAM, 1, 1)).toMatchObject({ replyStat: 0, stat: AcceptStat.progMismatch, detail: [3, 3] });
    expect(await client.call(NFS_PROGRAM, 3, 22)).toMatchObject({ replyStat: 0, stat: AcceptStat.procUnavail });
    expect(await client.call(NFS_PROGRAM, 3, Nfs3Proc.getattr)).toMatchObject({ replyStat: 0, stat: AcceptStat.garbageArgs });
    const hugeHandle = new XdrWriter().u32(0xfffffff0).toBuffer();
    expect(await client.call(NFS_PROGRAM, 3, Nfs3Proc.getattr, [hugeHandle])).toMatchObject({ stat: AcceptStat.garbageArgs });
    const bigName = new XdrWriter().opaque(server.handles.root).u32(0x7ffffff0).toBuffer();
    expect(await client.call(NFS_PROGRAM, 3, Nfs3Proc.lookup, [bigName])).toMatchObject({ stat: AcceptStat.garbageArgs });
    expect(await client.call(NFS_PROGRAM, 3, Nfs3Proc.getattr, [new XdrWriter().opaque(server.handles.root).toBuffer()], null)).toMatchObject({
      replyStat: 1,
      stat: 1,
      detail: [AuthStat.tooWeak],
    });
    client.close();
    await stillAnswersNull();
  });

  it('requires a reserved source port unless started insecure', async () => {
    const strict = await startNfsServer(testNfsOptions(opened.fs, exportPath, { insecure: false, readonly: true }));
    const client = await RpcTestClient.open(strict.port);
    try {
      const getattr = [new XdrWriter().opaque(strict.handles.root).toBuffer()];
      expect(await client.call(NFS_PROGRAM, 3, Nfs3Proc.getattr, getattr)).toMatchObject({ replyStat: 1, stat: 1, detail: [AuthStat.tooWeak] });
      expect(await client.call(NFS_PROGRAM, 3, Nfs3Proc.null)).toMatchObject({ replyStat: 0, stat: AcceptStat.success });
      if (process.getuid?.() === 0) {
        const reserved = await RpcTestClient.open(strict.port, 800 + Math.floor(Math.random() * 150));
        const reply = await reserved.call(NFS_PROGRAM, 3, Nfs3Proc.getattr, getattr);
        expect(reply).toMatchObject({ replyStat: 0, stat: AcceptStat.success });
        expect(reply.body.u32()).toBe(0);
        reserved.close();
      }
    } finally {
      client.close();
      await strict.close();
    }
  });
});

describe.skipIf(!hasLibnfs)('tmount mount --backend nfs --no-os-mount, end to end through the CLI', () => {
  let base: string | undefined;
  let cli: ChildProcess | undefined;
  let exited: Promise<number | null> | undefined;

  afterAll(async () => {
    if (cli && cli.exitCode === null && cli.signalCode === null) {
      cli.kill('SIGKILL');
      await exited;
    }
    if (base) await rm(base, { recursive: true, force: true });
  });

  it('serves the export, shows its ports in status, works with nfs-ls, and stops on tmount unmount', async () => {
    base = await tempBase('tmount-nfs-cli-');
    const env = await isolatedEnv(base);
    const tmount = (args: string[]) => run(process.execPath, [CLI, ...args], { env, timeout: 30_000 });
    await mkdir(join(ssh.server.remoteRoot, 'cli'), { recursive: true });
    await writeFile(join(ssh.server.remoteRoot, 'cli', 'hello.txt'), 'hello over nfs');

    const child = spawn(
      process.execPath,
      [CLI, 'mount', '--foreground', '--backend', 'nfs', '--no-os-mount', '--nfs-insecure', ...loginArgs(ssh.server), remoteSpec(ssh.server, join(ssh.server.remoteRoot, 'cli'))],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    cli = child;
    exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    // Should this test process die, the watchdog ends the CLI and removes the temp dir.
    spawn(process.execPath, [WATCHDOG, String(process.pid), String(child.pid), join(base, 'no-mountpoint'), base], { detached: true, stdio: 'ignore' }).unref();
    let stdout = '';
    let stderr = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const deadline = Date.now() + 20_000;
    while (!/^mounted /m.test(stdout) && child.exitCode === null && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50));
    expect(stdout, stderr).toMatch(/^mounted \S+ at nfs:\/\/127\.0\.0\.1\/\S+\?nfsport=\d+&mountport=\d+&version=3 \(nfs, id m-[0-9a-f]{4}\)$/m);

    const status = await tmount(['status', '--format', 'json']);
    expect(status.code, status.stderr).toBe(0);
    const document = JSON.parse(status.stdout) as { mounts: { id: string; backend: string; mountpoint: string | null; nfs?: { port: number; mountPort: number; exportPath: string } }[] };
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    addFormats.default(ajv);
    expect(ajv.validate(SCHEMA, document), JSON.stringify(ajv.errors)).toBe(true);
    expect(document.mounts).toHaveLength(1);
    const entry = document.mounts[0]!;
    expect(entry).toMatchObject({ backend: 'nfs', mountpoint: null, nfs: { exportPath: join(ssh.server.remoteRoot, 'cli') } });
    expect(entry.nfs!.port).toBeGreaterThan(0);
    const table = await tmount(['status']);
    expect(table.stdout).toContain(`nfs://127.0.0.1${entry.nfs!.exportPath}?nfsport=${entry.nfs!.port}`);

    const nfsUrl = `nfs://127.0.0.1${entry.nfs!.exportPath}?nfsport=${entry.nfs!.port}&mountport=${entry.nfs!.mountPort}&version=3`;
    expect(await libnfs('nfs-ls', [nfsUrl])).toMatch(/\shello\.txt$/m);
    const fileUrl = nfsUrl.replace('?', '/hello.txt?');
    expect(await libnfs('nfs-cat', [fileUrl])).toBe('hello over nfs');

    const unmounted = await tmount(['unmount', entry.id]);
    expect(unmounted.code, unmounted.stderr).toBe(0);
    expect(await exited).toBe(0);
    expect((await tmount(['status', '--format', 'json'])).stdout).toContain('"mounts": []');
    // The server is gone with the process.
    const probe = await run('/usr/bin/nfs-ls', [nfsUrl], { timeout: 20_000 });
    expect(probe.code).not.toBe(0);
  }, 60_000);
});
