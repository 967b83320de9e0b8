import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { chmod, chown, lstat, mkdir, readFile, readlink, rename, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { SftpSession } from '../../src/remote/sftp-session.js';
import { FsError, PresumedMissing } from '../../src/vfs/errors.js';
import { FileType, ROOT_INO, type RemoteFs } from '../../src/vfs/remote-fs.js';
import { openRemoteFs, type OpenedFs } from '../fixtures/remote-fs.js';
import { useSshServer } from '../fixtures/ssh-server.js';
import { waitFor } from '../fixtures/wait.js';

const { O_RDONLY, O_WRONLY, O_RDWR, O_CREAT, O_EXCL, O_TRUNC, O_APPEND } = fsConstants;
const MiB = 1024 * 1024;
const run = promisify(execFile);

const ssh = useSshServer();
let opened: OpenedFs;
let fs: RemoteFs;
let dir: string;
let dirIno: number;
let counter = 0;

/** The remote side, seen directly on disk (the fixture's remote is this machine). */
const remote = (...parts: string[]) => join(ssh.server.remoteRoot, dir, ...parts);

beforeAll(async () => {
  opened = await openRemoteFs(ssh.server);
  fs = opened.fs;
});
afterAll(async () => {
  await opened?.close();
});
beforeEach(async () => {
  dir = `t${++counter}`;
  await mkdir(join(ssh.server.remoteRoot, dir));
  dirIno = (await fs.lookup(ROOT_INO, dir)).ino;
});
afterEach(async () => {
  await fs.releaseAll();
});

async function errnoOf(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(FsError);
  return (err as FsError).code;
}

async function createFile(name: string, content: Buffer | string, flags = O_WRONLY): Promise<number> {
  const { fh } = await fs.create(dirIno, name, 0o644, flags | O_CREAT);
  await fs.write(fh, 0, Buffer.from(content));
  await fs.release(fh);
  return (await fs.lookup(dirIno, name)).ino;
}

async function readAll(ino: number): Promise<Buffer> {
  const { fh, attr } = await fs.open(ino, O_RDONLY);
  try {
    return await fs.read(fh, 0, attr.size + 1);
  } finally {
    await fs.release(fh);
  }
}

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('RemoteFs against a real sshd', () => {
  it('looks up, stats and lists what is on the remote', async () => {
    await writeFile(remote('a.txt'), 'hello');
    await mkdir(remote('sub'));
    await symlink('a.txt', remote('link'));
    const file = await fs.lookup(dirIno, 'a.txt');
    expect(file.attr.size).toBe(5);
    expect(file.attr.mode & FileType.S_IFMT).toBe(FileType.S_IFREG);
    expect((await fs.lookup(dirIno, 'sub')).attr.mode & FileType.S_IFMT).toBe(FileType.S_IFDIR);
    expect((await fs.lookup(dirIno, 'link')).attr.mode & FileType.S_IFMT).toBe(FileType.S_IFLNK);
    const listing = await fs.readdir(dirIno);
    expect(listing.map((e) => e.name).sort()).toEqual(['a.txt', 'link', 'sub']);
    expect(listing.find((e) => e.name === 'a.txt')?.attr.ino).toBe(file.ino);
    expect(await errnoOf(fs.lookup(dirIno, 'missing'))).toBe('ENOENT');
    expect(await errnoOf(fs.lookup(dirIno, '..'))).toBe('EINVAL');
  });

  it('presumes new names missing only in a directory it is filling, and only while it fills it', async () => {
    // Listed, but not being filled: a name made on the server shows up at once.
    await fs.readdir(dirIno);
    await writeFile(remote('late'), 'late');
    expect((await fs.lookup(dirIno, 'late')).attr.size).toBe(4);

    const made = await fs.mkdir(dirIno, 'filling', 0o755);
    const { fh } = await fs.create(made.ino, 'ours', 0o644, O_WRONLY | O_CREAT);
    await fs.release(fh);
    // Made behind the mount's back while it fills the directory: answered from
    // the listing (that is the round trip saved for every new name), and not
    // as the remote's word.
    await writeFile(remote('filling', 'theirs'), 'x');
    const presumed = await fs.lookup(made.ino, 'theirs').then(() => undefined, (err: unknown) => err);
    expect(presumed).toBeInstanceOf(PresumedMissing);
    expect((await fs.lookup(made.ino, 'ours')).attr.size).toBe(0);
    // A second after the mount's last change there, the remote is asked again.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await fs.lookup(made.ino, 'theirs')).attr.size).toBe(1);
  });

  it('writes a 200 MiB file and reads back identical bytes', async () => {
    const data = randomBytes(200 * MiB);
    const { fh } = await fs.create(dirIno, 'big.bin', 0o644, O_WRONLY | O_CREAT);
    const chunk = 1 * MiB;
    for (let at = 0; at < data.length; at += chunk) await fs.write(fh, at, data.subarray(at, at + chunk));
    await fs.release(fh);
    expect((await stat(remote('big.bin'))).size).toBe(data.length);
    expect(sha256(await readFile(remote('big.bin')))).toBe(sha256(data));

    const ino = (await fs.lookup(dirIno, 'big.bin')).ino;
    const reader = await fs.open(ino, O_RDONLY);
    const parts: Buffer[] = [];
    for (let at = 0; at < data.length; at += 128 * 1024) parts.push(await fs.read(reader.fh, at, 128 * 1024));
    await fs.release(reader.fh);
    expect(sha256(Buffer.concat(parts))).toBe(sha256(data));
  }, 120_000);

  it('reads a small file whole in one request, without asking again at its end', async () => {
    const data = randomBytes(3000);
    await writeFile(remote('small.txt'), data);
    const ino = (await fs.lookup(dirIno, 'small.txt')).ino;
    const requests = vi.spyOn(SftpSession.prototype, 'readChunk');
    const reader = await fs.open(ino, O_RDONLY);
    try {
      // What the kernel asks first for a file being read from the start.
      expect((await fs.read(reader.fh, 0, 128 * 1024)).equals(data)).toBe(true);
      // The one READ (sent with the open) comes back short at the known size: that is the end.
      expect(requests).toHaveBeenCalledTimes(1);
    } finally {
      requests.mockRestore();
      await fs.release(reader.fh);
    }
  });

  it('asks for a small file\'s data with its open when it is opened only for reading', async () => {
    const data = randomBytes(3000);
    await writeFile(remote('early.txt'), data);
    const ino = (await fs.lookup(dirIno, 'early.txt')).ino;
    const guesses = vi.spyOn(SftpSession.prototype, 'nextHandle');
    const requests = vi.spyOn(SftpSession.prototype, 'readChunk');
    try {
      const reader = await fs.open(ino, O_RDONLY);
      // Sent together with the open, through the handle the open was expected
      // to get; that guess was right, or the read below would ask again.
      expect(requests).toHaveBeenCalledTimes(1);
      expect(requests.mock.calls[0]![0]).toBe(guesses.mock.results[0]!.value);
      expect((await fs.read(reader.fh, 0, 4096)).equals(data)).toBe(true);
      expect(requests).toHaveBeenCalledTimes(1);
      await fs.release(reader.fh);

      // Unchanged and already read: the kernel keeps those pages, so nothing is fetched early.
      const again = await fs.open(ino, O_RDONLY);
      expect(again.unchanged).toBe(true);
      await fs.release(again.fh);
      // Opened for writing, or while another handle is open: nothing either.
      await writeFile(remote('early.txt'), randomBytes(2000));
      const writer = await fs.open(ino, O_RDWR);
      const second = await fs.open(ino, O_RDONLY);
      await fs.release(second.fh);
      await fs.release(writer.fh);
      expect(requests).toHaveBeenCalledTimes(1);
    } finally {
      requests.mockRestore();
      guesses.mockRestore();
    }
  });

  it('asks for no data with an open when an earlier open already fetched that version', async () => {
    const data = randomBytes(5000);
    await writeFile(remote('fetched.txt'), data);
    const ino = (await fs.lookup(dirIno, 'fetched.txt')).ino;
    const requests = vi.spyOn(SftpSession.prototype, 'readChunk');
    try {
      // Opened and closed unread (a file manager sniffing types does that).
      await fs.release((await fs.open(ino, O_RDONLY)).fh);
      expect(requests).toHaveBeenCalledTimes(1);
      const reader = await fs.open(ino, O_RDONLY);
      expect((await fs.read(reader.fh, 0, 8192)).equals(data)).toBe(true);
      await fs.release(reader.fh);
      expect(requests).toHaveBeenCalledTimes(1);
    } finally {
      requests.mockRestore();
    }
  });

  describe('with a session of its own (guessing handles depends on its history)', () => {
    let own: OpenedFs;
    let ownFs: RemoteFs;
    let ownDir: number;
    beforeEach(async () => {
      own = await openRemoteFs(ssh.server);
      ownFs = own.fs;
      ownDir = (await ownFs.lookup(ROOT_INO, dir)).ino;
    });
    afterEach(async () => {
      vi.restoreAllMocks();
      await own.close();
    });

    it('drops what an early read returned through a handle that was another open file\'s', async () => {
      const mine = randomBytes(2500);
      const other = randomBytes(2500);
      await writeFile(remote('mine.txt'), mine);
      await writeFile(remote('other.txt'), other);
      const mineIno = (await ownFs.lookup(ownDir, 'mine.txt')).ino;
      const otherIno = (await ownFs.lookup(ownDir, 'other.txt')).ino;
      const guesses = vi.spyOn(SftpSession.prototype, 'nextHandle');
      const requests = vi.spyOn(SftpSession.prototype, 'readChunk');
      const held = await ownFs.open(otherIno, O_RDONLY);
      // Its guess was right (one READ, and no other for its content).
      expect((await ownFs.read(held.fh, 0, 4096)).equals(other)).toBe(true);
      expect(requests).toHaveBeenCalledTimes(1);
      const otherHandle = guesses.mock.results[0]!.value as Buffer;
      // Make the next guess name the open file of the same size.
      guesses.mockReturnValueOnce(otherHandle);
      const reader = await ownFs.open(mineIno, O_RDONLY);
      expect(requests.mock.calls[1]![0]).toBe(otherHandle);
      expect((await ownFs.read(reader.fh, 0, 4096)).equals(mine)).toBe(true);
      // The other file's bytes were dropped and this file's read on its own.
      expect(requests).toHaveBeenCalledTimes(3);
      await ownFs.release(reader.fh);
      await ownFs.release(held.fh);
    });

    it('takes an open\'s attributes from the file it opened, and only once the handle is confirmed', async () => {
      await writeFile(remote('held.bin'), randomBytes(9000));
      await writeFile(remote('mine.txt'), randomBytes(2500));
      await utimes(remote('mine.txt'), new Date('2020-01-02T03:04:05Z'), new Date('2020-01-02T03:04:05Z'));
      const heldIno = (await ownFs.lookup(ownDir, 'held.bin')).ino;
      const mineIno = (await ownFs.lookup(ownDir, 'mine.txt')).ino;
      const guesses = vi.spyOn(SftpSession.prototype, 'nextHandle');
      const fstats = vi.spyOn(SftpSession.prototype, 'fstat');
      const stats = vi.spyOn(SftpSession.prototype, 'stat');
      const held = await ownFs.open(heldIno, O_RDONLY);
      // Stat through the handle the open was to get, in the same round trip:
      // a rename over the path in between cannot swap the attributes.
      expect(stats).not.toHaveBeenCalled();
      expect(fstats).toHaveBeenCalledTimes(1);
      const heldHandle = guesses.mock.results[0]!.value as Buffer;
      expect(fstats.mock.calls[0]![0]).toBe(heldHandle);
      expect(held.attr.size).toBe(9000);

      // A guess naming the other open file stats that file: its answer is dropped.
      guesses.mockReturnValueOnce(heldHandle);
      const reader = await ownFs.open(mineIno, O_RDONLY);
      expect(fstats.mock.calls[1]![0]).toBe(heldHandle);
      expect(reader.attr.size).toBe(2500);
      expect(reader.attr.mtimeMs).toBe(Date.parse('2020-01-02T03:04:05Z'));
      await ownFs.release(reader.fh);
      await ownFs.release(held.fh);
    });

    it('reads the right files when an open that fails is in flight before others', async () => {
      const files = Array.from({ length: 4 }, (_, i) => ({ name: `guess${i}.txt`, data: randomBytes(1000 + i * 700) }));
      for (const file of files) await writeFile(remote(file.name), file.data);
      await writeFile(remote('gone.txt'), 'x');
      await writeFile(remote('later.txt'), files[1]!.data);
      const inos = await Promise.all(files.map(async (file) => (await ownFs.lookup(ownDir, file.name)).ino));
      const goneIno = (await ownFs.lookup(ownDir, 'gone.txt')).ino;
      const laterIno = (await ownFs.lookup(ownDir, 'later.txt')).ino;
      await rm(remote('gone.txt'));
      const requests = vi.spyOn(SftpSession.prototype, 'readChunk');
      // All opens leave together. The first fails on the server and takes no
      // handle, so every later one was expected to get the wrong handle.
      const [gone, ...readers] = await Promise.allSettled([ownFs.open(goneIno, O_RDONLY), ...inos.map((ino) => ownFs.open(ino, O_RDONLY))]);
      expect(gone!.status).toBe('rejected');
      for (const [i, reader] of readers.entries()) {
        if (reader.status !== 'fulfilled') throw reader.reason;
        expect((await ownFs.read(reader.value.fh, 0, 4096)).equals(files[i]!.data)).toBe(true);
      }
      // Each wrong guess cost a READ of its own after the open.
      expect(requests).toHaveBeenCalledTimes(1 + 2 * files.length);
      for (const reader of readers) if (reader.status === 'fulfilled') await ownFs.release(reader.value.fh);

      // Once the answers are in, the next open is expected right again: one READ, with it.
      const before = requests.mock.calls.length;
      const again = await ownFs.open(laterIno, O_RDONLY);
      expect((await ownFs.read(again.fh, 0, 4096)).equals(files[1]!.data)).toBe(true);
      expect(requests.mock.calls.length - before).toBe(1);
      await ownFs.release(again.fh);
    });
  });

  it('keeps no copy of what a sequential reader has read, only what is fetched ahead of it', async () => {
    const bs = (fs as unknown as { io: { blockSize: number } }).io.blockSize;
    const data = randomBytes(8 * bs);
    await writeFile(remote('seq.bin'), data);
    const ino = (await fs.lookup(dirIno, 'seq.bin')).ino;
    const reader = await fs.open(ino, O_RDONLY);
    // Four blocks in order: the read-ahead window grows to the end of the file.
    for (let index = 0; index < 4; index++) {
      expect((await fs.read(reader.fh, index * bs, bs)).equals(data.subarray(index * bs, (index + 1) * bs))).toBe(true);
    }
    const requests = vi.spyOn(SftpSession.prototype, 'readChunk');
    try {
      const other = await fs.open(ino, O_RDONLY);
      // Fetched ahead and not read yet: still here.
      expect((await fs.read(other.fh, 5 * bs, bs)).equals(data.subarray(5 * bs, 6 * bs))).toBe(true);
      expect(requests).not.toHaveBeenCalled();
      // Read to its end: the kernel holds those pages, tmount does not.
      expect((await fs.read(other.fh, 2 * bs, bs)).equals(data.subarray(2 * bs, 3 * bs))).toBe(true);
      expect(requests).toHaveBeenCalledTimes(1);
      await fs.release(other.fh);
    } finally {
      requests.mockRestore();
    }
    await fs.release(reader.fh);
  });

  it('serves concurrent reads of different ranges with the right bytes', async () => {
    const data = randomBytes(8 * MiB);
    await writeFile(remote('r.bin'), data);
    const ino = (await fs.lookup(dirIno, 'r.bin')).ino;
    const a = await fs.open(ino, O_RDONLY);
    const b = await fs.open(ino, O_RDONLY);
    const ranges = Array.from({ length: 64 }, (_, i) => ({ fh: i % 2 ? a.fh : b.fh, offset: Math.floor((i * 7919 * 1024) % (data.length - 70_000)), size: 1000 + i * 1000 }));
    const results = await Promise.all(ranges.map((r) => fs.read(r.fh, r.offset, r.size)));
    results.forEach((got, i) => expect(got.equals(data.subarray(ranges[i]!.offset, ranges[i]!.offset + ranges[i]!.size))).toBe(true));
    expect((await fs.read(a.fh, data.length - 10, 100)).length).toBe(10);
    expect((await fs.read(a.fh, data.length + 5, 100)).length).toBe(0);
  });

  it('reads what another handle has written but not flushed, and caches no block around unflushed bytes', async () => {
    const data = randomBytes(300 * 1024 + 123);
    const { fh: writer, entry } = await fs.create(dirIno, 'shared.bin', 0o644, O_RDWR | O_CREAT);
    await fs.write(writer, 0, data);
    const reader = await fs.open(entry.ino, O_RDONLY);
    expect((await fs.read(reader.fh, 0, data.length + 10)).equals(data)).toBe(true);
    await fs.release(reader.fh);

    // Unflushed bytes beside, not inside, what a sequential reader asks for.
    const patch = Buffer.from('patched!');
    await fs.write(writer, 100_000, patch);
    expect((await fs.read(writer, 0, 1000)).equals(data.subarray(0, 1000))).toBe(true);
    expect((await fs.read(writer, 1000, 1000)).equals(data.subarray(1000, 2000))).toBe(true);
    await fs.flush(writer);
    expect((await fs.read(writer, 100_000, patch.length)).equals(patch)).toBe(true);
    await fs.release(writer);
  });

  it('creates with O_EXCL only once: the second is EEXIST', async () => {
    await createFile('once', 'x');
    expect(await errnoOf(fs.create(dirIno, 'once', 0o644, O_WRONLY | O_CREAT | O_EXCL))).toBe('EEXIST');
  });

  it('applies the create mode and O_TRUNC, O_APPEND on open', async () => {
    const { fh } = await fs.create(dirIno, 'm', 0o640, O_WRONLY | O_CREAT);
    await fs.release(fh);
    expect((await stat(remote('m'))).mode & 0o777).toBe(0o640);

    await writeFile(remote('t'), 'old content');
    const ino = (await fs.lookup(dirIno, 't')).ino;
    const truncated = await fs.open(ino, O_WRONLY | O_TRUNC);
    expect(truncated.attr.size).toBe(0);
    await fs.release(truncated.fh);
    expect(await readFile(remote('t'), 'utf8')).toBe('');

    await writeFile(remote('log'), 'one\n');
    const logIno = (await fs.lookup(dirIno, 'log')).ino;
    const appender = await fs.open(logIno, O_WRONLY | O_APPEND);
    await fs.write(appender.fh, 0, Buffer.from('two\n'));
    await fs.write(appender.fh, 0, Buffer.from('three\n'));
    await fs.release(appender.fh);
    expect(await readFile(remote('log'), 'utf8')).toBe('one\ntwo\nthree\n');
  });

  it('renames over an existing file, keeping the moved inode', async () => {
    const fromIno = await createFile('new', 'NEW');
    await createFile('old', 'OLD');
    await fs.rename(dirIno, 'new', dirIno, 'old');
    expect(await readFile(remote('old'), 'utf8')).toBe('NEW');
    await expect(lstat(remote('new'))).rejects.toThrow();
    const after = await fs.lookup(dirIno, 'old');
    expect(after.ino).toBe(fromIno);
    expect(await errnoOf(fs.lookup(dirIno, 'new'))).toBe('ENOENT');
  });

  it('refuses to replace with RENAME_NOREPLACE, and cannot exchange', async () => {
    await createFile('a', 'A');
    await createFile('b', 'B');
    expect(await errnoOf(fs.rename(dirIno, 'a', dirIno, 'b', { noReplace: true }))).toBe('EEXIST');
    expect(await errnoOf(fs.rename(dirIno, 'a', dirIno, 'b', { exchange: true }))).toBe('EINVAL');
    await fs.rename(dirIno, 'a', dirIno, 'c', { noReplace: true });
    expect(await readFile(remote('c'), 'utf8')).toBe('A');
  });

  it('moves a directory with everything in it', async () => {
    await mkdir(remote('src', 'lib'), { recursive: true });
    await writeFile(remote('src', 'lib', 'x.ts'), 'x');
    const src = await fs.lookup(dirIno, 'src');
    const lib = await fs.lookup(src.ino, 'lib');
    const x = await fs.lookup(lib.ino, 'x.ts');
    await fs.readdir(lib.ino);
    await fs.rename(dirIno, 'src', dirIno, 'dst');
    expect(await readFile(remote('dst', 'lib', 'x.ts'), 'utf8')).toBe('x');
    const dst = await fs.lookup(dirIno, 'dst');
    expect(dst.ino).toBe(src.ino);
    expect((await fs.lookup(lib.ino, 'x.ts')).ino).toBe(x.ino);
    expect((await fs.readdir(lib.ino)).map((e) => e.name)).toEqual(['x.ts']);
    expect(await errnoOf(fs.lookup(dirIno, 'src'))).toBe('ENOENT');
    expect(await errnoOf(fs.rename(dirIno, 'dst', dst.ino, 'inside'))).toBe('EINVAL');
  });

  it('reports the precise errno for directory mistakes', async () => {
    await mkdir(remote('full'));
    await writeFile(remote('full', 'f'), 'x');
    await mkdir(remote('empty'));
    await writeFile(remote('plain'), 'x');
    expect(await errnoOf(fs.rmdir(dirIno, 'full'))).toBe('ENOTEMPTY');
    expect(await errnoOf(fs.rmdir(dirIno, 'plain'))).toBe('ENOTDIR');
    expect(await errnoOf(fs.unlink(dirIno, 'empty'))).toBe('EISDIR');
    expect(await errnoOf(fs.mkdir(dirIno, 'empty', 0o755))).toBe('EEXIST');
    expect(await errnoOf(fs.rename(dirIno, 'plain', dirIno, 'full'))).toBe('EISDIR');
    expect(await errnoOf(fs.rename(dirIno, 'empty', dirIno, 'plain'))).toBe('ENOTDIR');
    await mkdir(remote('other'));
    expect(await errnoOf(fs.rename(dirIno, 'other', dirIno, 'full'))).toBe('ENOTEMPTY');
    await fs.rmdir(dirIno, 'empty');
    await expect(lstat(remote('empty'))).rejects.toThrow();
    const plainIno = (await fs.lookup(dirIno, 'plain')).ino;
    expect(await errnoOf(fs.readdir(plainIno))).toBe('ENOTDIR');
  });

  it('keeps an unlinked open file readable and writable until release', async () => {
    const ino = await createFile('doomed', 'still here');
    const { fh } = await fs.open(ino, O_RDWR);
    await fs.unlink(dirIno, 'doomed');
    await expect(lstat(remote('doomed'))).rejects.toThrow();
    expect(await errnoOf(fs.lookup(dirIno, 'doomed'))).toBe('ENOENT');
    expect((await fs.read(fh, 0, 100)).toString()).toBe('still here');
    await fs.write(fh, 0, Buffer.from('STILL'));
    await fs.flush(fh);
    expect((await fs.read(fh, 0, 100)).toString()).toBe('STILL here');
    expect((await fs.getattr(ino, fh)).size).toBe(10);
    // No name links to it any more.
    expect((await fs.getattr(ino, fh)).nlink).toBe(0);
    await fs.release(fh);
    expect(fs.inodes.find(`${dir}/doomed`)).toBeUndefined();
  });

  it('opens again a file removed while open, through the remote handle that keeps it (/dev/fd/N)', async () => {
    const kept = await createFile('read-only', 'kept');
    const ino = await createFile('reopened', 'abcdef');
    const closes = vi.spyOn(SftpSession.prototype, 'close');
    const only = await fs.open(kept, O_RDONLY);
    await fs.unlink(dirIno, 'read-only');
    // Kept by a read-only descriptor alone, it opens again for reading only.
    expect(await errnoOf(fs.open(kept, O_WRONLY))).toBe('ENOENT');
    const reading = await fs.open(kept, O_RDONLY);
    expect((await fs.read(reading.fh, 0, 100)).toString()).toBe('kept');
    await fs.release(reading.fh);
    expect(closes).not.toHaveBeenCalled();
    await fs.release(only.fh);
    expect(closes).toHaveBeenCalledTimes(1);

    const keeper = await fs.open(ino, O_RDWR);
    await fs.unlink(dirIno, 'reopened');
    const again = await fs.open(ino, O_RDONLY);
    expect(again.attr.size).toBe(6);
    const writer = await fs.open(ino, O_RDWR);
    await fs.release(keeper.fh);
    // The descriptor that kept it is closed; the ones opened since still reach it.
    expect((await fs.read(again.fh, 0, 100)).toString()).toBe('abcdef');
    await fs.write(writer.fh, 0, Buffer.from('XY'));
    expect((await fs.read(again.fh, 0, 100)).toString()).toBe('XYcdef');
    const truncated = await fs.open(ino, O_WRONLY | O_TRUNC);
    expect(truncated.attr.size).toBe(0);
    expect((await fs.read(again.fh, 0, 100)).length).toBe(0);
    for (const fh of [again.fh, writer.fh, truncated.fh]) await fs.release(fh);
    // The shared remote handle was closed once, by the last of them.
    expect(closes).toHaveBeenCalledTimes(2);
    closes.mockRestore();
    expect(fs.inodes.find(`${dir}/reopened`)).toBeUndefined();
  });

  it('truncates up and down, including over unflushed writes', async () => {
    const ino = await createFile('size', '0123456789');
    expect((await fs.setattr(ino, { size: 4 })).size).toBe(4);
    expect(await readFile(remote('size'), 'utf8')).toBe('0123');
    expect((await fs.setattr(ino, { size: 8 })).size).toBe(8);
    expect(await readFile(remote('size'))).toEqual(Buffer.from('0123\0\0\0\0'));

    const { fh } = await fs.open(ino, O_RDWR);
    await fs.write(fh, 0, Buffer.from('ABCDEFGHIJKL'));
    expect((await fs.getattr(ino)).size).toBe(12);
    await fs.setattr(ino, { size: 6 }, fh);
    await fs.release(fh);
    expect(await readFile(remote('size'), 'utf8')).toBe('ABCDEF');
  });

  it('changes mode, owner and times', async () => {
    const ino = await createFile('meta', 'x');
    await fs.setattr(ino, { mode: 0o600 });
    expect((await stat(remote('meta'))).mode & 0o777).toBe(0o600);
    const when = Date.UTC(2020, 0, 2, 3, 4, 5);
    await fs.setattr(ino, { mtimeMs: when });
    expect((await stat(remote('meta'))).mtimeMs).toBe(when);
    const attr = await fs.setattr(ino, { atimeMs: when - 1000, mtimeMs: when + 1000 });
    expect(attr.mtimeMs).toBe(when + 1000);
    if (process.getuid?.() === 0) {
      await fs.setattr(ino, { uid: 1234, gid: 4321 });
      const st = await stat(remote('meta'));
      expect([st.uid, st.gid]).toEqual([1234, 4321]);
    }
  });

  it('sets times by path right after writes that are still on their way, and answers with both', async () => {
    const { fh, entry } = await fs.create(dirIno, 'stamped', 0o644, O_WRONLY | O_CREAT);
    const data = randomBytes(300_000);
    await fs.write(fh, 0, data);
    const attr = await fs.setattr(entry.ino, { atimeMs: 1_500_000_000_000, mtimeMs: 1_600_000_000_000 });
    expect(attr.mtimeMs).toBe(1_600_000_000_000);
    expect(attr.size).toBe(300_000);
    await fs.release(fh);
    // Nothing that landed after the stamp moved it.
    const onDisk = await stat(remote('stamped'));
    expect(onDisk.mtimeMs).toBe(1_600_000_000_000);
    expect(sha256(await readFile(remote('stamped')))).toBe(sha256(data));
  });

  it("keeps the kernel's write-back stamp when only the access time is set by path meanwhile", async () => {
    const { fh, entry } = await fs.create(dirIno, 'touched-a', 0o644, O_WRONLY | O_CREAT);
    await fs.write(fh, 0, randomBytes(300_000));
    await fs.setattr(entry.ino, { mtimeMs: 1_600_000_000_000, kernelStamp: true }, fh);
    await fs.setattr(entry.ino, { atimeMs: 1_500_000_000_000 });
    await fs.release(fh);
    const onDisk = await stat(remote('touched-a'));
    expect([onDisk.atimeMs, onDisk.mtimeMs]).toEqual([1_500_000_000_000, 1_600_000_000_000]);
  });

  it('still sets times its caller was told were set when later times fail', async () => {
    const { fh, entry } = await fs.create(dirIno, 'kept-times', 0o644, O_WRONLY | O_CREAT);
    await fs.write(fh, 0, Buffer.from('data'));
    await fs.flush(fh);
    // Set through the open file: they wait for its close.
    await fs.setattr(entry.ino, { atimeMs: 1_500_000_000_000, mtimeMs: 1_500_000_000_000 }, fh);
    // Renamed on the server, so later times set by name fail.
    await rename(remote('kept-times'), remote('moved'));
    expect(await errnoOf(fs.setattr(entry.ino, { atimeMs: 1_600_000_000_000, mtimeMs: 1_600_000_000_000 }))).toBe('ENOENT');
    await fs.release(fh);
    expect((await stat(remote('moved'))).mtimeMs).toBe(1_500_000_000_000);
  });

  it('lets the kernel keep the pages of the version it was given, also once the attributes here timed out', async () => {
    const uncached = await openRemoteFs(ssh.server, { attrTtlMs: 0, dirTtlMs: 0 });
    try {
      await writeFile(remote('kept.txt'), 'first');
      const parent = (await uncached.fs.lookup(ROOT_INO, dir)).ino;
      const ino = (await uncached.fs.lookup(parent, 'kept.txt')).ino;
      const never = await uncached.fs.open(ino, O_RDONLY);
      // Never read: the kernel has nothing of it to keep.
      expect(never.unchanged).toBe(false);
      expect((await uncached.fs.read(never.fh, 0, 100)).toString()).toBe('first');
      await uncached.fs.release(never.fh);
      const again = await uncached.fs.open(ino, O_RDONLY);
      expect(again.unchanged).toBe(true);
      await uncached.fs.release(again.fh);
      await writeFile(remote('kept.txt'), 'second, longer');
      const changed = await uncached.fs.open(ino, O_RDONLY);
      expect(changed.unchanged).toBe(false);
      await uncached.fs.release(changed.fh);
    } finally {
      await uncached.close();
    }
  });

  it('lets the kernel keep the pages of a file written here once the server took the write-back stamp', async () => {
    const stamped = await fs.create(dirIno, 'written-stamped', 0o644, O_WRONLY | O_CREAT);
    await fs.write(stamped.fh, 0, Buffer.from('mine'));
    await fs.setattr(stamped.entry.ino, { mtimeMs: 1_600_000_000_500, kernelStamp: true }, stamped.fh);
    await fs.release(stamped.fh);
    const reopened = await fs.open(stamped.entry.ino, O_RDONLY);
    expect(reopened.unchanged).toBe(true);
    await fs.release(reopened.fh);
    // Changed on the server since: read afresh.
    await writeFile(remote('written-stamped'), 'theirs');
    const changed = await fs.open(stamped.entry.ino, O_RDONLY);
    expect(changed.unchanged).toBe(false);
    await fs.release(changed.fh);
    // Without a stamp the time the data landed is unknown here: read afresh.
    const plain = await fs.create(dirIno, 'written-plain', 0o644, O_WRONLY | O_CREAT);
    await fs.write(plain.fh, 0, Buffer.from('mine'));
    await fs.release(plain.fh);
    const again = await fs.open(plain.entry.ino, O_RDONLY);
    expect(again.unchanged).toBe(false);
    await fs.release(again.fh);
  });

  // chattr +a needs CAP_LINUX_IMMUTABLE. An append-only file takes data
  // through a handle already open but refuses times set on it, even to root.
  it.skipIf(process.getuid?.() !== 0)(
    "keeps the data and the close quiet when the server refuses the kernel's write-back stamp, and refuses a time someone sets to them",
    async () => {
      const { fh, entry } = await fs.create(dirIno, 'append-only', 0o644, O_WRONLY | O_CREAT);
      await run('chattr', ['+a', remote('append-only')]);
      try {
        await fs.write(fh, 0, Buffer.from('first\n'));
        await fs.setattr(entry.ino, { mtimeMs: Date.now(), kernelStamp: true }, fh);
        await fs.flush(fh);
        await fs.write(fh, 6, Buffer.from('second\n'));
        await fs.setattr(entry.ino, { mtimeMs: Date.now(), kernelStamp: true }, fh);
        await fs.flush(fh);
        await fs.write(fh, 13, Buffer.from('third\n'));
        expect(await errnoOf(fs.setattr(entry.ino, { atimeMs: 1_500_000_000_000, mtimeMs: 1_500_000_000_000 }))).toBe('EACCES');
        await fs.release(fh);
        expect(await readFile(remote('append-only'), 'utf8')).toBe('first\nsecond\nthird\n');
      } finally {
        await run('chattr', ['-a', remote('append-only')]);
      }
    },
  );

  it('makes and reads symlinks and hard links', async () => {
    const link = await fs.symlink(dirIno, 'ln', '../some/target');
    expect(link.attr.mode & FileType.S_IFMT).toBe(FileType.S_IFLNK);
    expect(await readlink(remote('ln'))).toBe('../some/target');
    expect(await fs.readlink(link.ino)).toBe('../some/target');
    expect(await errnoOf(fs.symlink(dirIno, 'ln', 'x'))).toBe('EEXIST');

    const ino = await createFile('orig', 'shared');
    const hard = await fs.link(ino, dirIno, 'hard');
    expect((await stat(remote('hard'))).ino).toBe((await stat(remote('orig'))).ino);
    expect((await readAll(hard.ino)).toString()).toBe('shared');
    expect(await errnoOf(fs.link(ino, dirIno, 'hard'))).toBe('EEXIST');
    expect(await errnoOf(fs.readlink(ino))).toBe('EINVAL');
  });

  it('reports filesystem statistics from the server', async () => {
    const st = await fs.statfs();
    expect(st.bsize).toBeGreaterThan(0);
    expect(st.blocks).toBeGreaterThan(0);
    expect(st.bavail).toBeLessThanOrEqual(st.blocks);
    expect(st.namemax).toBe(255);
  });

  it('sees remote changes at the next open, but not cached data of the old version', async () => {
    await writeFile(remote('v'), 'version one');
    const ino = (await fs.lookup(dirIno, 'v')).ino;
    expect((await readAll(ino)).toString()).toBe('version one');
    await writeFile(remote('v'), 'version two, longer');
    await utimes(remote('v'), new Date(), new Date(Date.now() + 5000));
    expect((await readAll(ino)).toString()).toBe('version two, longer');
  });

  it('lists directories of any size in full: empty, one READDIR batch, and many', async () => {
    await mkdir(remote('empty'));
    await mkdir(remote('many'));
    const names = Array.from({ length: 1234 }, (_, i) => `n${String(i).padStart(4, '0')}`);
    await Promise.all(names.map((name) => writeFile(remote('many', name), name)));
    await writeFile(remote('one'), '1');
    expect(await fs.readdir((await fs.lookup(dirIno, 'empty')).ino)).toEqual([]);
    const many = await fs.readdir((await fs.lookup(dirIno, 'many')).ino);
    expect(many.map((e) => e.name).sort()).toEqual(names);
    expect(many.find((e) => e.name === 'n0042')?.attr.size).toBe(5);
    expect((await fs.readdir(dirIno)).map((e) => e.name).sort()).toEqual(['empty', 'many', 'one']);
  });

  it('fetches the listings of subdirectories when their parent is listed, so a walk into them needs no round trip', async () => {
    for (const sub of ['s1', 's2']) {
      await mkdir(remote('tree', sub), { recursive: true });
      await writeFile(remote('tree', sub, 'f'), sub);
    }
    await writeFile(remote('tree', 'plain'), 'x');
    const own = await openRemoteFs(ssh.server, { root: remote() });
    try {
      const listed: string[] = [];
      const readdir = own.link.readdir.bind(own.link);
      own.link.readdir = (path: string) => {
        listed.push(path.slice(remote().length + 1));
        return readdir(path);
      };
      const tree = await own.fs.lookup(ROOT_INO, 'tree');
      await own.fs.readdir(tree.ino);
      expect(await waitFor(() => listed.length === 3, 10_000)).toBe(true);
      expect(listed.sort()).toEqual(['tree', 'tree/s1', 'tree/s2']);
      // Let the background listings land in the cache.
      await new Promise((resolve) => setTimeout(resolve, 50));
      const s1 = await own.fs.lookup(tree.ino, 's1');
      expect((await own.fs.readdir(s1.ino)).map((e) => [e.name, e.attr.size])).toEqual([['f', 2]]);
      expect(listed).toHaveLength(3);
    } finally {
      await own.close();
    }
  });

  it('fetches nothing ahead with dirPrefetch 0', async () => {
    await mkdir(remote('tree', 'sub'), { recursive: true });
    const own = await openRemoteFs(ssh.server, { root: remote(), dirPrefetch: 0 });
    try {
      const listed: string[] = [];
      const readdir = own.link.readdir.bind(own.link);
      own.link.readdir = (path: string) => {
        listed.push(path);
        return readdir(path);
      };
      await own.fs.readdir((await own.fs.lookup(ROOT_INO, 'tree')).ino);
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(listed).toHaveLength(1);
    } finally {
      await own.close();
    }
  });

  it('reflects local changes in cached listings and lookups at once', async () => {
    expect(await fs.readdir(dirIno)).toEqual([]);
    expect(await errnoOf(fs.lookup(dirIno, 'later'))).toBe('ENOENT');
    await createFile('later', 'abc');
    expect((await fs.readdir(dirIno)).map((e) => [e.name, e.attr.size])).toEqual([['later', 3]]);
    expect((await fs.lookup(dirIno, 'later')).attr.size).toBe(3);
    const ino = (await fs.lookup(dirIno, 'later')).ino;
    const { fh } = await fs.open(ino, O_WRONLY);
    await fs.write(fh, 3, Buffer.from('defg'));
    await fs.release(fh);
    expect((await fs.readdir(dirIno))[0]!.attr.size).toBe(7);
    await fs.unlink(dirIno, 'later');
    expect(await fs.readdir(dirIno)).toEqual([]);
  });

  it('surfaces a failed write-back on flush instead of dropping it', async () => {
    const own = await openRemoteFs(ssh.server, { root: remote() });
    try {
      const { fh } = await own.fs.create(ROOT_INO, 'lost', 0o644, O_WRONLY | O_CREAT);
      own.session.end();
      await new Promise((resolve) => setTimeout(resolve, 100));
      // Accepted into the buffer; the write-back it starts cannot reach the server.
      await own.fs.write(fh, 0, Buffer.from('acknowledged but not yet written'));
      const code = await errnoOf(own.fs.flush(fh));
      expect(['ENOTCONN', 'EIO']).toContain(code);
    } finally {
      own.client.end();
    }
  });

  it('refuses changes when mounted read-only', async () => {
    await writeFile(remote('ro'), 'x');
    const ro = await openRemoteFs(ssh.server, { root: remote(), readonly: true });
    try {
      const ino = (await ro.fs.lookup(ROOT_INO, 'ro')).ino;
      expect(await errnoOf(ro.fs.open(ino, O_WRONLY))).toBe('EROFS');
      expect(await errnoOf(ro.fs.mkdir(ROOT_INO, 'd', 0o755))).toBe('EROFS');
      expect(await errnoOf(ro.fs.unlink(ROOT_INO, 'ro'))).toBe('EROFS');
      const { fh } = await ro.fs.open(ino, O_RDONLY);
      expect((await ro.fs.read(fh, 0, 10)).toString()).toBe('x');
    } finally {
      await ro.close();
    }
  });

  it('counts operations, bytes and cache hits', async () => {
    const before = { ...fs.stats };
    const ino = await createFile('counted', 'x'.repeat(1000));
    await readAll(ino);
    await readAll(ino);
    expect(fs.stats.ops).toBeGreaterThan(before.ops);
    expect(fs.stats.bytesWritten - before.bytesWritten).toBe(1000);
    expect(fs.stats.bytesRead - before.bytesRead).toBe(2000);
    expect(fs.cacheStats.hits).toBeGreaterThan(0);
  });
});

describe('RemoteFs permissions as an unprivileged user', () => {
  it.skipIf(process.getuid?.() !== 0)('gets EACCES on root-owned paths when connected as nobody', async () => {
    // The fixture trusts its key for any account; 'nobody' has no shell, so
    // this server runs the in-process SFTP server instead of sftp-server.
    const { startSshd } = await import('../fixtures/sshd.mjs');
    const server = await startSshd({ sftp: 'internal' });
    try {
      // sshd reads authorized_keys as the user logging in.
      await chmod(server.tempDir, 0o711);
      await chmod(join(server.tempDir, 'authorized_keys'), 0o644);
      await chmod(server.remoteRoot, 0o755);
      await mkdir(join(server.remoteRoot, 'secret'), { mode: 0o700 });
      await chown(join(server.remoteRoot, 'secret'), 0, 0);
      const own = await openRemoteFs({ ...server, user: 'nobody' });
      try {
        const secret = await own.fs.lookup(ROOT_INO, 'secret');
        expect(await errnoOf(own.fs.readdir(secret.ino))).toBe('EACCES');
        expect(await errnoOf(own.fs.create(ROOT_INO, 'new', 0o644, O_WRONLY | O_CREAT))).toBe('EACCES');
        expect(await errnoOf(own.fs.mkdir(ROOT_INO, 'd', 0o755))).toBe('EACCES');
      } finally {
        await own.close();
      }
    } finally {
      await rm(join(server.remoteRoot, 'secret'), { recursive: true, force: true });
      await server.stop();
    }
  });
});

describe('RemoteFs times of symlinks', () => {
  it('sets a symlink\'s own times, also when it dangles, and leaves the target alone', async () => {
    const own = await openRemoteFs(ssh.server, { root: ssh.server.remoteRoot });
    try {
      await mkdir(join(ssh.server.remoteRoot, 'links'));
      await writeFile(join(ssh.server.remoteRoot, 'links', 'target'), 't');
      const dir = (await own.fs.lookup(ROOT_INO, 'links')).ino;
      const dangling = await own.fs.symlink(dir, 'dangling', 'nowhere');
      const live = await own.fs.symlink(dir, 'live', 'target');
      const targetBefore = (await stat(join(ssh.server.remoteRoot, 'links', 'target'))).mtimeMs;
      const when = Date.UTC(2019, 5, 6, 7, 8, 9);
      await own.fs.setattr(dangling.ino, { atimeMs: when, mtimeMs: when });
      await own.fs.setattr(live.ino, { atimeMs: when, mtimeMs: when });
      expect((await lstat(join(ssh.server.remoteRoot, 'links', 'dangling'))).mtimeMs).toBe(when);
      expect((await lstat(join(ssh.server.remoteRoot, 'links', 'live'))).mtimeMs).toBe(when);
      expect((await stat(join(ssh.server.remoteRoot, 'links', 'target'))).mtimeMs).toBe(targetBefore);
    } finally {
      await own.close();
    }
  });
});
