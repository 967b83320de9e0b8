import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, readFile, readlink, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CLI } from '../fixtures/cli.js';
import { useSshServer } from '../fixtures/ssh-server.js';
import {
  fuseUsable,
  isMounted,
  isolatedEnv,
  loginArgs,
  mountsAt,
  mountTmount,
  ok,
  remoteSpec,
  run,
  sh,
  tempBase,
  useTmountMount,
} from '../fixtures/tmount-mount.js';
import { waitFor } from '../fixtures/wait.js';

// These tests use the mount the way a user does: through cp, cat, ls, git,
// rsync and fio, each a child process. The mount is served by a separate CLI
// process, and its other side (the fixture's remote root) is on this machine,
// so every result is compared with what actually landed on disk there.
//
// A missing or unusable /dev/fuse cannot be simulated on a machine that has
// one; the backend's availability probe and the resulting exit code 3 are
// covered by the unit tests of backend selection.

const MiB = 1024 * 1024;


const sha256sums = async (...files: string[]): Promise<string[]> =>
  (await ok('sha256sum', files)).trim().split('\n').map((line) => line.split(' ')[0]!);

/** Drops the kernel's cached pages of a file, so the next read goes through tmount again. */
const dropPageCache = (file: string) => ok('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);

/** `ls -l` lines without the total and the link count (hard links and subdirectories count differently over SFTP). */
async function longListing(dir: string): Promise<string[]> {
  const lines = (await ok('ls', ['-l', '--time-style=+%s', dir])).trim().split('\n');
  return lines.filter((line) => !line.startsWith('total')).map((line) => line.split(/\s+/).filter((_, i) => i !== 1).join(' '));
}

/** Processes whose command line names `path` (pgrep leaves itself out). */
async function processesNaming(path: string): Promise<string> {
  return (await run('pgrep', ['-af', path])).stdout;
}

let scratch: string;
beforeAll(async () => {
  scratch = await tempBase('tmount-e2e-local-');
});
afterAll(async () => {
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

describe.skipIf(!fuseUsable())('tmount mount (FUSE) through the CLI', () => {
  const ssh = useSshServer();

  describe('seen through ordinary tools', () => {
    const tm = useTmountMount(ssh, { remoteSubdir: 'main' });
    let counter = 0;

    afterEach((context) => {
      // The CLI's stderr says what the server side saw when a tool failed.
      if (context.task.result?.state === 'fail' && tm.mount.log()) console.error(`tmount stderr:\n${tm.mount.log()}`);
      expect(tm.mount.log()).not.toMatch(/internal error/);
    });

    /** A fresh directory made through the mount; returns its path on the mount and on the remote. */
    async function fresh(name: string): Promise<{ mnt: string; remote: string }> {
      const dir = `${name}-${++counter}`;
      await ok('mkdir', [join(tm.mount.mountpoint, dir)]);
      return { mnt: join(tm.mount.mountpoint, dir), remote: join(tm.mount.remoteDir, dir) };
    }

    it('copies files in and out with their content, size and mode', { timeout: 30_000 }, async () => {
      const { mnt, remote } = await fresh('copy');
      const local = join(scratch, 'copy');
      await mkdir(local);
      await writeFile(join(local, 'empty'), '');
      await writeFile(join(local, 'hello.txt'), 'hello, world\n');
      await writeFile(join(local, 'odd.bin'), randomBytes(MiB + 3));
      await ok('cp', [join(local, 'empty'), join(local, 'hello.txt'), join(local, 'odd.bin'), mnt]);

      expect(await ok('cat', [join(mnt, 'hello.txt')])).toBe('hello, world\n');
      const names = ['empty', 'hello.txt', 'odd.bin'];
      const sums = await sha256sums(...names.map((n) => join(local, n)), ...names.map((n) => join(mnt, n)), ...names.map((n) => join(remote, n)));
      expect(sums.slice(3, 6)).toEqual(sums.slice(0, 3));
      expect(sums.slice(6, 9)).toEqual(sums.slice(0, 3));
      expect(await ok('stat', ['-c', '%n %s %F', ...names.map((n) => join(mnt, n))])).toBe(
        `${join(mnt, 'empty')} 0 regular empty file\n${join(mnt, 'hello.txt')} 13 regular file\n${join(mnt, 'odd.bin')} ${MiB + 3} regular file\n`,
      );

      await ok('chmod', ['751', join(mnt, 'hello.txt')]);
      await ok('chmod', ['600', join(mnt, 'odd.bin')]);
      await ok('chmod', ['000', join(mnt, 'empty')]);
      await ok('mkdir', [join(mnt, 'private')]);
      await ok('chmod', ['700', join(mnt, 'private')]);
      expect(await ok('stat', ['-c', '%a', ...['hello.txt', 'odd.bin', 'empty', 'private'].map((n) => join(mnt, n))])).toBe('751\n600\n0\n700\n');
      expect((await stat(join(remote, 'hello.txt'))).mode & 0o7777).toBe(0o751);
      expect((await stat(join(remote, 'odd.bin'))).mode & 0o7777).toBe(0o600);
      expect((await stat(join(remote, 'empty'))).mode & 0o7777).toBe(0);
      expect((await stat(join(remote, 'private'))).mode & 0o7777).toBe(0o700);
      // What ls -l shows on the mount is what it shows on the remote itself.
      expect(await longListing(mnt)).toEqual(await longListing(remote));

      await ok('truncate', ['-s', '10', join(mnt, 'odd.bin')]);
      expect(await ok('stat', ['-c', '%s', join(mnt, 'odd.bin')])).toBe('10\n');
      expect((await stat(join(remote, 'odd.bin'))).size).toBe(10);
      await ok('truncate', ['-s', String(3 * MiB), join(mnt, 'odd.bin')]);
      expect(await ok('stat', ['-c', '%s', join(mnt, 'odd.bin')])).toBe(`${3 * MiB}\n`);
      const grown = await readFile(join(remote, 'odd.bin'));
      expect(grown.length).toBe(3 * MiB);
      expect(grown.subarray(0, 10)).toEqual((await readFile(join(local, 'odd.bin'))).subarray(0, 10));
      expect(grown.subarray(10).every((byte) => byte === 0)).toBe(true);
      await ok('truncate', ['-s', '0', join(mnt, 'hello.txt')]);
      expect(await ok('cat', [join(mnt, 'hello.txt')])).toBe('');
      expect((await stat(join(remote, 'hello.txt'))).size).toBe(0);

      // Overwriting in place (O_TRUNC) and appending, as the shell does.
      await sh('printf first > "$1"; printf second > "$1"; printf +more >> "$1"', [join(mnt, 'shell.txt')]);
      expect(await ok('cat', [join(mnt, 'shell.txt')])).toBe('second+more');
      expect(await readFile(join(remote, 'shell.txt'), 'utf8')).toBe('second+more');

      const back = join(scratch, 'copy-back');
      await ok('cp', ['-r', mnt, back]);
      expect(await ok('cat', [join(back, 'shell.txt')])).toBe('second+more');
      expect(await ok('df', ['-P', tm.mount.mountpoint])).toMatch(/tmount|127\.0\.0\.1/);
    });

    it('sets times with touch -d and cp -p, in whole seconds as SFTP carries them', { timeout: 30_000 }, async () => {
      const { mnt, remote } = await fresh('times');
      const when = Number((await ok('date', ['-d', '2020-01-02 03:04:05', '+%s'])).trim());
      await ok('touch', [join(mnt, 'new')]);
      await ok('touch', ['-d', '2020-01-02 03:04:05', join(mnt, 'new')]);
      expect(await ok('stat', ['-c', '%Y', join(mnt, 'new')])).toBe(`${when}\n`);
      expect((await stat(join(remote, 'new'))).mtimeMs).toBe(when * 1000);

      // Written and stamped right away: the data must not land after the stamp.
      await sh('head -c 300000 /dev/urandom > "$1" && touch -m -d "2020-01-02 03:04:05" "$1"', [join(mnt, 'written')]);
      expect(await ok('stat', ['-c', '%Y %s', join(mnt, 'written')])).toBe(`${when} 300000\n`);
      expect((await stat(join(remote, 'written'))).mtimeMs).toBe(when * 1000);

      await ok('mkdir', [join(mnt, 'dir')]);
      await ok('touch', ['-d', '2020-01-02 03:04:05', join(mnt, 'dir')]);
      expect(await ok('stat', ['-c', '%Y', join(mnt, 'dir')])).toBe(`${when}\n`);

      // The kernel's write-back cache stamps mtime at the write and keeps that
      // stamp; the data reaches the server only at the close, a second later
      // here. The server must end up with the stamp the mount shows.
      const late = await open(join(mnt, 'late'), 'w');
      await late.write(randomBytes(100_000));
      await new Promise((resolve) => setTimeout(resolve, 1_100));
      await late.close();
      const shown = Number((await ok('stat', ['-c', '%Y', join(mnt, 'late')])).trim());
      // The close does not wait for the server to confirm the time: it follows within a round trip.
      await expect.poll(async () => Math.floor((await stat(join(remote, 'late'))).mtimeMs / 1000), { timeout: 2_000 }).toBe(shown);

      const local = join(scratch, 'stamped');
      await writeFile(local, randomBytes(200_000));
      await utimes(local, 1_500_000_000, 1_500_000_000);
      await ok('cp', ['-p', local, join(mnt, 'copied')]);
      expect(await ok('stat', ['-c', '%Y %s', join(mnt, 'copied')])).toBe('1500000000 200000\n');
      expect((await stat(join(remote, 'copied'))).mtimeMs).toBe(1_500_000_000_000);
    });

    it('renames, links and removes as the shell does', { timeout: 30_000 }, async () => {
      const { mnt, remote } = await fresh('names');
      await sh('echo one > "$1/x"; echo two > "$1/y"', [mnt]);
      await ok('mv', ['-f', join(mnt, 'x'), join(mnt, 'y')]);
      expect(await ok('cat', [join(mnt, 'y')])).toBe('one\n');
      expect(await ok('ls', ['-A', mnt])).toBe('y\n');
      expect(await readdir(remote)).toEqual(['y']);
      expect(await readFile(join(remote, 'y'), 'utf8')).toBe('one\n');
      expect((await run('cat', [join(mnt, 'x')])).stderr).toMatch(/No such file or directory/);

      await ok('mkdir', ['-p', join(mnt, 'a/b')]);
      await ok('mv', [join(mnt, 'y'), join(mnt, 'a/b/z')]);
      await ok('mv', [join(mnt, 'a'), join(mnt, 'renamed')]);
      expect(await ok('cat', [join(mnt, 'renamed/b/z')])).toBe('one\n');
      expect(await readFile(join(remote, 'renamed/b/z'), 'utf8')).toBe('one\n');
      expect(existsSync(join(remote, 'a'))).toBe(false);

      await ok('ln', ['-s', 'renamed/b/z', join(mnt, 'link')]);
      expect(await ok('readlink', [join(mnt, 'link')])).toBe('renamed/b/z\n');
      expect(await ok('cat', [join(mnt, 'link')])).toBe('one\n');
      expect(await ok('stat', ['-c', '%F', join(mnt, 'link')])).toBe('symbolic link\n');
      expect(await readlink(join(remote, 'link'))).toBe('renamed/b/z');
      expect(await ok('ls', ['-l', join(mnt, 'link')])).toMatch(/^l.*\/link -> renamed\/b\/z\n$/);

      await ok('ln', [join(mnt, 'renamed/b/z'), join(mnt, 'hard')]);
      expect(await ok('cat', [join(mnt, 'hard')])).toBe('one\n');
      const [target, twin] = await Promise.all([stat(join(remote, 'renamed/b/z')), stat(join(remote, 'hard'))]);
      expect(twin.ino).toBe(target.ino);
      expect(twin.nlink).toBe(2);

      await ok('rm', [join(mnt, 'link')]);
      expect(await readFile(join(remote, 'renamed/b/z'), 'utf8')).toBe('one\n');
      await ok('rm', ['-r', join(mnt, 'renamed')]);
      expect(await ok('ls', ['-A', mnt])).toBe('hard\n');
      expect(await readdir(remote)).toEqual(['hard']);
      expect(await ok('cat', [join(mnt, 'hard')])).toBe('one\n');
      const refused = await run('rmdir', [mnt]);
      expect(refused.stderr).toMatch(/Directory not empty/);
      await ok('rm', ['-r', mnt]);
      expect(existsSync(remote)).toBe(false);
    });

    it('renames and links without setting the file\'s times on the server, even times changed there meanwhile', { timeout: 30_000 }, async () => {
      const dir = `retimed-${++counter}`;
      const remote = join(tm.mount.remoteDir, dir);
      const mnt = join(tm.mount.mountpoint, dir);
      await mkdir(remote);
      await writeFile(join(remote, 'moved'), 'x');
      await utimes(join(remote, 'moved'), 1_000_000, 1_000_000);
      expect((await ok('stat', ['-c', '%Y', join(mnt, 'moved')])).trim()).toBe('1000000');
      // Someone on the server sets other times; the mount still shows the old ones for a while.
      await utimes(join(remote, 'moved'), 2_000_000, 2_000_000);
      await ok('mv', [join(mnt, 'moved'), join(mnt, 'renamed')]);
      await ok('ln', [join(mnt, 'renamed'), join(mnt, 'linked')]);
      // The kernel follows a rename or link with the mtime it holds: sending that would undo the server's change.
      expect((await stat(join(remote, 'renamed'))).mtimeMs).toBe(2_000_000_000);
    });

    it('gives every small file its own bytes when many are opened at once, failed opens among them', { timeout: 60_000 }, async () => {
      // Small files are read together with their open, through the handle the
      // open is expected to get: parallel opens and closes keep many requests
      // in flight, and a failing open makes the guesses sent behind it wrong.
      // Every file must still read as on the server.
      const dir = `many-small-${++counter}`;
      const remote = join(tm.mount.remoteDir, dir);
      const mnt = join(tm.mount.mountpoint, dir);
      await mkdir(remote);
      const names = Array.from({ length: 300 }, (_, i) => `f${i}`);
      for (const [i, name] of names.entries()) await writeFile(join(remote, name), randomBytes(1000 + (i % 5) * 1500));
      const expected = await sha256sums(...names.map((name) => join(remote, name)));
      await ok('ls', ['-l', mnt]); // Sizes cached, as after any listing.
      // Eight readers at a time, and names that do not exist among them (their opens fail).
      const list = names.flatMap((name, i) => (i % 10 === 0 ? [join(mnt, `missing-${i}`), join(mnt, name)] : [join(mnt, name)]));
      const seen = await sh('printf "%s\\n" "$@" | xargs -P 8 -n 7 sha256sum 2>/dev/null; true', list);
      const byPath = new Map(seen.trim().split('\n').map((line) => [line.slice(66), line.slice(0, 64)]));
      expect(names.map((name) => byPath.get(join(mnt, name)))).toEqual(expected);
    });

    it('keeps a removed file readable and writable through descriptors still open', { timeout: 30_000 }, async () => {
      // Made on the remote side, so the kernel holds none of its pages: the read after rm must go to the server.
      const dir = `unlinked-${++counter}`;
      const remote = join(tm.mount.remoteDir, dir);
      const mnt = join(tm.mount.mountpoint, dir);
      await mkdir(remote);
      const content = randomBytes(2 * MiB + 5);
      await writeFile(join(remote, 'f'), content);
      await writeFile(join(scratch, 'unlinked-f'), content);
      const [expected] = await sha256sums(join(scratch, 'unlinked-f'));

      const seen = await sh('exec 3<"$1"; rm "$1"; if [ -e "$1" ]; then echo still there; exit 1; fi; sha256sum <&3', [join(mnt, 'f')]);
      expect(seen.split(' ')[0]).toBe(expected);
      expect(await readdir(remote)).toEqual([]);

      expect(await sh('exec 3<>"$1"; rm "$1"; printf abcdef >&3; stat -L -c %s /dev/fd/3', [join(mnt, 'g')])).toBe('6\n');
      // Opened again through /dev/fd, for reading and for writing; no link left.
      const reopened = await sh('exec 3<>"$1"; rm "$1"; printf abcdef >&3; cat /dev/fd/3; printf XY 1<>/dev/fd/3; printf " %s " "$(cat /dev/fd/3)"; stat -L -c %h /dev/fd/3', [join(mnt, 'r')]);
      expect(reopened).toBe('abcdef XYcdef 0\n');

      const program = `
        const fs = require('fs');
        const file = process.argv[1];
        const fd = fs.openSync(file, 'w+');
        fs.writeSync(fd, 'before\\n');
        fs.fsyncSync(fd);
        fs.unlinkSync(file);
        if (fs.existsSync(file)) throw new Error('still there');
        fs.writeSync(fd, 'after\\n');
        const buffer = Buffer.alloc(64);
        const n = fs.readSync(fd, buffer, 0, 64, 0);
        const { size, nlink } = fs.fstatSync(fd);
        process.stdout.write(JSON.stringify({ text: buffer.subarray(0, n).toString(), size, nlink }));
        fs.closeSync(fd);
      `;
      expect(JSON.parse(await ok(process.execPath, ['-e', program, join(mnt, 'h')]))).toEqual({ text: 'before\nafter\n', size: 13, nlink: 0 });
      // Nothing left on the remote: no hidden stand-in for the removed files.
      expect(await readdir(remote)).toEqual([]);
      expect(await ok('ls', ['-A', mnt])).toBe('');
    });

    it('round-trips a 512 MiB file byte for byte', { timeout: 120_000 }, async () => {
      const { mnt, remote } = await fresh('big');
      const local = join(scratch, 'big.bin');
      const back = join(scratch, 'big-back.bin');
      await ok('dd', ['if=/dev/urandom', `of=${local}`, 'bs=1M', 'count=512', 'status=none']);
      await ok('cp', [local, join(mnt, 'big.bin')]);
      expect(await ok('stat', ['-c', '%s', join(mnt, 'big.bin')])).toBe(`${512 * MiB}\n`);
      expect((await stat(join(remote, 'big.bin'))).size).toBe(512 * MiB);
      const [[original], [onMount], [onRemote]] = await Promise.all([sha256sums(local), sha256sums(join(mnt, 'big.bin')), sha256sums(join(remote, 'big.bin'))]);
      expect(onMount).toBe(original);
      expect(onRemote).toBe(original);
      await dropPageCache(join(mnt, 'big.bin'));
      await ok('cp', [join(mnt, 'big.bin'), back]);
      await ok('cmp', [local, back]);
      await ok('rm', [join(mnt, 'big.bin')]);
      expect(existsSync(join(remote, 'big.bin'))).toBe(false);
      await rm(local);
      await rm(back);
    });

    it('hosts a git clone: status clean, fsck clean, commits work', { timeout: 60_000 }, async () => {
      const { mnt, remote } = await fresh('git');
      const home = join(scratch, 'git-home');
      await mkdir(home);
      const env = {
        ...process.env,
        HOME: home,
        GIT_CONFIG_NOSYSTEM: '1',
        GIT_AUTHOR_NAME: 'Test',
        GIT_AUTHOR_EMAIL: 'test@example.org',
        GIT_COMMITTER_NAME: 'Test',
        GIT_COMMITTER_EMAIL: 'test@example.org',
      };
      const origin = join(scratch, 'origin');
      await sh(
        `git -c init.defaultBranch=main init -q "$1" && cd "$1" &&
         for commit in 1 2 3; do
           for i in $(seq 1 120); do
             mkdir -p "dir$((i % 12))/sub$((i % 3))"
             echo "commit $commit file $i" > "dir$((i % 12))/sub$((i % 3))/file$commit-$i.txt"
             [ "$commit" = 1 ] || echo "changed in $commit" >> "dir$((i % 12))/sub$((i % 3))/file1-$i.txt"
           done
           head -c 100000 /dev/urandom > "blob$commit.bin"
           git add -A && git commit -q -m "commit $commit" || exit 1
         done
         git rm -q -r dir0 && git commit -q -m "drop dir0"`,
        [origin],
        { env },
      );
      const clone = join(mnt, 'clone');
      await ok('git', ['clone', '-q', `file://${origin}`, clone], { env, timeout: 45_000 });
      const git = (...args: string[]) => ok('git', ['-C', clone, ...args], { env });
      expect(await git('status', '--porcelain')).toBe('');
      expect(await git('fsck', '--full', '--no-progress')).toBe('');
      expect(await git('rev-parse', 'HEAD')).toBe(await ok('git', ['-C', origin, 'rev-parse', 'HEAD'], { env }));
      expect((await git('ls-files')).trim().split('\n').length).toBeGreaterThan(300);
      expect((await run('diff', ['-r', '--exclude=.git', origin, clone])).stdout).toBe('');

      await sh('echo changed >> "$1/dir1/sub1/file1-1.txt" && rm "$1/blob1.bin" && echo new > "$1/added.txt"', [clone]);
      expect((await git('status', '--porcelain')).split('\n').filter(Boolean).sort()).toEqual([' D blob1.bin', ' M dir1/sub1/file1-1.txt', '?? added.txt']);
      await git('add', '-A');
      await git('commit', '-q', '-m', 'on the mount');
      expect(await git('status', '--porcelain')).toBe('');
      expect(await git('fsck', '--full', '--no-progress')).toBe('');
      // The repository on the remote side, read directly, is just as whole.
      expect(await ok('git', ['-C', join(remote, 'clone'), 'fsck', '--full', '--no-progress'], { env })).toBe('');
      expect(await ok('git', ['-C', join(remote, 'clone'), 'status', '--porcelain'], { env })).toBe('');
    });

    it('takes an rsync -a --checksum tree in and gives it back unchanged', { timeout: 60_000 }, async () => {
      const { mnt, remote } = await fresh('rsync');
      const source = join(scratch, 'tree');
      for (let i = 0; i < 25; i++) {
        const dir = join(source, `d${i % 5}`, `e${i}`);
        await mkdir(dir, { recursive: true });
        await writeFile(join(dir, `f${i}.bin`), randomBytes(i * 7919));
        await writeFile(join(dir, 'note.txt'), `note ${i}\n`);
        await chmod(join(dir, 'note.txt'), i % 2 ? 0o640 : 0o755);
        await utimes(join(dir, 'note.txt'), 1_600_000_000 + i, 1_600_000_000 + i);
      }
      await mkdir(join(source, 'empty'));
      await writeFile(join(source, 'large.bin'), randomBytes(5 * MiB + 17));
      await symlink('d1/e1/note.txt', join(source, 'link'));
      await symlink('nowhere', join(source, 'dangling'));

      await ok('rsync', ['-a', '--checksum', `${source}/`, join(mnt, 'tree/')], { timeout: 45_000 });
      expect((await run('diff', ['-r', '--no-dereference', source, join(mnt, 'tree')])).stdout).toBe('');
      expect((await run('diff', ['-r', '--no-dereference', source, join(remote, 'tree')])).stdout).toBe('');
      const itemize = (from: string, to: string) => ok('rsync', ['-a', '--checksum', '--dry-run', '--itemize-changes', `${from}/`, `${to}/`]);
      expect(await itemize(source, join(mnt, 'tree'))).toBe('');
      expect(await itemize(source, join(remote, 'tree'))).toBe('');

      const back = join(scratch, 'tree-back');
      await ok('rsync', ['-a', '--checksum', join(mnt, 'tree/'), `${back}/`], { timeout: 45_000 });
      expect((await run('diff', ['-r', '--no-dereference', source, back])).stdout).toBe('');
      expect(await itemize(source, back)).toBe('');
      expect(await itemize(join(mnt, 'tree'), source)).toBe('');
      expect((await lstat(join(back, 'link'))).isSymbolicLink()).toBe(true);
    });

    it('passes fio random writes with crc32c verification, on the mount and on the remote', { timeout: 60_000 }, async () => {
      const { mnt, remote } = await fresh('fio');
      const job = ['--name=verify', '--size=64M', '--rw=randwrite', '--bs=4k', '--ioengine=psync', '--direct=0', '--randrepeat=1', '--verify=crc32c', '--verify_fatal=1'];
      const fio = (file: string, ...extra: string[]) => ok('fio', [...job, `--filename=${file}`, ...extra], { cwd: scratch, timeout: 45_000 });
      // Writes every block, fsyncs, then reads each back and checks its checksum.
      await fio(join(mnt, 'fio.dat'), '--do_verify=1', '--end_fsync=1');
      await dropPageCache(join(mnt, 'fio.dat'));
      // The same blocks again, this time fetched from the server.
      await fio(join(mnt, 'fio.dat'), '--verify_only');
      await fio(join(remote, 'fio.dat'), '--verify_only');
      // The check is real: one zeroed block on the remote and verification fails.
      await ok('dd', ['if=/dev/zero', `of=${join(remote, 'fio.dat')}`, 'bs=4k', 'count=1', 'seek=100', 'conv=notrunc', 'status=none']);
      const broken = await run('fio', [...job, `--filename=${join(remote, 'fio.dat')}`, '--verify_only'], { cwd: scratch });
      expect(broken.code).not.toBe(0);
      await ok('rm', [join(mnt, 'fio.dat')]);
    });

    it('keeps two processes writing different files at once apart', { timeout: 60_000 }, async () => {
      const { mnt, remote } = await fresh('parallel');
      const a = join(scratch, 'parallel-a');
      const b = join(scratch, 'parallel-b');
      await Promise.all([
        ok('dd', ['if=/dev/urandom', `of=${a}`, 'bs=1M', 'count=48', 'status=none']),
        ok('dd', ['if=/dev/urandom', `of=${b}`, 'bs=1M', 'count=40', 'status=none']),
      ]);
      await Promise.all([
        ok('dd', [`if=${a}`, `of=${join(mnt, 'a')}`, 'bs=64k', 'status=none']),
        ok('dd', [`if=${b}`, `of=${join(mnt, 'b')}`, 'bs=1M', 'conv=fsync', 'status=none']),
      ]);
      const [sumA, sumB, mountA, mountB, remoteA, remoteB] = await sha256sums(a, b, join(mnt, 'a'), join(mnt, 'b'), join(remote, 'a'), join(remote, 'b'));
      expect([mountA, mountB, remoteA, remoteB]).toEqual([sumA, sumB, sumA, sumB]);
      await Promise.all([dropPageCache(join(mnt, 'a')), dropPageCache(join(mnt, 'b'))]);
      const [readA, readB] = await Promise.all([sha256sums(join(mnt, 'a')), sha256sums(join(mnt, 'b'))]);
      expect([readA[0], readB[0]]).toEqual([sumA, sumB]);
    });

    it('goes on through a listing it started after the directory changed and was listed anew', { timeout: 30_000 }, async () => {
      // A listing this long takes several readdir requests (the kernel asks
      // for 128 KiB at a time); a reader resumes it at the offset the last one
      // handed out, whatever happened in between.
      const dir = `pages-${++counter}`;
      const names = Array.from({ length: 2_000 }, (_, i) => `entry-${String(i).padStart(4, '0')}`);
      await mkdir(join(tm.mount.remoteDir, dir));
      await Promise.all(names.map((name) => writeFile(join(tm.mount.remoteDir, dir, name), name)));
      const mnt = join(tm.mount.mountpoint, dir);
      // One open directory stream: reads ten names, waits for a line on stdin, reads the rest.
      const reader = spawn('python3', ['-c', `
import os, sys
it = os.scandir(sys.argv[1])
for _ in range(10): print(next(it).name)
print('--', flush=True)
sys.stdin.readline()
for entry in it: print(entry.name)
`, mnt], { stdio: ['pipe', 'pipe', 'pipe'] });
      try {
        let out = '';
        let err = '';
        reader.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
        reader.stderr!.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
        const exited = new Promise<number | null>((resolve) => reader.once('exit', resolve));
        expect(await waitFor(() => out.includes('--\n'), 10_000), err).toBe(true);
        // A name the reader has passed goes: a listing that counted from the
        // new one by position would skip a name further on.
        const removed = out.split('\n')[0]!;
        await rm(join(mnt, removed));
        const anew = (await ok('ls', ['-A', mnt])).trim().split('\n');
        expect(anew).toHaveLength(names.length - 1);
        reader.stdin!.write('go\n');
        expect(await exited, err).toBe(0);
        const seen = out.split('\n').filter((line) => line !== '' && line !== '--');
        // Every name there throughout comes exactly once; the removed one may or may not.
        expect(seen.length).toBe(new Set(seen).size);
        const kept = names.filter((name) => name !== removed);
        expect(kept.filter((name) => !seen.includes(name))).toEqual([]);
      } finally {
        reader.kill();
      }
    });

    it('sees a file made on the server in a directory it is filling once it pauses there, not only after the negative timeout', { timeout: 30_000 }, async () => {
      const { mnt, remote } = await fresh('filling');
      await writeFile(join(mnt, 'ours'), 'ours');
      await writeFile(join(remote, 'theirs'), 'theirs');
      // While the mount fills the directory, a name missing from its listing is presumed missing...
      expect(existsSync(join(mnt, 'theirs'))).toBe(false);
      // ...and the kernel does not keep that answer for the 20 s of a real "no such file".
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(await readFile(join(mnt, 'theirs'), 'utf8')).toBe('theirs');
    });
  });

  describe('lifecycle', () => {
    it('SIGTERM flushes, unmounts and ends the CLI with 0', { timeout: 30_000 }, async () => {
      const mounted = await mountTmount(ssh.server, { remoteSubdir: 'sigterm' });
      const data = randomBytes(3 * MiB);
      await writeFile(join(scratch, 'sigterm.bin'), data);
      await ok('cp', [join(scratch, 'sigterm.bin'), join(mounted.mountpoint, 'f')]);
      await mounted.unmount();
      expect(await mounted.exit).toEqual({ code: 0, signal: null });
      expect(await mountsAt(mounted.mountpoint)).toEqual([]);
      expect((await readFile('/proc/mounts', 'utf8')).split('\n').filter((line) => line.includes(mounted.mountpoint))).toEqual([]);
      expect(await processesNaming(mounted.mountpoint)).toBe('');
      expect((await readFile(join(mounted.remoteDir, 'f'))).equals(data)).toBe(true);
    });

    it('--debug logs every request with its outcome and latency', { timeout: 30_000 }, async () => {
      const mounted = await mountTmount(ssh.server, { remoteSubdir: 'debug', args: ['--debug'] });
      try {
        await writeFile(join(mounted.remoteDir, 'seen.txt'), 'hello');
        expect(await ok('cat', [join(mounted.mountpoint, 'seen.txt')])).toBe('hello');
        expect((await run('stat', [join(mounted.mountpoint, 'missing')])).code).not.toBe(0);
        expect(await ok('ls', ['-A', mounted.mountpoint])).toContain('seen.txt');
        expect((await run('test', ['-w', join(mounted.mountpoint, 'seen.txt')])).code).toBe(0);
        await mkdir(join(mounted.remoteDir, 'full', 'inside'), { recursive: true });
        expect((await run('rmdir', [join(mounted.mountpoint, 'full')])).stderr).toMatch(/not empty/);
        // A request is logged once answered, so its line can trail the command
        // it answered. A refused rmdir is an error...
        const refused = /^fuse #\d+ rmdir \{"parent":1,"name":"full"\} -> ENOTEMPTY in \d+ µs$/m;
        expect(await waitFor(() => refused.test(mounted.log()), 5_000)).toBe(true);
        const log = mounted.log();
        expect(log).toMatch(/^fuse #\d+ lookup \{"parent":1,"name":"seen\.txt"\} -> ok in \d+ µs$/m);
        expect(log).toMatch(/^fuse #\d+ open \{"ino":\d+,"flags":\d+\} -> ok in \d+ µs$/m);
        expect(log).toMatch(/^fuse #\d+ read \{"ino":\d+,"fh":\d+,"size":\d+,"offset":0\} -> ok in \d+ µs$/m);
        // ...a name that does not exist is a negative entry, not an error.
        expect(log).toMatch(/^fuse #\d+ lookup \{"parent":1,"name":"missing"\} -> ok in \d+ µs$/m);
        // The kernel opens directories and allows access by itself: a listing
        // is one request, and a permission check none (the server checks).
        expect(log).toMatch(/^fuse #\d+ readdir \{"ino":1,"fh":0,"size":\d+,"offset":0,"plus":true\} -> ok in \d+ µs$/m);
        expect(log).not.toMatch(/^fuse #\d+ (opendir|releasedir|access) /m);
      } finally {
        await mounted.unmount();
      }
    });

    it('shows the new target of a symlink replaced on the server once its attributes are refreshed', { timeout: 30_000 }, async () => {
      const mounted = await mountTmount(ssh.server, { remoteSubdir: 'relinked', args: ['--attr-timeout', '1'] });
      try {
        await symlink('old', join(mounted.remoteDir, 'link'));
        const link = join(mounted.mountpoint, 'link');
        expect((await ok('readlink', [link])).trim()).toBe('old');
        // ln -s through the mount shows the target it was made with.
        await ok('ln', ['-s', 'made-here', join(mounted.mountpoint, 'ours')]);
        expect((await ok('readlink', [join(mounted.mountpoint, 'ours')])).trim()).toBe('made-here');
        await rm(join(mounted.remoteDir, 'link'));
        await symlink('the-new-one', join(mounted.remoteDir, 'link'));
        expect(await waitFor(async () => (await ok('readlink', [link])).trim() === 'the-new-one', 5_000)).toBe(true);
        expect((await ok('readlink', [join(mounted.remoteDir, 'ours')])).trim()).toBe('made-here');
      } finally {
        await mounted.unmount();
      }
    });

    it.each(['SIGINT', 'fusermount3 -u'])('%s ends the CLI too', async (how) => {
      const mounted = await mountTmount(ssh.server, { remoteSubdir: 'stop' });
      expect(await ok('ls', ['-A', mounted.mountpoint])).toBeDefined();
      if (how === 'SIGINT') mounted.child.kill('SIGINT');
      else await ok('fusermount3', ['-u', mounted.mountpoint]);
      const exit = await Promise.race([mounted.exit, new Promise((resolve) => setTimeout(() => resolve('still running'), 10_000))]);
      expect(exit).toEqual({ code: 0, signal: null });
      expect(await isMounted(mounted.mountpoint)).toBe(false);
      await mounted.unmount();
      expect(await processesNaming(mounted.mountpoint)).toBe('');
    }, 30_000);
  });

  describe('bad input through the CLI', () => {
    let base: string;
    let env: NodeJS.ProcessEnv;
    beforeAll(async () => {
      base = await tempBase('tmount-e2e-bad-');
      env = await isolatedEnv(base);
    });
    afterAll(async () => {
      if (base) await rm(base, { recursive: true, force: true });
    });

    interface DirState {
      exists: boolean;
      entries?: string[];
      mtimeMs?: number;
      mode?: number;
      ino?: number;
    }

    async function dirState(path: string): Promise<DirState> {
      const info = await stat(path).catch(() => undefined);
      if (!info) return { exists: false };
      return { exists: true, entries: (await readdir(path)).sort(), mtimeMs: info.mtimeMs, mode: info.mode, ino: info.ino };
    }

    /**
     * Runs `tmount mount` expecting a refusal: exit `code`, one line on stderr
     * matching `message`, and nothing left behind: no mount, no process, no
     * registration, the mountpoint as it was.
     */
    async function expectRefused(args: string[], mountpoint: string, code: number, message: RegExp): Promise<void> {
      const before = await dirState(mountpoint);
      const mountsBefore = (await mountsAt(mountpoint)).length;
      const result = await run(process.execPath, [CLI, 'mount', '--foreground', ...args], { env, timeout: 30_000 });
      const lines = result.stderr.split('\n').filter(Boolean);
      expect(lines, result.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^tmount: /);
      expect(lines[0]).toMatch(message);
      expect(result.code, result.stderr).toBe(code);
      expect(result.stdout).toBe('');
      expect((await mountsAt(mountpoint)).length).toBe(mountsBefore);
      expect(await processesNaming(mountpoint)).toBe('');
      expect(await dirState(mountpoint)).toEqual(before);
      const state = env.TMOUNT_STATE_DIR!;
      for (const name of await readdir(state)) {
        expect(await readFile(join(state, name), 'utf8').catch(() => ''), name).not.toContain(mountpoint);
      }
    }

    async function emptyDir(name: string): Promise<string> {
      const dir = join(base, name);
      await mkdir(dir);
      return dir;
    }

    it('a missing mountpoint is exit 4 and is not created', async () => {
      const missing = join(base, 'missing');
      await expectRefused([...loginArgs(ssh.server), remoteSpec(ssh.server), missing], missing, 4, /mountpoint .*missing does not exist; create it with: mkdir -p/);
      expect(existsSync(missing)).toBe(false);
    });

    it('a non-empty mountpoint is exit 4, and --nonempty mounts over it', { timeout: 30_000 }, async () => {
      const full = await emptyDir('full');
      await writeFile(join(full, 'local.txt'), 'mine\n');
      await expectRefused([...loginArgs(ssh.server), remoteSpec(ssh.server), full], full, 4, /mountpoint .*full is not empty; .*--nonempty/);

      await mkdir(join(ssh.server.remoteRoot, 'nonempty'));
      await writeFile(join(ssh.server.remoteRoot, 'nonempty', 'remote.txt'), 'theirs\n');
      const mounted = await mountTmount(ssh.server, { remoteSubdir: 'nonempty', mountpoint: full, args: ['--nonempty'] });
      try {
        expect(await ok('ls', ['-A', full])).toBe('remote.txt\n');
        expect(await ok('cat', [join(full, 'remote.txt')])).toBe('theirs\n');
      } finally {
        await mounted.unmount();
      }
      expect(await readdir(full)).toEqual(['local.txt']);
      expect(await readFile(join(full, 'local.txt'), 'utf8')).toBe('mine\n');
    });

    it('a mountpoint that is already mounted is exit 4, and the first mount keeps working', { timeout: 30_000 }, async () => {
      const first = await mountTmount(ssh.server, { remoteSubdir: 'twice' });
      try {
        await ok('sh', ['-c', 'echo hi > "$1"', 'sh', join(first.mountpoint, 'f')]);
        const result = await run(process.execPath, [CLI, 'mount', '--foreground', ...loginArgs(ssh.server), remoteSpec(ssh.server), first.mountpoint], { env, timeout: 30_000 });
        expect(result.stderr.split('\n').filter(Boolean)).toHaveLength(1);
        expect(result.stderr).toMatch(/^tmount: something is already mounted at .*; unmount it first/);
        expect(result.code).toBe(4);
        expect(result.stdout).toBe('');
        expect(await mountsAt(first.mountpoint)).toHaveLength(1);
        expect(await ok('cat', [join(first.mountpoint, 'f')])).toBe('hi\n');
        // Only the first CLI is still there.
        const clis = (await processesNaming(first.mountpoint)).split('\n').filter((line) => line.includes(CLI));
        expect(clis).toHaveLength(1);
        expect(clis[0]).toContain(String(first.child.pid));
      } finally {
        await first.unmount();
      }
    });

    it('a remote path that does not exist is exit 9', async () => {
      const dir = await emptyDir('remote-missing');
      await expectRefused(
        [...loginArgs(ssh.server), remoteSpec(ssh.server, join(ssh.server.remoteRoot, 'no-such-dir')), dir],
        dir,
        9,
        /remote path of .*no-such-dir does not exist; check the path after the ':'/,
      );
    });

    it('an unknown host key without a terminal is exit 7 and nothing is recorded', async () => {
      const dir = await emptyDir('unknown-host');
      const knownHosts = join(base, 'empty_known_hosts');
      await writeFile(knownHosts, '');
      await expectRefused(
        ['--identity', ssh.server.privateKeyPath, '--ssh-option', `UserKnownHostsFile=${knownHosts}`, '--ssh-option', 'GlobalKnownHostsFile=none', remoteSpec(ssh.server), dir],
        dir,
        7,
        /host key of \[127\.0\.0\.1\]:\d+ .*SHA256:.* is not known and there is no terminal.*--accept-new-host-key/,
      );
      expect(await readFile(knownHosts, 'utf8')).toBe('');
      expect(existsSync(join(env.HOME!, '.ssh', 'known_hosts'))).toBe(false);
    });

    it('a key the server does not accept is exit 6', async () => {
      const dir = await emptyDir('wrong-key');
      const key = join(base, 'wrong_ed25519');
      await ok('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', 'not-authorized', '-f', key]);
      await expectRefused(
        ['--identity', key, '--ssh-option', `UserKnownHostsFile=${ssh.server.knownHostsPath}`, '--ssh-option', 'GlobalKnownHostsFile=none', remoteSpec(ssh.server), dir],
        dir,
        6,
        /authentication failed for .*127\.0\.0\.1.*tried .*wrong_ed25519/,
      );
    });
  });
});
