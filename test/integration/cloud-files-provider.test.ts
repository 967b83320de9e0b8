import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, readdir, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CF_BLOCK, type FetchRange, statusOf } from '../../src/backends/cloud-files/placeholders.js';
import { CloudFilesProvider, type ProviderOptions } from '../../src/backends/cloud-files/provider.js';
import { FsError } from '../../src/vfs/errors.js';
import { FakeSyncRoot } from '../fixtures/fake-sync-root.js';
import { openRemoteFs, type OpenedFs } from '../fixtures/remote-fs.js';
import { useSshServer } from '../fixtures/ssh-server.js';

// The Cloud Files provider against a real sshd, through the same methods the
// addon's callbacks reach (via CloudFilesDriver), with FakeSyncRoot playing
// the Windows platform on a temp directory. What only Windows can show
// (cfapi itself) is the CI smoke test's part: test/e2e/cloud-files-smoke.test.ts.

const ssh = useSshServer();
const MiB = 1024 * 1024;
/** A whole-second time, as SFTP v3 carries them. */
const T0 = 1_700_000_000;

let counter = 0;
let remoteDir: string;
let localDir: string;
let opened: OpenedFs;
let local: FakeSyncRoot;
let provider: CloudFilesProvider;
let clock: number;
let notices: string[];

/** The remote side, seen directly on disk (the fixture's remote is this machine). */
const remote = (...parts: string[]) => join(remoteDir, ...parts);
const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');

async function remoteFile(path: string, content: Buffer | string, mtime = T0): Promise<void> {
  await writeFile(remote(path), content);
  await utimes(remote(path), mtime, mtime);
}

async function start(options: Partial<ProviderOptions> = {}): Promise<void> {
  provider = new CloudFilesProvider(opened.fs, local, {
    chunkBytes: 256 * 1024,
    readAheadBytes: MiB,
    now: () => clock,
    notice: (line) => notices.push(line),
    ...options,
  });
  local.attach(provider);
}

async function collect(path: string, range: FetchRange): Promise<{ offset: number; data: Buffer }[]> {
  const chunks: { offset: number; data: Buffer }[] = [];
  await provider.fetchData(path, range, async (offset, data) => void chunks.push({ offset, data }));
  return chunks;
}

beforeEach(async () => {
  remoteDir = join(ssh.server.remoteRoot, `cf${++counter}`);
  await mkdir(remoteDir);
  localDir = await mkdtemp(join(tmpdir(), 'tmount-cf-local-'));
  // No caching: every question reaches the remote, so remote changes show at once.
  opened = await openRemoteFs(ssh.server, { root: remoteDir, attrTtlMs: 0, dirTtlMs: 0, negativeTtlMs: 0 });
  local = new FakeSyncRoot(localDir);
  clock = 1_000_000;
  notices = [];
  await start();
});
afterEach(async () => {
  await provider.stop(1_000);
  await opened?.close();
  await rm(localDir, { recursive: true, force: true });
});
afterAll(async () => {
  await rm(localDir, { recursive: true, force: true }).catch(() => {});
});

describe('Cloud Files provider against a real sshd', () => {
  it('lists a directory as placeholders with sizes and times, leaving out what Windows cannot hold', async () => {
    await remoteFile('a.txt', 'hello');
    await mkdir(remote('sub'));
    await utimes(remote('sub'), T0 + 5, T0 + 5);
    await remoteFile('big.bin', randomBytes(3 * MiB + 123), T0 + 9);
    await symlink('a.txt', remote('link'));
    await remoteFile('bad:name', 'x');
    await remoteFile('CON.txt', 'x');
    await remoteFile('Case', 'x');
    await remoteFile('case', 'x');
    await remoteFile('trailing.', 'x');

    const specs = await provider.listPlaceholders('');
    expect(specs.map(({ name, isDirectory, size, mtimeMs }) => ({ name, isDirectory, size, mtimeMs }))).toEqual([
      { name: 'Case', isDirectory: false, size: 1, mtimeMs: T0 * 1000 },
      { name: 'a.txt', isDirectory: false, size: 5, mtimeMs: T0 * 1000 },
      { name: 'big.bin', isDirectory: false, size: 3 * MiB + 123, mtimeMs: (T0 + 9) * 1000 },
      { name: 'sub', isDirectory: true, size: 0, mtimeMs: (T0 + 5) * 1000 },
    ]);
    expect(notices.join('\n')).toMatch(/'link' is not shown: it is a symbolic link/);
    expect(notices.join('\n')).toMatch(/'bad:name' is not shown: it contains a character/);
    expect(notices.join('\n')).toMatch(/'CON.txt' is not shown: it is a reserved device name/);
    expect(notices.join('\n')).toMatch(/'case' is not shown: it differs from 'Case' only in case/);
    expect(notices.join('\n')).toMatch(/'trailing.' is not shown: it ends with a dot/);

    // FETCH_PLACEHOLDERS: the platform creates what the provider hands over.
    const sink = local.sink('');
    await provider.fetchPlaceholders('', sink);
    expect(sink.received[0]!.map((spec) => spec.name)).toEqual(['Case', 'a.txt', 'big.bin', 'sub']);
    expect(await local.localState('big.bin')).toMatchObject({ placeholder: true, inSync: true, hydrated: false, size: 3 * MiB + 123, modifiedMs: (T0 + 9) * 1000 });
    expect(await local.localState('sub')).toMatchObject({ placeholder: true, isDirectory: true, inSync: true });
    // The same directory enumerated again hands over nothing it already has.
    const again = local.sink('');
    await provider.fetchPlaceholders('', again);
    expect(again.received).toEqual([[]]);
  });

  it('hydrates a byte range with exactly the remote bytes, in 4 KiB-aligned chunks', async () => {
    const content = randomBytes(3 * MiB + 123);
    await remoteFile('big.bin', content);
    const fileSize = content.length;

    // An unaligned range in the middle, with no optional range: only the blocks it touches.
    const middle = await collect('big.bin', { fileSize, requiredOffset: 100 * CF_BLOCK + 17, requiredLength: 70_000, optionalOffset: 0, optionalLength: 0 });
    expect(middle[0]!.offset).toBe(100 * CF_BLOCK);
    const end = middle.at(-1)!.offset + middle.at(-1)!.data.length;
    expect(end).toBe(Math.ceil((100 * CF_BLOCK + 17 + 70_000) / CF_BLOCK) * CF_BLOCK);
    for (const { offset, data } of middle) {
      expect(offset % CF_BLOCK).toBe(0);
      expect(data.length % CF_BLOCK).toBe(0);
      expect(data.equals(content.subarray(offset, offset + data.length))).toBe(true);
    }

    // The tail: the last chunk ends at the end of the file, unaligned.
    const tail = await collect('big.bin', { fileSize, requiredOffset: fileSize - 5000, requiredLength: 5000, optionalOffset: 0, optionalLength: 0 });
    expect(tail.at(-1)!.offset + tail.at(-1)!.data.length).toBe(fileSize);
    expect(Buffer.concat(tail.map((chunk) => chunk.data)).equals(content.subarray(tail[0]!.offset))).toBe(true);

    // A small read with the rest of the file optional: read-ahead (1 MiB here), in 256 KiB chunks.
    const ahead = await collect('big.bin', { fileSize, requiredOffset: 0, requiredLength: CF_BLOCK, optionalOffset: 0, optionalLength: -1 });
    expect(ahead.map((chunk) => [chunk.offset, chunk.data.length])).toEqual([0, 1, 2, 3].map((index) => [index * 256 * 1024, 256 * 1024]));

    // The whole file, as pinning or CfHydratePlaceholder asks for it.
    const sink = local.sink('');
    await provider.fetchPlaceholders('', sink);
    await local.hydrate('big.bin');
    expect(sha(await readFile(join(localDir, 'big.bin')))).toBe(sha(content));
    expect(await local.localState('big.bin')).toMatchObject({ hydrated: true, inSync: true });
  });

  it('refuses to hydrate a file that changed size on the remote, so no reader sees a mix', async () => {
    await remoteFile('a.txt', 'hello');
    await provider.fetchPlaceholders('', local.sink(''));
    await remoteFile('a.txt', 'hello, longer now', T0 + 60);
    const err = await provider.fetchData('a.txt', { fileSize: 5, requiredOffset: 0, requiredLength: 5, optionalOffset: 0, optionalLength: 0 }, async () => {}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FsError);
    expect((err as FsError).message).toMatch(/changed on the remote/);
    expect(statusOf(err)).toBe('unsuccessful');
  });

  it('carries renames and deletes to the remote before they happen locally', async () => {
    await remoteFile('a.txt', 'hello');
    await mkdir(remote('dir'));
    await remoteFile('dir/inner.txt', 'inner');
    await mkdir(remote('full'));
    await remoteFile('full/keep.txt', 'keep');
    await provider.fetchPlaceholders('', local.sink(''));

    await provider.rename('a.txt', 'dir/b.txt', false);
    expect(await readFile(remote('dir', 'b.txt'), 'utf8')).toBe('hello');
    await expect(stat(remote('a.txt'))).rejects.toThrow(/ENOENT/);

    await provider.rename('dir', 'renamed', true);
    expect(await readFile(remote('renamed', 'inner.txt'), 'utf8')).toBe('inner');

    // Out of the sync root: refused, the remote keeps the file.
    const out = await provider.rename('renamed/inner.txt', undefined, false).catch((e: unknown) => e);
    expect(statusOf(out)).toBe('notSupported');
    expect(await readFile(remote('renamed', 'inner.txt'), 'utf8')).toBe('inner');

    await provider.delete('renamed/inner.txt', false);
    await provider.delete('renamed/b.txt', false);
    await provider.delete('renamed', true);
    await expect(stat(remote('renamed'))).rejects.toThrow(/ENOENT/);

    // A directory that is not empty on the remote is refused, and stays.
    const refused = await provider.delete('full', true).catch((e: unknown) => e);
    expect(statusOf(refused)).toBe('notEmpty');
    expect(await readFile(remote('full', 'keep.txt'), 'utf8')).toBe('keep');
    // Deleting something already gone from the remote is no error.
    await provider.delete('never-there.txt', false);
  });

  it('uploads a modified file when it is closed, with identical content, and marks it in sync', async () => {
    await remoteFile('doc.bin', 'old');
    await provider.fetchPlaceholders('', local.sink(''));
    const content = randomBytes(2 * MiB + 4321);
    await writeFile(join(localDir, 'doc.bin'), content);
    expect(await local.localState('doc.bin')).toMatchObject({ placeholder: true, inSync: false });

    await provider.closed('doc.bin', false);
    expect(sha(await readFile(remote('doc.bin')))).toBe(sha(content));
    expect(await local.localState('doc.bin')).toMatchObject({ inSync: true });
    expect(provider.state()).toEqual({ pendingUploads: 0, failedUploads: [] });

    // A close without a change sends nothing.
    await remoteFile('doc.bin', 'changed behind our back');
    await provider.closed('doc.bin', false);
    expect(await readFile(remote('doc.bin'), 'utf8')).toBe('changed behind our back');
  });

  it('uploads new local files and directories the watcher reports, creating remote directories first', async () => {
    await provider.fetchPlaceholders('', local.sink(''));
    const content = randomBytes(300_000);
    await mkdir(join(localDir, 'new', 'deeper'), { recursive: true });
    await writeFile(join(localDir, 'new', 'deeper', 'file.bin'), content);

    await provider.localChanged('new/deeper/file.bin');
    expect(sha(await readFile(remote('new', 'deeper', 'file.bin')))).toBe(sha(content));
    expect(local.isPlaceholder('new')).toBe(true);
    expect(local.isPlaceholder('new/deeper/file.bin')).toBe(true);
    expect(await local.localState('new/deeper/file.bin')).toMatchObject({ inSync: true });
    // The directory's own event finds it already in sync.
    await provider.localChanged('new');
    expect(await local.localState('new')).toMatchObject({ placeholder: true, inSync: true });
    // An empty new directory on its own.
    await mkdir(join(localDir, 'solo'));
    await provider.localChanged('solo');
    expect((await stat(remote('solo'))).isDirectory()).toBe(true);
    expect(await local.localState('solo')).toMatchObject({ placeholder: true, inSync: true });
    // The watch tick knows the uploaded file for what it is: no refresh drops its local data.
    local.calls.length = 0;
    await provider.refresh();
    expect(local.calls.filter((call) => call.startsWith('update'))).toEqual([]);
    expect(sha(await readFile(join(localDir, 'new', 'deeper', 'file.bin')))).toBe(sha(content));
  });

  it('keeps a failed upload as an error state with the local file intact, and retries it', async () => {
    await remoteFile('report.txt', 'v1');
    await provider.fetchPlaceholders('', local.sink(''));
    await writeFile(join(localDir, 'report.txt'), 'v2, written locally');
    // Meanwhile the remote name became a directory: the upload cannot go through.
    await rm(remote('report.txt'));
    await mkdir(remote('report.txt'));

    await expect(provider.upload('report.txt')).rejects.toMatchObject({ code: 'EISDIR' });
    const { failedUploads } = provider.state();
    expect(failedUploads).toEqual([
      { path: 'report.txt', error: expect.stringMatching(/EISDIR/), since: new Date(clock).toISOString(), attempts: 1, nextRetry: new Date(clock + 5_000).toISOString() },
    ]);
    expect(notices.join('\n')).toMatch(/upload of 'report.txt' failed \(attempt 1\).*the local file is kept/);
    expect(await readFile(join(localDir, 'report.txt'), 'utf8')).toBe('v2, written locally');
    expect(await local.localState('report.txt')).toMatchObject({ inSync: false });

    // Not yet due: the tick leaves it alone.
    await provider.refresh();
    expect(provider.state().failedUploads[0]!.attempts).toBe(1);
    // Fixed on the remote and due: the tick uploads it.
    await rm(remote('report.txt'), { recursive: true });
    clock += 5_000;
    await provider.refresh();
    expect(await readFile(remote('report.txt'), 'utf8')).toBe('v2, written locally');
    expect(provider.state().failedUploads).toEqual([]);
    expect(await local.localState('report.txt')).toMatchObject({ inSync: true });
  });

  it('reflects remote changes when a directory is browsed again and on the watch tick', async () => {
    await remoteFile('same.txt', 'same');
    await remoteFile('grows.txt', 'small');
    await remoteFile('gone.txt', 'bye');
    await remoteFile('mine.txt', 'base');
    await provider.fetchPlaceholders('', local.sink(''));
    await local.hydrate('grows.txt');
    await writeFile(join(localDir, 'mine.txt'), 'edited here');

    await remoteFile('grows.txt', 'much bigger than before', T0 + 100);
    await rm(remote('gone.txt'));
    await remoteFile('fresh.txt', 'new');
    await remoteFile('mine.txt', 'edited there', T0 + 100);

    // Browsing again: only the new name is handed over; the rest follows.
    const sink = local.sink('');
    await provider.fetchPlaceholders('', sink);
    expect(sink.received).toEqual([[expect.objectContaining({ name: 'fresh.txt' })]]);
    expect(await local.localState('grows.txt')).toMatchObject({ size: 23, hydrated: false, inSync: true, modifiedMs: (T0 + 100) * 1000 });
    expect(await local.localState('gone.txt')).toBeUndefined();
    expect(await readFile(join(localDir, 'mine.txt'), 'utf8')).toBe('edited here');
    expect(notices.join('\n')).toMatch(/'mine.txt' changed both here and on the remote; the local copy is kept/);

    // The watch tick, for a recently browsed directory.
    await remoteFile('later.txt', 'tick');
    await provider.refresh();
    expect(await local.localState('later.txt')).toMatchObject({ placeholder: true, size: 4 });

    // Long after the last browse: no comparison, but the next enumeration asks again.
    clock += provider.options.activeDirMs + 1;
    local.calls.length = 0;
    await provider.refresh();
    expect(local.calls).toEqual(['stale ']);
  });

  it('refreshes a pinned file the remote changed: unpin, update, pin, fetch again', async () => {
    await remoteFile('kept.bin', randomBytes(10_000));
    await provider.fetchPlaceholders('', local.sink(''));
    await provider.pin('kept.bin');
    const changed = randomBytes(12_345);
    await remoteFile('kept.bin', changed, T0 + 30);
    await provider.refresh();
    await provider.settled();
    expect(local.calls).toEqual([
      'create : kept.bin',
      'pin kept.bin pinned',
      'hydrate kept.bin',
      'pin kept.bin unspecified',
      'update kept.bin',
      'pin kept.bin pinned',
      'hydrate kept.bin',
    ]);
    expect(sha(await readFile(join(localDir, 'kept.bin')))).toBe(sha(changed));
    expect(await local.localState('kept.bin')).toMatchObject({ pin: 'pinned', hydrated: true, inSync: true, size: 12_345 });
  });

  it('takes up a folder left by an earlier mount: unchanged entries stay, changed ones are refreshed, local edits go up', async () => {
    await remoteFile('same.txt', 'same');
    await remoteFile('stale.txt', 'old');
    await remoteFile('edited.txt', 'base');
    await provider.fetchPlaceholders('', local.sink(''));
    await writeFile(join(localDir, 'edited.txt'), 'edited while unmounted');
    await remoteFile('stale.txt', 'newer, longer', T0 + 50);
    // And a file the user put in the folder that has a name the remote has too.
    await remoteFile('theirs.txt', 'the remote one');
    await writeFile(join(localDir, 'theirs.txt'), 'an unrelated local file');

    // A new provider knows nothing of the folder: every name it hands over is already there.
    await provider.stop(1_000);
    await start();
    local.calls.length = 0;
    await provider.fetchPlaceholders('', local.sink(''));
    expect(local.calls).toEqual(['create : edited.txt,same.txt,stale.txt,theirs.txt', 'update stale.txt']);
    expect(await local.localState('stale.txt')).toMatchObject({ size: 13, inSync: true });
    // The local edit goes up, in the background.
    await provider.settled();
    expect(await readFile(remote('edited.txt'), 'utf8')).toBe('edited while unmounted');
    expect(await readFile(remote('same.txt'), 'utf8')).toBe('same');
    // Neither side of the unrelated pair was replaced.
    expect(await readFile(remote('theirs.txt'), 'utf8')).toBe('the remote one');
    expect(await readFile(join(localDir, 'theirs.txt'), 'utf8')).toBe('an unrelated local file');
    expect(notices.join('\n')).toMatch(/'theirs.txt' is both here \(not from this mount\) and on the remote/);
  });

  it('pins (fetches everything below) and unpins (frees the space of in-sync files)', async () => {
    await mkdir(remote('album'));
    await mkdir(remote('album', 'inner'));
    const one = randomBytes(200_000);
    const two = randomBytes(50_000);
    await remoteFile('album/one.bin', one);
    await remoteFile('album/inner/two.bin', two);
    await provider.fetchPlaceholders('', local.sink(''));

    await provider.pin('album');
    expect(sha(await readFile(join(localDir, 'album', 'one.bin')))).toBe(sha(one));
    expect(sha(await readFile(join(localDir, 'album', 'inner', 'two.bin')))).toBe(sha(two));
    expect(await local.localState('album/inner/two.bin')).toMatchObject({ pin: 'pinned', hydrated: true, inSync: true });

    await provider.unpin('album');
    expect(await local.localState('album/one.bin')).toMatchObject({ pin: 'unpinned', hydrated: false, inSync: true });
    expect((await stat(join(localDir, 'album', 'inner', 'two.bin'))).size).toBe(0);
  });

  it('cleans up in-sync placeholders before the sync root goes, keeping local changes and the remote', async () => {
    await remoteFile('a.txt', 'a');
    await mkdir(remote('dir'));
    await remoteFile('dir/b.txt', 'b');
    await remoteFile('dir/edited.txt', 'c');
    await provider.fetchPlaceholders('', local.sink(''));
    await provider.fetchPlaceholders('dir', local.sink('dir'));
    await writeFile(join(localDir, 'dir', 'edited.txt'), 'not uploaded');

    const { removed, kept } = await provider.cleanup();
    expect(kept).toEqual(['dir/edited.txt']);
    expect(removed).toBe(2);
    expect(await readdir(localDir)).toEqual(['dir']);
    expect(await readdir(join(localDir, 'dir'))).toEqual(['edited.txt']);
    // The remote lost nothing.
    expect((await readdir(remoteDir)).sort()).toEqual(['a.txt', 'dir']);
    expect((await readdir(remote('dir'))).sort()).toEqual(['b.txt', 'edited.txt']);
  });
});
