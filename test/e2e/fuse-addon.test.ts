import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, realpath, rm, writeFile } from 'node:fs/promises';
import { constants, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import type {
  FuseAddon,
  FuseAttr,
  FuseDirEntry,
  FuseEntry,
  FuseMountOptions,
  FuseRequest,
  FuseSession,
} from '../../src/backends/fuse/addon-types.js';
import { SetAttr } from '../../src/backends/fuse/addon-types.js';
import { checkAddonLayout, decodeRequest, REQUEST_SLOTS } from '../../src/backends/fuse/request-decoder.js';
import { addonCandidates, loadAddon } from '../../src/platform/addon-loader.js';
import { fuseUsable } from '../fixtures/tmount-mount.js';

// Everything here touches the mount only through child processes: this
// process serves the mount, so a synchronous fs call on it from here would
// wait for the very thread that has to answer it.

const E = constants.errno;
const S_IFMT = 0o170000;
const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const O_TRUNC = fsConstants.O_TRUNC;
const O_EXCL = fsConstants.O_EXCL;
const RENAME_NOREPLACE = 1;
const TEST_TIMEOUT = 30_000;

const IS_ROOT = process.getuid?.() === 0;


/** allow_other needs root or `user_allow_other` in /etc/fuse.conf. */
function allowOtherPermitted(): boolean {
  if (IS_ROOT) return true;
  try {
    return /^\s*user_allow_other\b/m.test(readFileSync('/etc/fuse.conf', 'utf8'));
  } catch {
    return false;
  }
}

let addon: FuseAddon;
beforeAll(() => {
  if (fuseUsable()) addon = loadAddon<FuseAddon>('fuse');
});

/**
 * The two ways the addon can hand requests to JS; every behaviour below must
 * hold for both. The event-loop one needs libuv's headers at build time,
 * which Node installs beside its binary (official builds, setup-node,
 * NodeSource); a build without them skips it, saying so.
 */
const HEADERS_NOTE = 'this addon was built without libuv headers, so it has no event-loop mode to test';
const DISPATCH: { name: string; options: Partial<FuseMountOptions>; skip: string | undefined }[] = [
  { name: 'loop threads', options: { threads: 2 }, skip: undefined },
  {
    name: 'event loop',
    options: { eventLoop: true },
    skip: fuseUsable() && !loadAddon<FuseAddon>('fuse').readsOnEventLoop ? HEADERS_NOTE : undefined,
  },
];

interface Inode {
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  data: Buffer;
  target: string;
  children: Map<string, number> | null;
  parent: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
  lookups: number;
}

interface MemFsOptions {
  /** Seconds the kernel may cache names and attributes. */
  timeout?: number;
  keepCache?: boolean;
}

/**
 * A small in-memory filesystem answering the addon's requests, with real
 * inode numbers and lookup counts. Hooks let a test hold or fail requests.
 */
class MemFs {
  readonly inodes = new Map<number, Inode>();
  readonly seen: FuseRequest[] = [];
  /** Inode numbers whose open() is answered with ENOENT. */
  readonly failOpen = new Set<number>();
  /** Names whose lookup is left unanswered, kept here by request id. */
  readonly holdLookup = new Set<string>();
  readonly held: number[] = [];
  /** Called before the default handling; returning true means "handled". */
  intercept: ((request: FuseRequest, session: FuseSession) => boolean) | null = null;
  maxWrite = 0;
  forgotten = 0;
  private nextIno = 2;
  private nextFh = 1;
  private readonly timeout: number;
  private readonly keepCache: boolean;

  constructor(options: MemFsOptions = {}) {
    this.timeout = options.timeout ?? 1;
    this.keepCache = options.keepCache ?? false;
    const now = Date.now();
    this.inodes.set(1, {
      ino: 1, mode: S_IFDIR | 0o755, nlink: 2, uid: 0, gid: 0, data: Buffer.alloc(0), target: '',
      children: new Map(), parent: 1, atimeMs: now, mtimeMs: now, ctimeMs: now, lookups: 1,
    });
  }

  add(parent: number, name: string, mode: number, content: Buffer | string = '', target = ''): Inode {
    const dir = this.dir(parent);
    if (!dir) throw new Error(`no directory ${parent}`);
    const now = Date.now();
    const node: Inode = {
      ino: this.nextIno++, mode, nlink: (mode & S_IFMT) === S_IFDIR ? 2 : 1, uid: 0, gid: 0,
      data: Buffer.from(content), target, children: (mode & S_IFMT) === S_IFDIR ? new Map() : null,
      parent, atimeMs: now, mtimeMs: now, ctimeMs: now, lookups: 0,
    };
    this.inodes.set(node.ino, node);
    dir.children!.set(name, node.ino);
    if (node.children) dir.nlink++;
    return node;
  }

  /** The inode at a slash-separated path from the root, if any. */
  at(path: string): Inode | undefined {
    let node = this.inodes.get(1);
    for (const part of path.split('/').filter(Boolean)) {
      const ino = node?.children?.get(part);
      node = ino === undefined ? undefined : this.inodes.get(ino);
    }
    return node;
  }

  private dir(ino: number): Inode | undefined {
    const node = this.inodes.get(ino);
    return node?.children ? node : undefined;
  }

  private attr(node: Inode): FuseAttr {
    const size = node.children ? 4096 : (node.mode & S_IFMT) === S_IFLNK ? Buffer.byteLength(node.target) : node.data.length;
    return {
      ino: node.ino, mode: node.mode, nlink: node.nlink, uid: node.uid, gid: node.gid, size,
      blocks: Math.ceil(size / 512), blksize: 4096,
      atimeMs: node.atimeMs, mtimeMs: node.mtimeMs, ctimeMs: node.ctimeMs,
    };
  }

  private entry(node: Inode): FuseEntry {
    node.lookups++;
    return { ino: node.ino, generation: 1, attr: this.attr(node), entryTimeout: this.timeout, attrTimeout: this.timeout };
  }

  private create(session: FuseSession, id: number, parent: number, name: string, mode: number, target = ''): Inode | undefined {
    const dir = this.dir(parent);
    if (!dir) return void session.replyErr(id, E.ENOTDIR);
    if (dir.children!.has(name)) return void session.replyErr(id, E.EEXIST);
    return this.add(parent, name, mode, '', target);
  }

  handle(session: FuseSession, r: FuseRequest): void {
    this.seen.push(r);
    if (this.intercept?.(r, session)) return;
    const node = 'ino' in r ? this.inodes.get(r.ino) : undefined;
    switch (r.op) {
      case 'lookup': {
        if (this.holdLookup.has(r.name)) return void this.held.push(r.id);
        const ino = this.dir(r.parent)?.children!.get(r.name);
        const found = ino === undefined ? undefined : this.inodes.get(ino);
        return found ? session.replyEntry(r.id, this.entry(found)) : session.replyErr(r.id, E.ENOENT);
      }
      case 'forget':
        for (const item of r.items) {
          const forgotten = this.inodes.get(item.ino);
          if (forgotten) forgotten.lookups -= item.nlookup;
          this.forgotten += item.nlookup;
        }
        return;
      case 'getattr':
        return node ? session.replyAttr(r.id, this.attr(node), this.timeout) : session.replyErr(r.id, E.ENOENT);
      case 'setattr': {
        if (!node) return session.replyErr(r.id, E.ENOENT);
        const now = Date.now();
        if (r.toSet & SetAttr.mode) node.mode = (node.mode & S_IFMT) | (r.mode & 0o7777);
        if (r.toSet & SetAttr.uid) node.uid = r.uid;
        if (r.toSet & SetAttr.gid) node.gid = r.gid;
        if (r.toSet & SetAttr.size) {
          const data = Buffer.alloc(r.size);
          node.data.copy(data, 0, 0, Math.min(r.size, node.data.length));
          node.data = data;
          node.mtimeMs = now;
        }
        if (r.toSet & SetAttr.atime) node.atimeMs = r.toSet & SetAttr.atimeNow ? now : r.atimeMs;
        if (r.toSet & SetAttr.mtime) node.mtimeMs = r.toSet & SetAttr.mtimeNow ? now : r.mtimeMs;
        node.ctimeMs = now;
        return session.replyAttr(r.id, this.attr(node), this.timeout);
      }
      case 'readlink':
        return node?.target ? session.replyReadlink(r.id, node.target) : session.replyErr(r.id, E.EINVAL);
      case 'mknod': {
        if ((r.mode & S_IFMT) !== S_IFREG) return session.replyErr(r.id, E.EPERM);
        const made = this.create(session, r.id, r.parent, r.name, r.mode);
        return made && session.replyEntry(r.id, this.entry(made));
      }
      case 'mkdir': {
        const made = this.create(session, r.id, r.parent, r.name, S_IFDIR | (r.mode & 0o7777));
        return made && session.replyEntry(r.id, this.entry(made));
      }
      case 'symlink': {
        const made = this.create(session, r.id, r.parent, r.name, S_IFLNK | 0o777, r.target);
        return made && session.replyEntry(r.id, this.entry(made));
      }
      case 'create': {
        const dir = this.dir(r.parent);
        if (!dir) return session.replyErr(r.id, E.ENOTDIR);
        const existing = dir.children!.get(r.name);
        if (existing !== undefined && r.flags & O_EXCL) return session.replyErr(r.id, E.EEXIST);
        const file = existing !== undefined ? this.inodes.get(existing)! : this.add(r.parent, r.name, S_IFREG | (r.mode & 0o7777));
        if (r.flags & O_TRUNC) file.data = Buffer.alloc(0);
        return session.replyCreate(r.id, this.entry(file), { fh: this.nextFh++ });
      }
      case 'unlink':
      case 'rmdir': {
        const dir = this.dir(r.parent);
        const ino = dir?.children!.get(r.name);
        const victim = ino === undefined ? undefined : this.inodes.get(ino);
        if (!dir || !victim) return session.replyErr(r.id, E.ENOENT);
        if (r.op === 'unlink' && victim.children) return session.replyErr(r.id, E.EISDIR);
        if (r.op === 'rmdir' && !victim.children) return session.replyErr(r.id, E.ENOTDIR);
        if (r.op === 'rmdir' && victim.children!.size > 0) return session.replyErr(r.id, E.ENOTEMPTY);
        dir.children!.delete(r.name);
        victim.nlink--;
        if (victim.children) dir.nlink--;
        return session.replyErr(r.id, 0);
      }
      case 'rename': {
        if (r.flags & ~RENAME_NOREPLACE) return session.replyErr(r.id, E.EINVAL);
        const from = this.dir(r.parent);
        const to = this.dir(r.newParent);
        const ino = from?.children!.get(r.name);
        if (!from || !to || ino === undefined) return session.replyErr(r.id, E.ENOENT);
        const moving = this.inodes.get(ino)!;
        const replaced = to.children!.get(r.newName);
        if (replaced !== undefined) {
          if (r.flags & RENAME_NOREPLACE) return session.replyErr(r.id, E.EEXIST);
          const old = this.inodes.get(replaced)!;
          if (old.children && old.children.size > 0) return session.replyErr(r.id, E.ENOTEMPTY);
          old.nlink--;
        }
        from.children!.delete(r.name);
        to.children!.set(r.newName, ino);
        moving.parent = to.ino;
        if (moving.children && from !== to) {
          from.nlink--;
          to.nlink++;
        }
        return session.replyErr(r.id, 0);
      }
      case 'link': {
        const to = this.dir(r.newParent);
        if (!node || !to) return session.replyErr(r.id, E.ENOENT);
        if (to.children!.has(r.newName)) return session.replyErr(r.id, E.EEXIST);
        to.children!.set(r.newName, node.ino);
        node.nlink++;
        return session.replyEntry(r.id, this.entry(node));
      }
      case 'open':
        if (!node || this.failOpen.has(node.ino)) return session.replyErr(r.id, E.ENOENT);
        if (r.flags & O_TRUNC) node.data = Buffer.alloc(0);
        return session.replyOpen(r.id, { fh: this.nextFh++, keepCache: this.keepCache });
      case 'read':
        if (!node) return session.replyErr(r.id, E.EBADF);
        return session.replyBuf(r.id, node.data.subarray(r.offset, r.offset + r.size));
      case 'write': {
        if (!node) return session.replyErr(r.id, E.EBADF);
        this.maxWrite = Math.max(this.maxWrite, r.data.length);
        const end = r.offset + r.data.length;
        if (end > node.data.length) {
          const grown = Buffer.alloc(end);
          node.data.copy(grown);
          node.data = grown;
        }
        r.data.copy(node.data, r.offset);
        node.mtimeMs = Date.now();
        return session.replyWrite(r.id, r.data.length);
      }
      case 'flush':
      case 'release':
      case 'fsync':
      case 'releasedir':
      case 'fsyncdir':
        return session.replyErr(r.id, 0);
      case 'opendir':
        return node?.children ? session.replyOpen(r.id, { fh: this.nextFh++ }) : session.replyErr(r.id, E.ENOTDIR);
      case 'readdir': {
        if (!node?.children) return session.replyErr(r.id, E.ENOTDIR);
        const all: FuseDirEntry[] = [
          { name: '.', ino: node.ino, mode: S_IFDIR, nextOffset: 1 },
          { name: '..', ino: node.parent, mode: S_IFDIR, nextOffset: 2 },
        ];
        for (const [name, ino] of node.children) {
          const child = this.inodes.get(ino)!;
          all.push({ name, ino, mode: child.mode, nextOffset: all.length + 1 });
        }
        const batch = all.slice(r.offset);
        if (r.plus) {
          for (const entry of batch) {
            if (entry.name === '.' || entry.name === '..') continue;
            const child = this.inodes.get(entry.ino)!;
            entry.entry = { ino: child.ino, generation: 1, attr: this.attr(child), entryTimeout: this.timeout, attrTimeout: this.timeout };
          }
        }
        const packed = session.replyDirectory(r.id, batch, r.size, r.plus);
        // readdirplus takes one lookup reference per entry sent with `entry`.
        for (const entry of batch.slice(0, packed)) if (entry.entry) this.inodes.get(entry.ino)!.lookups++;
        return;
      }
      case 'statfs':
        return session.replyStatfs(r.id, {
          bsize: 4096, frsize: 4096, blocks: 1000, bfree: 600, bavail: 500, files: 100, ffree: 90, favail: 90, namemax: 255,
        });
    }
  }
}

interface Mounted {
  dir: string;
  fs: MemFs;
  session: FuseSession;
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!().catch(() => undefined);
});

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command with a hard timeout; never throws, the result says how it went. */
function run(file: string, args: string[], timeout = 15_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout, killSignal: 'SIGKILL', encoding: 'utf8' }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function ok(file: string, args: string[]): Promise<string> {
  const result = await run(file, args);
  if (result.code !== 0) throw new Error(`${file} ${args.join(' ')} exited ${result.code}: ${result.stderr}`);
  return result.stdout;
}

function unescapeMount(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/** The /proc/mounts lines whose mountpoint is `dir` (read from /proc, not from the mount). */
async function mountsAt(dir: string): Promise<string[]> {
  const table = await readFile('/proc/mounts', 'utf8');
  return table.split('\n').filter((line) => unescapeMount(line.split(' ')[1] ?? '') === dir);
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** A fresh temp dir, removed after the test; unmounted first if still mounted. */
async function tempDir(): Promise<string> {
  const base = await realpath(await mkdtemp(join(tmpdir(), 'tmount-fuse-')));
  cleanups.push(async () => {
    for (const dir of [join(base, 'mnt'), base]) {
      if ((await mountsAt(dir)).length > 0) await run(IS_ROOT ? 'umount' : 'fusermount3', IS_ROOT ? ['-l', dir] : ['-u', '-z', dir]);
    }
    await rm(base, { recursive: true, force: true });
  });
  return base;
}

function newSlots(): Float64Array {
  return new Float64Array(REQUEST_SLOTS.length);
}

/** The dispatch mode of the suite being run. */
let dispatch: Partial<FuseMountOptions> = {};

async function mountMemFs(
  fs = new MemFs(),
  options: Partial<FuseMountOptions> = {},
): Promise<Mounted> {
  const dir = join(await tempDir(), 'mnt');
  await mkdir(dir);
  const slots = newSlots();
  const session: FuseSession = new addon.FuseSession(
    dir,
    { fsname: 'memfs@test:/', subtype: 'tmount-test', ...dispatch, ...options },
    (op, a, b) => fs.handle(session, decodeRequest(slots, op, a, b)),
    slots,
  );
  session.mount();
  cleanups.push(() => within(session.unmount(), 10_000, 'unmount()'));
  return { dir, fs, session };
}

describe.skipIf(!fuseUsable()).each(DISPATCH)('FUSE addon (real mounts, $name)', ({ options, skip }) => {
  if (skip) {
    it.skip(skip);
    return;
  }
  beforeAll(() => {
    dispatch = options;
  });

  it('reports the libfuse version and exports exactly the contract', () => {
    expect(addon.libfuseVersion()).toMatch(/^3\.\d+\.\d+$/);
    expect(Object.keys(addon).sort()).toEqual(['FuseSession', 'libfuseVersion', 'opNames', 'readsOnEventLoop', 'requestSlots']);
    expect(() => checkAddonLayout(addon)).not.toThrow();
    expect(addonCandidates('fuse')[0]).toMatch(/addons\/fuse\/build\/Release\/tmount_fuse\.node$/);
  });

  it('lists, stats and reads what the handler serves', { timeout: TEST_TIMEOUT }, async () => {
    const fs = new MemFs();
    const hello = fs.add(1, 'hello.txt', S_IFREG | 0o644, 'hello, world\n');
    const sub = fs.add(1, 'sub', S_IFDIR | 0o755);
    fs.add(sub.ino, 'inner', S_IFREG | 0o600, 'x');
    const { dir } = await mountMemFs(fs);

    const mounts = await mountsAt(dir);
    expect(mounts).toHaveLength(1);
    expect(mounts[0]).toMatch(/^memfs@test:\/ \S+ fuse\.tmount-test /);

    const listing = await ok('ls', ['-la', dir]);
    expect(listing).toMatch(/^-rw-r--r-- +1 root root +13 .* hello\.txt$/m);
    expect(listing).toMatch(/^drwxr-xr-x +2 root root +4096 .* sub$/m);
    expect(await ok('cat', [join(dir, 'hello.txt')])).toBe('hello, world\n');
    expect((await ok('stat', ['-c', '%s %a %F %i %h', join(dir, 'hello.txt')])).trim()).toBe(`13 644 regular file ${hello.ino} 1`);
    expect((await ok('ls', ['-i', join(dir, 'sub')])).trim()).toMatch(new RegExp(`^${fs.at('sub/inner')!.ino} inner$`));
    expect((await ok('stat', ['-c', '%F %a', dir])).trim()).toBe('directory 755');
  });

  it('creates, writes, renames, links and removes through the kernel', { timeout: TEST_TIMEOUT }, async () => {
    const { dir, fs } = await mountMemFs();
    await ok('sh', ['-c', `echo first > '${dir}/f' && echo second >> '${dir}/f'`]);
    expect(await ok('cat', [join(dir, 'f')])).toBe('first\nsecond\n');
    expect(fs.at('f')!.data.toString()).toBe('first\nsecond\n');

    await ok('mkdir', [join(dir, 'd')]);
    await ok('mv', [join(dir, 'f'), join(dir, 'd', 'g')]);
    expect(fs.at('f')).toBeUndefined();
    expect(await ok('cat', [join(dir, 'd', 'g')])).toBe('first\nsecond\n');

    await ok('ln', ['-s', 'd/g', join(dir, 'link')]);
    expect((await ok('readlink', [join(dir, 'link')])).trim()).toBe('d/g');
    expect(await ok('cat', [join(dir, 'link')])).toBe('first\nsecond\n');
    expect((await ok('stat', ['-c', '%F', join(dir, 'link')])).trim()).toBe('symbolic link');

    await ok('ln', [join(dir, 'd', 'g'), join(dir, 'hard')]);
    expect((await ok('stat', ['-c', '%h %i', join(dir, 'hard')])).trim()).toBe(`2 ${fs.at('d/g')!.ino}`);

    // mv -n asks for RENAME_NOREPLACE, which the handler honours.
    await ok('sh', ['-c', `echo other > '${dir}/other'`]);
    await run('mv', ['-n', join(dir, 'other'), join(dir, 'hard')]);
    expect(await ok('cat', [join(dir, 'hard')])).toBe('first\nsecond\n');
    expect(fs.seen.some((r) => r.op === 'rename' && r.flags === RENAME_NOREPLACE)).toBe(true);

    const rmdirFull = await run('rmdir', [join(dir, 'd')]);
    expect(rmdirFull.code).not.toBe(0);
    expect(rmdirFull.stderr).toMatch(/Directory not empty/);
    await ok('rm', [join(dir, 'd', 'g'), join(dir, 'link'), join(dir, 'hard'), join(dir, 'other')]);
    await ok('rmdir', [join(dir, 'd')]);
    expect((await ok('ls', ['-A', dir])).trim()).toBe('');
    expect(fs.at('')!.children!.size).toBe(0);
  });

  it('applies chmod, truncate and touch as setattr', { timeout: TEST_TIMEOUT }, async () => {
    const fs = new MemFs();
    fs.add(1, 'f', S_IFREG | 0o644, 'abcdefgh');
    const { dir } = await mountMemFs(fs);
    const file = join(dir, 'f');
    await ok('chmod', ['640', file]);
    await ok('truncate', ['-s', '3', file]);
    await ok('touch', ['-m', '-d', '@1000000000.5', file]);
    expect((await ok('stat', ['-c', '%a %s %Y', file])).trim()).toBe('640 3 1000000000');
    expect(fs.at('f')!.mtimeMs).toBe(1000000000500);
    expect(await ok('cat', [file])).toBe('abc');
  });

  it.each([false, true])('copies a 3 MiB file in and out intact (writebackCache %s)', { timeout: TEST_TIMEOUT }, async (writebackCache) => {
    const { dir, fs } = await mountMemFs(new MemFs(), { writebackCache });
    const source = join(await tempDir(), 'source.bin');
    const bytes = randomBytes(3 << 20);
    await writeFile(source, bytes);
    const digest = createHash('sha256').update(bytes).digest('hex');

    await ok('dd', [`if=${source}`, `of=${join(dir, 'big.bin')}`, 'bs=1M', 'status=none']);
    expect(createHash('sha256').update(fs.at('big.bin')!.data).digest('hex')).toBe(digest);
    expect((await ok('sha256sum', [join(dir, 'big.bin')])).split(' ')[0]).toBe(digest);
    expect((await ok('stat', ['-c', '%s', join(dir, 'big.bin')])).trim()).toBe(String(3 << 20));
    // max_write was raised past the kernel's 128 KiB default.
    expect(fs.maxWrite).toBeGreaterThan(128 << 10);
  });

  it('answers statfs', { timeout: TEST_TIMEOUT }, async () => {
    const { dir } = await mountMemFs();
    expect((await ok('stat', ['-f', '-c', '%S %b %f %a %c %d %l', dir])).trim()).toBe('4096 1000 600 500 100 90 255');
  });

  it('serves a large directory over several readdirplus replies', { timeout: TEST_TIMEOUT }, async () => {
    const fs = new MemFs();
    const names = Array.from({ length: 400 }, (_, i) => `file-with-a-rather-long-name-${String(i).padStart(4, '0')}`);
    for (const name of names) fs.add(1, name, S_IFREG | 0o644, name);
    const { dir } = await mountMemFs(fs);
    const listing = (await ok('ls', ['-1i', dir])).trim().split('\n');
    expect(listing).toHaveLength(names.length);
    for (const line of listing) {
      const [ino, name] = line.trim().split(/\s+/);
      expect(fs.at(name!)?.ino).toBe(Number(ino));
    }
    const readdirs = fs.seen.filter((r) => r.op === 'readdir');
    expect(readdirs.length).toBeGreaterThan(2);
    expect(readdirs.every((r) => r.op === 'readdir' && r.plus)).toBe(true);
    // `ls -l` after readdirplus needs no lookups: the kernel got them with the names.
    const lookupsBefore = fs.seen.filter((r) => r.op === 'lookup').length;
    expect((await ok('ls', ['-l', dir])).trim().split('\n')).toHaveLength(names.length + 1);
    expect(fs.seen.filter((r) => r.op === 'lookup').length - lookupsBefore).toBeLessThan(10);
  });

  it('shows replyErr(ENOENT) to cat as "No such file or directory"', { timeout: TEST_TIMEOUT }, async () => {
    const fs = new MemFs();
    const ghost = fs.add(1, 'ghost', S_IFREG | 0o644, 'boo');
    fs.failOpen.add(ghost.ino);
    const { dir } = await mountMemFs(fs);
    expect(await ok('ls', [dir])).toContain('ghost');
    const result = await run('cat', [join(dir, 'ghost')]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/ghost: No such file or directory/);
    expect(fs.seen.some((r) => r.op === 'open' && r.ino === ghost.ino)).toBe(true);
  });

  it('validates replies, and a rejected reply leaves the request answerable', { timeout: TEST_TIMEOUT }, async () => {
    const fs = new MemFs();
    const errors: unknown[] = [];
    fs.intercept = (r, session) => {
      if (r.op !== 'lookup' || r.name !== 'probe') return false;
      const attempt = (reply: () => void): void => {
        try {
          reply();
        } catch (error) {
          errors.push(error);
        }
      };
      attempt(() => session.replyEntry(r.id, { ino: 'x' } as unknown as FuseEntry));
      attempt(() => session.replyEntry(r.id, undefined as unknown as FuseEntry));
      attempt(() => session.replyBuf(r.id, Buffer.from('no')));
      attempt(() => session.replyErr(r.id, 0));
      attempt(() => session.replyErr(r.id, -2));
      attempt(() => session.replyNone(r.id));
      attempt(() => session.replyErr('1' as unknown as number, E.ENOENT));
      session.replyErr(r.id, E.ENOENT);
      attempt(() => session.replyErr(r.id, E.ENOENT));
      attempt(() => session.replyErr(987654321, E.ENOENT));
      return true;
    };
    const { dir } = await mountMemFs(fs);
    const result = await run('stat', [join(dir, 'probe')]);
    expect(result.stderr).toMatch(/No such file or directory/);
    const messages = errors.map((error) => `${(error as Error).name}: ${(error as Error).message}`);
    expect(messages).toEqual([
      'TypeError: replyEntry: entry.ino must be a number',
      'TypeError: replyEntry: entry must be an object',
      expect.stringMatching(/^Error: replyBuf: request \d+ \('lookup'\) cannot be answered with replyBuf$/),
      expect.stringMatching(/^Error: replyErr: errno 0 means success, and request \d+ \('lookup'\) needs its data/),
      'TypeError: replyErr: errno must be an integer from 0 to 4095',
      expect.stringMatching(/^Error: replyNone: request \d+ \('lookup'\) cannot be answered with replyNone$/),
      'TypeError: replyErr: id must be a number',
      expect.stringMatching(/^Error: replyErr: no pending request \d+ \(already answered, or never sent\)$/),
      'Error: replyErr: no pending request 987654321 (already answered, or never sent)',
    ]);
  });

  it('unmount() answers requests still pending and leaves nothing in /proc/mounts', { timeout: TEST_TIMEOUT }, async () => {
    const fs = new MemFs();
    fs.holdLookup.add('stuck');
    const { dir, session } = await mountMemFs(fs);
    const stuck = run('stat', [join(dir, 'stuck')]);
    await within(
      (async () => {
        while (fs.held.length === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      })(),
      5_000,
      'the held lookup',
    );
    let closed = false;
    void session.closed.then(() => (closed = true));
    await within(session.unmount(), 10_000, 'unmount()');
    expect(closed).toBe(true);
    expect(await mountsAt(dir)).toEqual([]);
    const result = await stuck;
    expect(result.code).not.toBe(0);
    // The session answered it; a late reply from JS is dropped, not thrown.
    expect(() => session.replyErr(fs.held[0]!, E.ENOENT)).not.toThrow();
    // unmount() is idempotent.
    await within(session.unmount(), 1_000, 'a second unmount()');
  });

  it('resolves `closed` when the mount is removed from outside', { timeout: TEST_TIMEOUT }, async () => {
    const fs = new MemFs();
    fs.add(1, 'f', S_IFREG | 0o644, 'x');
    const { dir, session } = await mountMemFs(fs);
    expect(await ok('cat', [join(dir, 'f')])).toBe('x');
    await ok('fusermount3', ['-u', dir]);
    await within(session.closed, 10_000, 'closed');
    expect(await mountsAt(dir)).toEqual([]);
    await within(session.unmount(), 1_000, 'unmount() after an outside unmount');
  });

  it('refuses a missing mountpoint and one that is already mounted, with a clear Error', { timeout: TEST_TIMEOUT }, async () => {
    const base = await tempDir();
    const missing = new addon.FuseSession(join(base, 'missing'), { fsname: 'x', subtype: 'tmount-test' }, () => undefined, newSlots());
    expect(() => missing.mount()).toThrow(`fuse_session_mount(${join(base, 'missing')}) failed: No such file or directory`);

    const { dir } = await mountMemFs();
    const second = new addon.FuseSession(dir, { fsname: 'x', subtype: 'tmount-test' }, () => undefined, newSlots());
    expect(() => second.mount()).toThrow(/^fuse_session_mount\(.*\) refused: .* is already a mount point \(fuse\.tmount-test\); unmount it first$/);
    expect(await mountsAt(dir)).toHaveLength(1);

    expect(() => new addon.FuseSession('relative', { fsname: 'x', subtype: 't' }, () => undefined, newSlots())).toThrow(TypeError);
    expect(() => new addon.FuseSession(dir, { fsname: 'x', subtype: 'a,b' }, () => undefined, newSlots())).toThrow(TypeError);
    expect(() => new addon.FuseSession(dir, { fsname: 'x', subtype: 't', threads: 0 }, () => undefined, newSlots())).toThrow(TypeError);
    expect(() => new addon.FuseSession(dir, { fsname: 'x', subtype: 't' }, 'nope' as never, newSlots())).toThrow(TypeError);
    expect(() => new addon.FuseSession(dir, { fsname: 'x', subtype: 't' }, () => undefined, new Float64Array(2))).toThrow(TypeError);
  });

  it.skipIf(!allowOtherPermitted())('passes the mount options to the kernel', { timeout: TEST_TIMEOUT }, async () => {
    const { dir } = await mountMemFs(new MemFs(), {
      fsname: 'alice,bob@host:/srv/my data', allowOther: true, defaultPermissions: true,
    });
    const [line] = await mountsAt(dir);
    expect(line).toMatch(/^alice,bob@host:\/srv\/my\\040data \S+ fuse\.tmount-test rw,/);
    expect(line).toMatch(/[, ]default_permissions[, ]/);
    expect(line).toMatch(/[, ]allow_other[, ]/);
  });

  it('refuses writes on a read-only mount', { timeout: TEST_TIMEOUT }, async () => {
    const fs = new MemFs();
    fs.add(1, 'f', S_IFREG | 0o644, 'x');
    const { dir } = await mountMemFs(fs, { readonly: true });
    const result = await run('sh', ['-c', `echo y > '${dir}/f'`]);
    expect(result.stderr).toMatch(/Read-only file system/);
    expect(await ok('cat', [join(dir, 'f')])).toBe('x');
  });

  it('notifyInvalEntry and notifyInvalInode drop what the kernel cached', { timeout: TEST_TIMEOUT }, async () => {
    const fs = new MemFs({ timeout: 3600, keepCache: true });
    const file = fs.add(1, 'f', S_IFREG | 0o644, 'old!');
    fs.add(1, 'gone', S_IFREG | 0o644, 'here');
    const { dir, session } = await mountMemFs(fs);

    expect(await ok('cat', [join(dir, 'f')])).toBe('old!');
    file.data = Buffer.from('new!');
    expect(await ok('cat', [join(dir, 'f')])).toBe('old!');
    session.notifyInvalInode(file.ino, 0, 0);
    expect(await ok('cat', [join(dir, 'f')])).toBe('new!');

    expect(await ok('cat', [join(dir, 'gone')])).toBe('here');
    fs.at('')!.children!.delete('gone');
    expect(await ok('cat', [join(dir, 'gone')])).toBe('here');
    session.notifyInvalEntry(1, 'gone');
    expect((await run('cat', [join(dir, 'gone')])).stderr).toMatch(/No such file or directory/);

    // Names and inodes the kernel never saw are not errors.
    session.notifyInvalEntry(1, 'never-seen');
    session.notifyInvalInode(999_999, 0, 0);
    expect(() => session.notifyInvalEntry(1, 'a/b')).toThrow(TypeError);
  });

  it.skipIf(!IS_ROOT)('reports forgets as one request with id 0 after the kernel drops its inodes', { timeout: TEST_TIMEOUT }, async () => {
    const fs = new MemFs();
    for (let i = 0; i < 20; i++) fs.add(1, `f${i}`, S_IFREG | 0o644, 'x');
    const { dir } = await mountMemFs(fs);
    await ok('ls', ['-l', dir]);
    // Dropping the dentry and inode caches makes the kernel send FORGETs.
    await ok('sh', ['-c', 'echo 2 > /proc/sys/vm/drop_caches']);
    await within(
      (async () => {
        while (fs.forgotten === 0) await new Promise((resolve) => setTimeout(resolve, 20));
      })(),
      10_000,
      'a forget',
    );
    const forget = fs.seen.find((r) => r.op === 'forget');
    expect(forget).toMatchObject({ op: 'forget', id: 0 });
    expect(forget?.op === 'forget' && forget.items.length).toBeGreaterThan(0);
    for (const node of fs.inodes.values()) expect(node.lookups).toBeGreaterThanOrEqual(0);
  });
});

/** For the plain scripts below: a request's op, id and string argument, straight from the addon. */
const RAW_REQUESTS = `
  const slots = new Float64Array(addon.requestSlots.length);
  const request = (op, a) => ({ op: addon.opNames[op], id: slots[addon.requestSlots.indexOf('id')], name: a });
`;

describe.skipIf(!fuseUsable()).each(DISPATCH)('FUSE addon process lifetime ($name)', ({ options, skip }) => {
  if (skip) {
    it.skip(skip);
    return;
  }
  const mountOptions = JSON.stringify({ fsname: 'child', subtype: 'tmount-test', ...options });
  const script = (body: string): string => `
    const addon = require(${JSON.stringify(addonCandidates('fuse')[0])});
    const dir = process.argv[1];
    ${RAW_REQUESTS}
    const session = new addon.FuseSession(dir, ${mountOptions}, (op, a) => {
      const r = request(op, a);
      if (r.op === 'forget') return;
      if (r.op === 'getattr') return session.replyAttr(r.id, { ino: 1, mode: 0o40755, nlink: 2, uid: 0, gid: 0, size: 0, blocks: 0, blksize: 4096, atimeMs: 0, mtimeMs: 0, ctimeMs: 0 }, 1);
      session.replyErr(r.id, 38);
    }, slots);
    session.mount();
    ${body}
  `;

  it('does not keep the process alive after unmount()', { timeout: TEST_TIMEOUT }, async () => {
    const dir = join(await tempDir(), 'mnt');
    await mkdir(dir);
    const result = await run(process.execPath, ['-e', script(`
      require('child_process').execFile('stat', ['-c', '%F', dir], (error, stdout) => {
        process.stdout.write(stdout);
        session.unmount().then(() => process.stdout.write('unmounted\\n'));
      });
    `), dir], 10_000);
    expect(result.stderr).toBe('');
    expect(result.stdout).toBe('directory\nunmounted\n');
    expect(result.code).toBe(0);
    expect(await mountsAt(dir)).toEqual([]);
  });

  it('answers EIO for a request whose handler throws, and raises uncaughtException', { timeout: TEST_TIMEOUT }, async () => {
    const dir = join(await tempDir(), 'mnt');
    await mkdir(dir);
    const result = await run(process.execPath, ['-e', `
      const addon = require(${JSON.stringify(addonCandidates('fuse')[0])});
      const dir = process.argv[1];
      process.on('uncaughtException', (error) => process.stdout.write('uncaught: ' + error.message + '\\n'));
      ${RAW_REQUESTS}
      const session = new addon.FuseSession(dir, ${mountOptions}, (op, a) => {
        const r = request(op, a);
        if (r.op === 'lookup') throw new Error('bug on ' + r.name);
        if (r.op === 'forget') return;
        if (r.op === 'getattr') return session.replyAttr(r.id, { ino: 1, mode: 0o40755, nlink: 2, uid: 0, gid: 0, size: 0, blocks: 0, blksize: 4096, atimeMs: 0, mtimeMs: 0, ctimeMs: 0 }, 1);
        session.replyErr(r.id, 38);
      }, slots);
      session.mount();
      require('child_process').execFile('stat', [dir + '/x'], (error, stdout, stderr) => {
        process.stdout.write(stderr);
        session.unmount();
      });
    `, dir], 10_000);
    expect(result.stdout).toBe(`uncaught: bug on x\nstat: cannot statx '${dir}/x': Input/output error\n`);
    expect(result.code).toBe(0);
    expect(await mountsAt(dir)).toEqual([]);
  });

  it('unmounts when the process calls process.exit() while mounted', { timeout: TEST_TIMEOUT }, async () => {
    const dir = join(await tempDir(), 'mnt');
    await mkdir(dir);
    const result = await run(process.execPath, ['-e', script(`
      require('fs').readFile('/proc/mounts', 'utf8', (error, table) => {
        process.stdout.write(table.includes(dir) ? 'mounted\\n' : 'not mounted\\n');
        process.exit(3);
      });
    `), dir], 10_000);
    expect(result.stdout).toBe('mounted\n');
    expect(result.code).toBe(3);
    expect(await mountsAt(dir)).toEqual([]);
  });
});
