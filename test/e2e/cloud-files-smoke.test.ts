import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CloudFilesAddon } from '../../src/backends/cloud-files/addon-types.js';
import { cloudFilesBackend } from '../../src/backends/cloud-files/index.js';
import type { MountHandle } from '../../src/backends/types.js';
import { loadAddon } from '../../src/platform/addon-loader.js';
import { type NodeSftpServer, openNodeSftpRemoteFs, startNodeSftpServer } from '../fixtures/node-sftp-server.js';

// The Cloud Files backend for real: a sync root registered in a temp folder,
// served from an SFTP server in this process (the ssh2 fixture, so no
// OpenSSH server is needed on the runner). Runs in the Windows CI job.
//
// Everything that touches the sync root's files does so from a child
// process: this process answers the platform's callbacks, so its own
// synchronous file access there could wait for itself.

const onWindows = process.platform === 'win32';
const TEST_TIMEOUT = 60_000;
const run = promisify(execFile);
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/** Runs a snippet of JS in a fresh node, with the path as its argument, and returns what it printed. */
async function inChild(script: string, path: string): Promise<string> {
  const { stdout } = await run(process.execPath, ['-e', script, path], { timeout: 45_000, maxBuffer: 64 * 1024 * 1024 });
  return stdout.trim();
}

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

describe.skipIf(!onWindows)(`Cloud Files backend smoke test${onWindows ? '' : ` (skipped: Cloud Files is a Windows API, this is ${process.platform})`}`, () => {
  const data = randomBytes(300_000);
  const log: string[] = [];
  let remoteRoot: string;
  let localParent: string;
  let root: string;
  let server: NodeSftpServer;
  let remote: Awaited<ReturnType<typeof openNodeSftpRemoteFs>>;
  let handle: MountHandle | undefined;
  let addon: CloudFilesAddon;

  beforeAll(async () => {
    // Not built is a failure here, not a skip: this job exists to build it.
    addon = loadAddon<CloudFilesAddon>('cloud-files');
    remoteRoot = await mkdtemp(join(tmpdir(), 'tmount-smoke-remote-'));
    await writeFile(join(remoteRoot, 'hello.txt'), 'hello from the remote\n');
    await writeFile(join(remoteRoot, 'data.bin'), data);
    await mkdir(join(remoteRoot, 'sub'));
    await writeFile(join(remoteRoot, 'sub', 'inner.txt'), 'inner');
    await writeFile(join(remoteRoot, 'doomed.txt'), 'delete me');
    await writeFile(join(remoteRoot, 'old-name.txt'), 'rename me');
    server = await startNodeSftpServer(remoteRoot);
    remote = await openNodeSftpRemoteFs(server, { attrTtlMs: 0, dirTtlMs: 0, negativeTtlMs: 0 });
    localParent = await realpath(await mkdtemp(join(tmpdir(), 'tmount-smoke-local-')));
    root = join(localParent, 'sync root');
    await mkdir(root);
    handle = await cloudFilesBackend.mount({
      fs: remote.fs,
      target: { alias: '127.0.0.1', hostname: '127.0.0.1', port: server.port, user: server.user, identityFiles: [], path: '/' },
      source: `${server.user}@127.0.0.1:${server.port}:/`,
      mountpoint: root,
      readonly: false,
      tuning: {
        entryTimeout: 0,
        attrTimeout: 0,
        negativeTimeout: 0,
        maxReadAhead: 1024 * 1024,
        allowOther: false,
        defaultPermissions: false,
        idmapUser: false,
        debug: (line) => log.push(line),
      },
      remoteOwner: { uid: 0, gid: 0 },
    });
  }, TEST_TIMEOUT);

  afterAll(async () => {
    // Whatever happened above, the sync root must not outlive the test.
    try {
      await handle?.unmount();
    } finally {
      await remote?.close();
      await server?.stop();
      if (log.length > 0) process.stderr.write(`cloud-files log:\n${log.slice(-200).join('\n')}\n`);
      await rm(localParent, { recursive: true, force: true }).catch(() => {});
      await rm(remoteRoot, { recursive: true, force: true }).catch(() => {});
    }
  }, TEST_TIMEOUT);

  it('registers the folder as a sync root', async () => {
    const details = handle!.syncRoot!();
    expect(details.id).toMatch(/^tmount!S-1-[0-9-]+!/);
    expect(details.displayName).toBe(`tmount — 127.0.0.1:${server.port}:/`);
    log.push(`registered ${details.id} (shell: ${details.shell})`);
  });

  it('lists the remote directory as placeholders with their sizes, without fetching data', async () => {
    const listing = JSON.parse(
      await inChild(
        "const fs=require('fs'),p=require('path');const d=process.argv[1];console.log(JSON.stringify(fs.readdirSync(d).sort().map(n=>[n,fs.statSync(p.join(d,n)).isDirectory()?'dir':fs.statSync(p.join(d,n)).size])))",
        root,
      ),
    );
    expect(listing).toEqual([
      ['data.bin', data.length],
      ['doomed.txt', 9],
      ['hello.txt', 22],
      ['old-name.txt', 9],
      ['sub', 'dir'],
    ]);
    const state = await addon.placeholderState(join(root, 'data.bin'));
    expect(state).toMatchObject({ placeholder: true, inSyncState: 1, onDiskDataSize: 0, size: data.length });
    expect(JSON.parse(await inChild("console.log(JSON.stringify(require('fs').readdirSync(process.argv[1])))", join(root, 'sub')))).toEqual(['inner.txt']);
  }, TEST_TIMEOUT);

  it('hydrates a file with exactly the remote bytes', async () => {
    const digest = await inChild("console.log(require('crypto').createHash('sha256').update(require('fs').readFileSync(process.argv[1])).digest('hex'))", join(root, 'data.bin'));
    expect(digest).toBe(sha(data));
    expect(await inChild("console.log(require('fs').readFileSync(process.argv[1],'utf8'))", join(root, 'hello.txt'))).toBe('hello from the remote');
    expect(await addon.placeholderState(join(root, 'data.bin'))).toMatchObject({ placeholder: true, onDiskDataSize: data.length });
  }, TEST_TIMEOUT);

  it('uploads a file changed locally when it is closed', async () => {
    await inChild("require('fs').writeFileSync(process.argv[1], 'changed on Windows')", join(root, 'hello.txt'));
    await until(async () => (await readFile(join(remoteRoot, 'hello.txt'), 'utf8')) === 'changed on Windows', 'the change reached the remote');
    await until(async () => (await addon.placeholderState(join(root, 'hello.txt')))?.inSyncState === 1, 'the file is in sync again');
    expect(handle!.syncRoot!().failedUploads).toEqual([]);
  }, TEST_TIMEOUT);

  it('carries a delete and a rename to the remote', async () => {
    await inChild("require('fs').unlinkSync(process.argv[1])", join(root, 'doomed.txt'));
    expect(existsSync(join(remoteRoot, 'doomed.txt'))).toBe(false);
    await inChild("require('fs').renameSync(process.argv[1], process.argv[1].replace('old-name', 'new-name'))", join(root, 'old-name.txt'));
    expect(await readFile(join(remoteRoot, 'new-name.txt'), 'utf8')).toBe('rename me');
    expect(existsSync(join(remoteRoot, 'old-name.txt'))).toBe(false);
  }, TEST_TIMEOUT);

  it('unmounts: placeholders removed, sync root unregistered, the remote untouched', async () => {
    await handle!.unmount();
    handle = undefined;
    expect(await readdir(root)).toEqual([]);
    expect((await readdir(remoteRoot)).sort()).toEqual(['data.bin', 'hello.txt', 'new-name.txt', 'sub']);
  }, TEST_TIMEOUT);
});
