import { randomBytes } from 'node:crypto';
import { link, lstat, mkdir, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { exportPathFor } from '../../src/backends/nfs/index.js';
import { MountProc } from '../../src/backends/nfs/mount-protocol.js';
import { Access3, CreateMode, Nfs3Proc, StableHow } from '../../src/backends/nfs/nfs3.js';
import { startNfsServer, type NfsServer } from '../../src/backends/nfs/nfs-server.js';
import type { CallContext } from '../../src/backends/nfs/server.js';
import { MountStatus, Nfs3Status } from '../../src/backends/nfs/status-map.js';
import { XdrError, XdrReader, XdrWriter } from '../../src/backends/nfs/xdr.js';
import { args, dirop, fh, readFattr3, readPostOpAttr, readWcc, sattr } from '../fixtures/nfs3-codec.js';
import { testNfsOptions } from '../fixtures/nfs-server.js';
import { openRemoteFs, type OpenedFs } from '../fixtures/remote-fs.js';
import { useSshServer } from '../fixtures/ssh-server.js';

const ssh = useSshServer();
let opened: OpenedFs;
let server: NfsServer;
let exportPath: string;
let root: Buffer;
let dir: string;
let dirFh: Buffer;
let counter = 0;
const uid = process.getuid?.() ?? 0;

const remote = (...parts: string[]) => join(ssh.server.remoteRoot, dir, ...parts);

beforeAll(async () => {
  opened = await openRemoteFs(ssh.server);
  exportPath = exportPathFor(ssh.server.remoteRoot);
  server = await startNfsServer(testNfsOptions(opened.fs, exportPath, { idleCloseMs: 300 }));
  root = server.handles.root;
});
afterAll(async () => {
  await server?.close();
  await opened?.close();
});
beforeEach(async () => {
  dir = `p${++counter}`;
  await mkdir(join(ssh.server.remoteRoot, dir));
  dirFh = (await lookup(root, dir)).handle!;
});

function context(prog: number, proc: number, callerUid = uid): CallContext {
  return { xid: 1, prog, vers: 3, proc, auth: { stamp: 0, machine: 'test', uid: callerUid, gid: 0, gids: [] }, port: 700 };
}

/** Calls an NFSv3 procedure directly on the program and returns a reader over its result. */
async function nfs(proc: number, w: XdrWriter, callerUid = uid): Promise<XdrReader> {
  const out = new XdrWriter();
  await server.nfs.call(context(100003, proc, callerUid), new XdrReader(w.toBuffer()), out);
  return new XdrReader(out.toBuffer());
}

async function mnt(path: string): Promise<XdrReader> {
  const out = new XdrWriter();
  await server.mount.call(context(100005, MountProc.mnt), new XdrReader(new XdrWriter().string(path).toBuffer()), out);
  return new XdrReader(out.toBuffer());
}

async function lookup(dirHandle: Buffer, name: string) {
  const r = await nfs(Nfs3Proc.lookup, dirop(args(), dirHandle, name));
  const status = r.u32();
  if (status !== Nfs3Status.ok) return { status, dirAttr: readPostOpAttr(r) };
  const handle = Buffer.from(r.opaque(64));
  return { status, handle, attr: readPostOpAttr(r)!, dirAttr: readPostOpAttr(r) };
}

async function getattr(handle: Buffer) {
  const r = await nfs(Nfs3Proc.getattr, fh(args(), handle));
  const status = r.u32();
  return { status, attr: status === Nfs3Status.ok ? readFattr3(r) : undefined };
}

async function create(dirHandle: Buffer, name: string, mode: number = CreateMode.unchecked, how: { mode?: number; size?: bigint; verf?: Buffer } = {}) {
  const w = dirop(args(), dirHandle, name).u32(mode);
  if (mode === CreateMode.exclusive) w.fixed(how.verf ?? Buffer.alloc(8));
  else sattr(w, { ...(how.mode !== undefined ? { mode: how.mode } : {}), ...(how.size !== undefined ? { size: how.size } : {}) });
  const r = await nfs(Nfs3Proc.create, w);
  const status = r.u32();
  if (status !== Nfs3Status.ok) return { status, dirWcc: readWcc(r) };
  const handle = r.bool() ? Buffer.from(r.opaque(64)) : undefined;
  return { status, handle, attr: readPostOpAttr(r), dirWcc: readWcc(r) };
}

async function write(handle: Buffer, offset: number, data: Buffer, stable: number = StableHow.unstable) {
  const r = await nfs(Nfs3Proc.write, fh(args(), handle).u64(offset).u32(data.length).u32(stable).opaque(data));
  const status = r.u32();
  const wcc = readWcc(r);
  if (status !== Nfs3Status.ok) return { status, wcc };
  return { status, wcc, count: r.u32(), committed: r.u32(), verf: Buffer.from(r.fixed(8)) };
}

async function commit(handle: Buffer) {
  const r = await nfs(Nfs3Proc.commit, fh(args(), handle).u64(0).u32(0));
  const status = r.u32();
  readWcc(r);
  return { status, verf: status === Nfs3Status.ok ? Buffer.from(r.fixed(8)) : undefined };
}

async function read(handle: Buffer, offset: number, count: number) {
  const r = await nfs(Nfs3Proc.read, fh(args(), handle).u64(offset).u32(count));
  const status = r.u32();
  const attr = readPostOpAttr(r);
  if (status !== Nfs3Status.ok) return { status, attr };
  const length = r.u32();
  const eof = r.bool();
  const data = Buffer.from(r.opaque(1 << 24));
  expect(data.length).toBe(length);
  return { status, attr, eof, data };
}

async function readdir(dirHandle: Buffer, plus: boolean, count: number) {
  const names: string[] = [];
  const handles = new Map<string, Buffer>();
  let cookie = 0n;
  let verf = 0n;
  let calls = 0;
  for (;;) {
    const w = fh(args(), dirHandle).u64(cookie).u64(verf).u32(count);
    if (plus) w.u32(count * 4);
    const r = await nfs(plus ? Nfs3Proc.readdirplus : Nfs3Proc.readdir, w);
    const status = r.u32();
    readPostOpAttr(r);
    if (status !== Nfs3Status.ok) return { status, names, handles, calls };
    calls++;
    verf = r.u64();
    while (r.bool()) {
      r.u64();
      const name = r.string(4096);
      cookie = r.u64();
      names.push(name);
      if (plus) {
        readPostOpAttr(r);
        if (r.bool()) handles.set(name, Buffer.from(r.opaque(64)));
      }
    }
    if (r.bool()) return { status, names, handles, calls };
  }
}

describe('MOUNT v3 against RemoteFs', () => {
  it('hands out the root handle for the export and handles of directories below it', async () => {
    const r = await mnt(exportPath);
    expect(r.u32()).toBe(MountStatus.ok);
    expect(r.opaque(64).equals(root)).toBe(true);
    expect([r.u32(), r.u32()]).toEqual([1, 1]); // one flavor: AUTH_SYS
    await mkdir(remote('sub'));
    const sub = await mnt(`${exportPath}/${dir}/sub/`);
    expect(sub.u32()).toBe(MountStatus.ok);
    const handle = Buffer.from(sub.opaque(64));
    expect((await getattr(handle)).attr?.type).toBe(2);
  });

  it('refuses paths outside the export, and says which paths are missing or not directories', async () => {
    await writeFile(remote('file'), 'x');
    expect((await mnt('/etc')).u32()).toBe(MountStatus.acces);
    expect((await mnt(`${exportPath}/../`)).u32()).toBe(MountStatus.acces);
    expect((await mnt(`${exportPath}/${dir}/../../etc`)).u32()).toBe(MountStatus.acces);
    expect((await mnt('relative')).u32()).toBe(MountStatus.acces);
    expect((await mnt(`${exportPath}/${dir}/missing`)).u32()).toBe(MountStatus.noent);
    expect((await mnt(`${exportPath}/${dir}/file`)).u32()).toBe(MountStatus.notdir);
  });

  it('lists the one export, and who mounted it', async () => {
    const out = new XdrWriter();
    await server.mount.call(context(100005, MountProc.export), new XdrReader(Buffer.alloc(0)), out);
    const r = new XdrReader(out.toBuffer());
    expect(r.bool()).toBe(true);
    expect(r.string(1024)).toBe(exportPath);
    expect(r.bool()).toBe(true);
    expect(r.string(255)).toBe('127.0.0.1');
    expect([r.bool(), r.bool()]).toEqual([false, false]);

    await mnt(exportPath);
    const dump = new XdrWriter();
    await server.mount.call(context(100005, MountProc.dump), new XdrReader(Buffer.alloc(0)), dump);
    const d = new XdrReader(dump.toBuffer());
    expect(d.bool()).toBe(true);
    expect([d.string(255), d.string(1024)]).toEqual(['test', exportPath]);
  });
});

describe('NFSv3 procedures against RemoteFs', () => {
  it('GETATTR: the root is directory 1; malformed handles are BADHANDLE, foreign ones STALE', async () => {
    const { status, attr } = await getattr(root);
    expect(status).toBe(Nfs3Status.ok);
    expect(attr).toMatchObject({ type: 2, fileid: 1n, fsid: server.nfs.fsid });
    expect((await getattr(Buffer.alloc(5))).status).toBe(Nfs3Status.badhandle);
    const foreign = Buffer.from(root);
    foreign[0]! ^= 0xff;
    expect((await getattr(foreign)).status).toBe(Nfs3Status.stale);
    const unknown = Buffer.from(root);
    unknown.writeBigUInt64BE(999_999n, 8);
    expect((await getattr(unknown)).status).toBe(Nfs3Status.stale);
  });

  it('an argument too long for its type is GARBAGE_ARGS (an XdrError), not a filesystem error', async () => {
    await expect(nfs(Nfs3Proc.getattr, args().opaque(Buffer.alloc(65)))).rejects.toBeInstanceOf(XdrError);
    await expect(nfs(Nfs3Proc.write, fh(args(), root).u64(0).u32(1).u32(7).opaque(Buffer.alloc(1)))).rejects.toThrow(/stable_how/);
  });

  it('LOOKUP: files, missing names, "." and ".." (which stops at the export root)', async () => {
    await writeFile(remote('a.txt'), 'hello');
    const found = await lookup(dirFh, 'a.txt');
    expect(found.status).toBe(Nfs3Status.ok);
    expect(found.attr).toMatchObject({ type: 1, size: 5n, mode: 0o644 });
    expect(found.dirAttr?.type).toBe(2);
    const again = await lookup(dirFh, 'a.txt');
    expect(again.handle!.equals(found.handle!)).toBe(true);
    const missing = await lookup(dirFh, 'missing');
    expect(missing.status).toBe(Nfs3Status.noent);
    expect(missing.dirAttr?.type).toBe(2);
    expect((await lookup(dirFh, '.')).handle!.equals(dirFh)).toBe(true);
    expect((await lookup(dirFh, '..')).handle!.equals(root)).toBe(true);
    expect((await lookup(root, '..')).handle!.equals(root)).toBe(true);
    expect((await lookup(found.handle!, 'x')).status).not.toBe(Nfs3Status.ok);
  });

  it('CREATE, WRITE UNSTABLE, COMMIT and READ: the bytes reach the remote and come back', async () => {
    const made = await create(dirFh, 'data.bin', CreateMode.unchecked, { mode: 0o640 });
    expect(made.status).toBe(Nfs3Status.ok);
    expect(made.attr).toMatchObject({ type: 1, size: 0n, mode: 0o640 });
    expect(made.dirWcc.before).toBeDefined();
    // The directory changed: its mtime as the client sees it moved on.
    const beforeMs = made.dirWcc.before!.mtime[0] * 1000 + made.dirWcc.before!.mtime[1] / 1e6;
    const afterMs = made.dirWcc.after!.mtime[0] * 1000 + made.dirWcc.after!.mtime[1] / 1e6;
    expect(afterMs).toBeGreaterThan(beforeMs);

    const data = randomBytes(3 * 1024 * 1024 + 17);
    const chunk = 1024 * 1024;
    let verf: Buffer | undefined;
    for (let at = 0; at < data.length; at += chunk) {
      const written = await write(made.handle!, at, data.subarray(at, at + chunk));
      expect(written).toMatchObject({ status: Nfs3Status.ok, count: Math.min(chunk, data.length - at), committed: StableHow.unstable });
      verf ??= written.verf;
      expect(written.verf!.equals(verf!)).toBe(true);
    }
    const committed = await commit(made.handle!);
    expect(committed.status).toBe(Nfs3Status.ok);
    expect(committed.verf!.equals(verf!)).toBe(true);
    expect((await readFile(remote('data.bin'))).equals(data)).toBe(true);
    expect((await stat(remote('data.bin'))).mode & 0o777).toBe(0o640);

    const head = await read(made.handle!, 0, 1000);
    expect(head).toMatchObject({ status: Nfs3Status.ok, eof: false });
    expect(head.data!.equals(data.subarray(0, 1000))).toBe(true);
    const tail = await read(made.handle!, data.length - 10, 100);
    expect(tail).toMatchObject({ eof: true });
    expect(tail.data!.equals(data.subarray(data.length - 10))).toBe(true);
    expect((await read(made.handle!, data.length + 5, 100)).data!.length).toBe(0);
  });

  it('WRITE FILE_SYNC is on the remote when the reply comes', async () => {
    const made = await create(dirFh, 'sync.txt');
    const written = await write(made.handle!, 0, Buffer.from('durable'), StableHow.fileSync);
    expect(written).toMatchObject({ status: Nfs3Status.ok, committed: StableHow.fileSync });
    expect(written.wcc.after?.size).toBe(7n);
    expect(await readFile(remote('sync.txt'), 'utf8')).toBe('durable');
  });

  it('READ sees a file written on the remote side', async () => {
    await writeFile(remote('remote.txt'), 'written remotely');
    const { handle } = await lookup(dirFh, 'remote.txt');
    const got = await read(handle!, 0, 4096);
    expect(got).toMatchObject({ status: Nfs3Status.ok, eof: true });
    expect(got.data!.toString()).toBe('written remotely');
    expect((await read(dirFh, 0, 10)).status).toBe(Nfs3Status.isdir);
  });

  it('CREATE GUARDED refuses an existing name; UNCHECKED with size 0 truncates it', async () => {
    await writeFile(remote('exists'), 'old content');
    expect((await create(dirFh, 'exists', CreateMode.guarded)).status).toBe(Nfs3Status.exist);
    const again = await create(dirFh, 'exists', CreateMode.unchecked, { mode: 0o600, size: 0n });
    expect(again).toMatchObject({ status: Nfs3Status.ok, attr: { size: 0n, mode: 0o644 } });
    expect(await readFile(remote('exists'), 'utf8')).toBe('');
  });

  it('CREATE EXCLUSIVE is idempotent for its verifier and EXIST for another', async () => {
    const verf = Buffer.from('0102030405060708', 'hex');
    const first = await create(dirFh, 'excl', CreateMode.exclusive, { verf });
    expect(first.status).toBe(Nfs3Status.ok);
    const retransmitted = await create(dirFh, 'excl', CreateMode.exclusive, { verf });
    expect(retransmitted.status).toBe(Nfs3Status.ok);
    expect(retransmitted.handle!.equals(first.handle!)).toBe(true);
    expect((await create(dirFh, 'excl', CreateMode.exclusive, { verf: Buffer.alloc(8, 9) })).status).toBe(Nfs3Status.exist);
  });

  it('SETATTR: size, mode and mtime, with the ctime guard', async () => {
    await writeFile(remote('s.txt'), '0123456789');
    const { handle, attr } = await lookup(dirFh, 's.txt');
    const set = async (value: Parameters<typeof sattr>[1], guard?: [number, number]) => {
      const w = sattr(fh(args(), handle!), value);
      w.bool(guard !== undefined);
      if (guard) w.u32(guard[0]).u32(guard[1]);
      const r = await nfs(Nfs3Proc.setattr, w);
      return { status: r.u32(), wcc: readWcc(r) };
    };
    const wrongGuard: [number, number] = [attr!.ctime[0] + 1, 0];
    expect((await set({ size: 4n }, wrongGuard)).status).toBe(Nfs3Status.notSync);
    expect((await stat(remote('s.txt'))).size).toBe(10);
    const resized = await set({ size: 4n, mode: 0o600 }, attr!.ctime);
    expect(resized.status).toBe(Nfs3Status.ok);
    expect(resized.wcc.before?.size).toBe(10n);
    expect(resized.wcc.after).toMatchObject({ size: 4n, mode: 0o600 });
    expect(await readFile(remote('s.txt'), 'utf8')).toBe('0123');
    const past = await set({ mtime: 86_400_000 });
    expect(past.wcc.after?.mtime).toEqual([86_400, 0]);
    expect((await stat(remote('s.txt'))).mtimeMs).toBe(86_400_000);
    // Giving a file to the owner it already shows is a no-op, not a refused chown.
    expect((await set({ uid: resized.wcc.after!.uid })).status).toBe(Nfs3Status.ok);
  });

  it('MKDIR, SYMLINK, READLINK, LINK and MKNOD', async () => {
    const made = await nfs(Nfs3Proc.mkdir, sattr(dirop(args(), dirFh, 'd'), { mode: 0o750 }));
    expect(made.u32()).toBe(Nfs3Status.ok);
    expect(made.bool()).toBe(true);
    made.opaque(64);
    expect(readPostOpAttr(made)).toMatchObject({ type: 2, mode: 0o750 });
    expect((await stat(remote('d'))).isDirectory()).toBe(true);
    expect((await nfs(Nfs3Proc.mkdir, sattr(dirop(args(), dirFh, 'd')))).u32()).toBe(Nfs3Status.exist);

    const sym = await nfs(Nfs3Proc.symlink, sattr(dirop(args(), dirFh, 'ln')).string('d/target'));
    expect(sym.u32()).toBe(Nfs3Status.ok);
    sym.bool();
    const symFh = Buffer.from(sym.opaque(64));
    expect(await readlink(remote('ln'))).toBe('d/target');
    const rl = await nfs(Nfs3Proc.readlink, fh(args(), symFh));
    expect(rl.u32()).toBe(Nfs3Status.ok);
    readPostOpAttr(rl);
    expect(rl.string(4096)).toBe('d/target');
    expect((await nfs(Nfs3Proc.readlink, fh(args(), dirFh))).u32()).toBe(Nfs3Status.inval);

    await writeFile(remote('orig'), 'shared');
    const orig = await lookup(dirFh, 'orig');
    const linked = await nfs(Nfs3Proc.link, dirop(fh(args(), orig.handle!), dirFh, 'hard'));
    expect(linked.u32()).toBe(Nfs3Status.ok);
    expect((await lstat(remote('hard'))).ino).toBe((await lstat(remote('orig'))).ino);

    const node = await nfs(Nfs3Proc.mknod, dirop(args(), dirFh, 'fifo').u32(7).u32(0));
    expect(node.u32()).toBe(Nfs3Status.notsupp);
    expect(readWcc(node).after?.type).toBe(2);
  });

  it('REMOVE and RMDIR: the removed handle goes stale, a non-empty directory stays', async () => {
    await writeFile(remote('gone'), 'x');
    const gone = await lookup(dirFh, 'gone');
    const r = await nfs(Nfs3Proc.remove, dirop(args(), dirFh, 'gone'));
    expect(r.u32()).toBe(Nfs3Status.ok);
    expect(readWcc(r).after).toBeDefined();
    await expect(stat(remote('gone'))).rejects.toThrow(/ENOENT/);
    expect((await getattr(gone.handle!)).status).toBe(Nfs3Status.stale);
    expect((await nfs(Nfs3Proc.remove, dirop(args(), dirFh, 'gone'))).u32()).toBe(Nfs3Status.noent);

    await mkdir(remote('full'));
    await writeFile(remote('full', 'f'), 'x');
    expect((await nfs(Nfs3Proc.rmdir, dirop(args(), dirFh, 'full'))).u32()).toBe(Nfs3Status.notempty);
    await mkdir(remote('empty'));
    expect((await nfs(Nfs3Proc.rmdir, dirop(args(), dirFh, 'empty'))).u32()).toBe(Nfs3Status.ok);
  });

  it('RENAME moves a file (its handle follows) and replaces the target (whose handle goes stale)', async () => {
    await writeFile(remote('from'), 'FROM');
    await writeFile(remote('to'), 'TO');
    const from = await lookup(dirFh, 'from');
    const to = await lookup(dirFh, 'to');
    await mkdir(remote('other'));
    const other = await lookup(dirFh, 'other');
    const r = await nfs(Nfs3Proc.rename, dirop(dirop(args(), dirFh, 'from'), dirFh, 'to'));
    expect(r.u32()).toBe(Nfs3Status.ok);
    expect(readWcc(r).after).toBeDefined();
    expect(readWcc(r).after).toBeDefined();
    expect(await readFile(remote('to'), 'utf8')).toBe('FROM');
    expect((await getattr(from.handle!)).attr?.size).toBe(4n);
    expect((await getattr(to.handle!)).status).toBe(Nfs3Status.stale);
    const moved = await nfs(Nfs3Proc.rename, dirop(dirop(args(), dirFh, 'to'), other.handle!, 'moved'));
    expect(moved.u32()).toBe(Nfs3Status.ok);
    expect(await readFile(remote('other', 'moved'), 'utf8')).toBe('FROM');
    expect((await nfs(Nfs3Proc.rename, dirop(dirop(args(), dirFh, 'nothing'), dirFh, 'x'))).u32()).toBe(Nfs3Status.noent);
  });

  it('READDIR pages through a large directory with cookies; READDIRPLUS hands out working handles', async () => {
    const names = Array.from({ length: 150 }, (_, i) => `file-${String(i).padStart(3, '0')}-${'x'.repeat(i % 40)}`);
    for (const name of names) await writeFile(remote(name), name);
    const listed = await readdir(dirFh, false, 1024);
    expect(listed.status).toBe(Nfs3Status.ok);
    expect(listed.calls).toBeGreaterThan(3);
    expect(listed.names).toEqual(['.', '..', ...names.sort()]);

    const plus = await readdir(dirFh, true, 2048);
    expect(plus.names).toEqual(listed.names);
    const handle = plus.handles.get(names[7]!)!;
    const got = await read(handle, 0, 100);
    expect(got.data!.toString()).toBe(names[7]);
    expect(plus.handles.get('.')!.equals(dirFh)).toBe(true);

    const tiny = await nfs(Nfs3Proc.readdir, fh(args(), dirFh).u64(0).u64(0).u32(100));
    expect(tiny.u32()).toBe(Nfs3Status.toosmall);
    expect((await nfs(Nfs3Proc.readdir, fh(args(), handle).u64(0).u64(0).u32(4096))).u32()).toBe(Nfs3Status.notdir);
  });

  it('READDIR continues from a cookie whose snapshot is gone, at the same position', async () => {
    for (const name of ['a', 'b', 'c', 'd']) await writeFile(remote(name), name);
    const r = await nfs(Nfs3Proc.readdir, fh(args(), dirFh).u64(3).u64(123456789n).u32(4096));
    expect(r.u32()).toBe(Nfs3Status.ok);
    readPostOpAttr(r);
    r.u64();
    const rest: string[] = [];
    while (r.bool()) {
      r.u64();
      rest.push(r.string(255));
      r.u64();
    }
    expect(rest).toEqual(['b', 'c', 'd']);
  });

  it('ACCESS follows the mode bits for the caller', async () => {
    await writeFile(remote('ro.txt'), 'x');
    const { chmod } = await import('node:fs/promises');
    await chmod(remote('ro.txt'), 0o444);
    const { handle } = await lookup(dirFh, 'ro.txt');
    const ask = async (target: Buffer, bits: number) => {
      const r = await nfs(Nfs3Proc.access, fh(args(), target).u32(bits));
      expect(r.u32()).toBe(Nfs3Status.ok);
      readPostOpAttr(r);
      return r.u32();
    };
    const all = Access3.read | Access3.lookup | Access3.modify | Access3.extend | Access3.delete | Access3.execute;
    if (uid !== 0) {
      expect(await ask(handle!, all)).toBe(Access3.read);
    } else {
      // Root may read and write anything, and execute what has an x bit.
      expect(await ask(handle!, all)).toBe(Access3.read | Access3.modify | Access3.extend);
    }
    expect(await ask(dirFh, all)).toBe(Access3.read | Access3.lookup | Access3.modify | Access3.extend | Access3.delete);
  });

  it('refuses callers other than the mounting user and root with NFS3ERR_ACCES', async () => {
    const r = await nfs(Nfs3Proc.getattr, fh(args(), root), 4242);
    expect(r.u32()).toBe(Nfs3Status.acces);
    const l = await nfs(Nfs3Proc.lookup, dirop(args(), root, dir), 4242);
    expect(l.u32()).toBe(Nfs3Status.acces);
  });

  it('FSSTAT, FSINFO (1 MiB transfers) and PATHCONF', async () => {
    const st = await nfs(Nfs3Proc.fsstat, fh(args(), root));
    expect(st.u32()).toBe(Nfs3Status.ok);
    readPostOpAttr(st);
    const [tbytes, fbytes, abytes] = [st.u64(), st.u64(), st.u64()];
    expect(tbytes).toBeGreaterThan(0n);
    expect(fbytes).toBeLessThanOrEqual(tbytes);
    expect(abytes).toBeLessThanOrEqual(fbytes);

    const info = await nfs(Nfs3Proc.fsinfo, fh(args(), root));
    expect(info.u32()).toBe(Nfs3Status.ok);
    readPostOpAttr(info);
    const [rtmax, rtpref, rtmult, wtmax] = [info.u32(), info.u32(), info.u32(), info.u32()];
    expect([rtmax, rtpref, rtmult, wtmax]).toEqual([1048576, 1048576, 4096, 1048576]);

    const pc = await nfs(Nfs3Proc.pathconf, fh(args(), root));
    expect(pc.u32()).toBe(Nfs3Status.ok);
    readPostOpAttr(pc);
    expect([pc.u32(), pc.u32(), pc.bool(), pc.bool(), pc.bool(), pc.bool()]).toEqual([32000, 255, true, true, false, true]);
  });

  it('a handle of a file deleted behind its back is STALE', async () => {
    await writeFile(remote('vanish'), 'x');
    const { handle } = await lookup(dirFh, 'vanish');
    const { unlink } = await import('node:fs/promises');
    await unlink(remote('vanish'));
    // RemoteFs may still trust its cached attributes; reading the file asks the remote.
    expect((await read(handle!, 0, 10)).status).toBe(Nfs3Status.stale);
  });

  it('closes idle file handles, flushing what they buffered', async () => {
    const made = await create(dirFh, 'idle.txt');
    await write(made.handle!, 0, Buffer.from('flushed when idle'));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    expect(await readFile(remote('idle.txt'), 'utf8')).toBe('flushed when idle');
    expect(opened.fs.openHandles).toBe(0);
  });

  it('a hard link made on the remote is just another file to the client', async () => {
    await writeFile(remote('l1'), 'same');
    await link(remote('l1'), remote('l2'));
    expect((await read((await lookup(dirFh, 'l2')).handle!, 0, 10)).data!.toString()).toBe('same');
  });
});
