import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, mkdtemp, readFile, readlink, rm, stat, symlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileProviderServer, type FileProviderServerOptions } from '../../src/backends/fileprovider/server.js';
import type { WireItem } from '../../src/backends/fileprovider/protocol.js';
import { FpClient } from '../fixtures/fileprovider-client.js';
import { openRemoteFs, type OpenedFs } from '../fixtures/remote-fs.js';
import { useSshServer } from '../fixtures/ssh-server.js';

interface Page {
  items: WireItem[];
  nextPage: string | null;
}
interface Changes {
  updated: WireItem[];
  deleted: string[];
  anchor: string;
  more: boolean;
}

const ssh = useSshServer();
let counter = 0;
let remoteDir: string;
let work: string;
let opened: OpenedFs | undefined;
let server: FileProviderServer | undefined;
let client: FpClient;

/** The remote side, seen directly on disk (the fixture's remote is this machine). */
const remote = (...parts: string[]) => join(remoteDir, ...parts);
const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * A server over a fresh remote folder. The metadata caches are off so that a
 * change made on the remote is seen by the next listing, as it is once the
 * cache TTL has passed in a real mount.
 */
async function start(options: Partial<FileProviderServerOptions> = {}): Promise<void> {
  await stop();
  opened = await openRemoteFs(ssh.server, { root: remoteDir, attrTtlMs: 0, dirTtlMs: 0, negativeTtlMs: 0 });
  server = new FileProviderServer(opened.fs, {
    socketPath: join(work, 'fp.sock'),
    stagingDir: join(work, 'staging'),
    domain: 'tmount-0123456789ab',
    displayName: 'tmount — test@localhost:/remote',
    version: '0.0.0-test',
    rootName: 'remote',
    readonly: false,
    rescanAfterMs: 0,
    watchIntervalMs: 0,
    ...options,
  });
  await server.listen();
  client = await FpClient.connect(join(work, 'fp.sock'));
}

async function stop(): Promise<void> {
  client?.close();
  await server?.close();
  await opened?.close();
  server = undefined;
  opened = undefined;
}

beforeEach(async () => {
  remoteDir = join(ssh.server.remoteRoot, `fp${++counter}`);
  await mkdir(remoteDir);
  work = await mkdtemp(join(tmpdir(), 'tmount-fp-'));
});

afterEach(async () => {
  await stop();
  await rm(work, { recursive: true, force: true });
});

async function enumerateAll(container: string, limit: number): Promise<WireItem[][]> {
  const pages: WireItem[][] = [];
  let page: string | null = null;
  do {
    const result: Page = await client.call<Page>('enumerate', { container, page, limit });
    pages.push(result.items);
    page = result.nextPage;
  } while (page !== null && pages.length < 100);
  return pages;
}

const idOf = async (name: string, container = 'root'): Promise<string> => {
  const items = (await enumerateAll(container, 1000)).flat();
  const item = items.find((candidate) => candidate.name === name);
  if (!item) throw new Error(`${name} is not in ${container}: ${items.map((i) => i.name).join(', ')}`);
  return item.id;
};

async function stage(content: Buffer | string): Promise<string> {
  const path = join(client.hello.staging, `upload-${randomBytes(4).toString('hex')}`);
  await writeFile(path, content);
  return path;
}

describe('FileProvider protocol server against a real sshd', () => {
  it('greets with its protocol version, domain and staging folder, on a socket only the user can open', async () => {
    await start();
    expect(client.hello).toMatchObject({ type: 'hello', protocol: 1, domain: 'tmount-0123456789ab', readonly: false, staging: join(work, 'staging') });
    expect((await stat(join(work, 'fp.sock'))).mode & 0o777).toBe(0o600);
  });

  it('enumerates the root and a subfolder in pages, sorted by name, with complete items', async () => {
    for (const name of ['c.txt', 'a.txt', 'b.txt']) await writeFile(remote(name), name);
    await mkdir(remote('docs'));
    for (const name of ['3.md', '1.md', '2.md']) await writeFile(remote('docs', name), `doc ${name}`);
    await symlink('a.txt', remote('link'));
    await start();

    const pages = await enumerateAll('root', 2);
    expect(pages.map((page) => page.map((item) => item.name))).toEqual([['a.txt', 'b.txt'], ['c.txt', 'docs'], ['link']]);
    const items = pages.flat();
    const a = items.find((item) => item.name === 'a.txt')!;
    const onDisk = await stat(remote('a.txt'));
    expect(a).toMatchObject({ parent: 'root', kind: 'file', size: 5, mode: onDisk.mode & 0o7777, writable: true });
    expect(a.mtime).toBe(Math.floor(onDisk.mtimeMs / 1000) * 1000);
    expect(a.contentVersion).toBe(`5:${a.mtime}`);
    expect(items.find((item) => item.name === 'docs')).toMatchObject({ kind: 'folder', parent: 'root' });
    expect(items.find((item) => item.name === 'link')).toMatchObject({ kind: 'symlink', target: 'a.txt' });
    expect(new Set(items.map((item) => item.id)).size).toBe(items.length);

    const docs = items.find((item) => item.name === 'docs')!;
    const docPages = await enumerateAll(docs.id, 2);
    expect(docPages.map((page) => page.map((item) => item.name))).toEqual([['1.md', '2.md'], ['3.md']]);
    for (const item of docPages.flat()) expect(item.parent).toBe(docs.id);

    // An enumerator on a document follows just that document.
    expect((await client.call<Page>('enumerate', { container: a.id, page: null })).items.map((item) => item.id)).toEqual([a.id]);
    expect(await client.call<Page>('enumerate', { container: 'trash', page: null })).toEqual({ items: [], nextPage: null });

    // The working set is everything in the enumerated folders, with real parents.
    const workingSet = await enumerateAll('workingSet', 3);
    expect(workingSet.map((page) => page.length)).toEqual([3, 3, 2]);
    const inSet = workingSet.flat();
    expect(inSet.map((item) => item.id).sort()).toEqual([...items, ...docPages.flat()].map((item) => item.id).sort());
    expect(inSet.find((item) => item.name === '1.md')?.parent).toBe(docs.id);
  });

  it('answers item for an identifier, the root included, and notFound for an unknown one', async () => {
    await mkdir(remote('sub'));
    await writeFile(remote('sub', 'x.bin'), Buffer.alloc(1234, 7));
    await start();
    const sub = await idOf('sub');
    const x = await idOf('x.bin', sub);
    const { item } = await client.call<{ item: WireItem }>('item', { identifier: x });
    expect(item).toMatchObject({ id: x, parent: sub, name: 'x.bin', kind: 'file', size: 1234 });
    const root = await client.call<{ item: WireItem }>('item', { identifier: 'root' });
    expect(root.item).toMatchObject({ id: 'root', name: 'remote', kind: 'folder' });
    expect((await client.refusal('item', { identifier: 'p:no/such/file' })).code).toBe('notFound');
    expect((await client.refusal('item', { identifier: 'garbage' })).code).toBe('notFound');
  });

  it('fetches contents into a staged file with identical bytes', async () => {
    const content = randomBytes(3 * 1024 * 1024 + 17);
    await writeFile(remote('big.bin'), content);
    await writeFile(remote('empty'), '');
    await start();
    const result = await client.call<{ item: WireItem; path: string }>('fetch', { identifier: await idOf('big.bin') });
    expect(result.path.startsWith(client.hello.staging)).toBe(true);
    const fetched = await readFile(result.path);
    expect(fetched.length).toBe(content.length);
    expect(sha256(fetched)).toBe(sha256(content));
    expect(result.item).toMatchObject({ name: 'big.bin', size: content.length });
    const empty = await client.call<{ path: string }>('fetch', { identifier: await idOf('empty') });
    expect((await readFile(empty.path)).length).toBe(0);
    await mkdir(remote('dir'));
    expect((await client.refusal('fetch', { identifier: await idOf('dir') })).code).toBe('isDirectory');
  });

  it('creates files, folders and symlinks on the remote, and refuses a name that is taken', async () => {
    await start();
    const content = randomBytes(1024 * 1024 + 5);
    const staged = await stage(content);
    const file = await client.call<{ item: WireItem }>('create', { parent: 'root', filename: 'new.bin', kind: 'file', contents: staged, mtime: 1_600_000_000_000 });
    expect(file.item).toMatchObject({ name: 'new.bin', parent: 'root', kind: 'file', size: content.length, mtime: 1_600_000_000_000 });
    expect(sha256(await readFile(remote('new.bin')))).toBe(sha256(content));
    expect((await stat(remote('new.bin'))).mtimeMs).toBe(1_600_000_000_000);
    expect(existsSync(staged)).toBe(false);

    const folder = await client.call<{ item: WireItem }>('create', { parent: 'root', filename: 'folder', kind: 'folder' });
    expect((await stat(remote('folder'))).isDirectory()).toBe(true);
    const inside = await client.call<{ item: WireItem }>('create', { parent: folder.item.id, filename: 'empty.txt', kind: 'file' });
    expect(inside.item).toMatchObject({ parent: folder.item.id, size: 0 });
    expect((await stat(remote('folder', 'empty.txt'))).size).toBe(0);
    await client.call('create', { parent: 'root', filename: 'ln', kind: 'symlink', target: 'new.bin' });
    expect(await readlink(remote('ln'))).toBe('new.bin');

    const taken = await client.refusal('create', { parent: 'root', filename: 'new.bin', kind: 'file', contents: await stage('other') });
    expect(taken.code).toBe('exists');
    expect(taken.item).toMatchObject({ id: file.item.id, name: 'new.bin' });
    expect(sha256(await readFile(remote('new.bin')))).toBe(sha256(content));
    // The system may replay a creation after a crash: with mayExist an existing folder is the answer.
    expect((await client.call<{ item: WireItem }>('create', { parent: 'root', filename: 'folder', kind: 'folder', mayExist: true })).item.id).toBe(folder.item.id);

    expect((await client.refusal('create', { parent: 'root', filename: 'x', kind: 'file', contents: '/etc/passwd' })).code).toBe('badRequest');
    expect((await client.refusal('create', { parent: 'root', filename: '../escape', kind: 'file' })).code).toBe('badRequest');
    expect((await client.refusal('create', { parent: 'p:missing', filename: 'x', kind: 'file' })).code).toBe('notFound');
  });

  it('modifies contents, renames and moves items, keeping their identifiers', async () => {
    await writeFile(remote('doc.txt'), 'first version');
    await mkdir(remote('dir'));
    await writeFile(remote('dir', 'child.txt'), 'child');
    await mkdir(remote('target'));
    await start();
    const doc = await idOf('doc.txt');
    const dir = await idOf('dir');
    const child = await idOf('child.txt', dir);
    const target = await idOf('target');

    const changed = await client.call<{ item: WireItem }>('modify', { identifier: doc, contents: await stage('second, longer version'), mtime: 1_650_000_000_000 });
    expect(changed.item).toMatchObject({ id: doc, size: 22, mtime: 1_650_000_000_000 });
    expect(await readFile(remote('doc.txt'), 'utf8')).toBe('second, longer version');

    const renamed = await client.call<{ item: WireItem }>('modify', { identifier: doc, filename: 'renamed.txt' });
    expect(renamed.item).toMatchObject({ id: doc, name: 'renamed.txt', parent: 'root' });
    expect(existsSync(remote('doc.txt'))).toBe(false);
    expect(await readFile(remote('renamed.txt'), 'utf8')).toBe('second, longer version');

    const moved = await client.call<{ item: WireItem }>('modify', { identifier: dir, parent: target, filename: 'moved' });
    expect(moved.item).toMatchObject({ id: dir, name: 'moved', parent: target });
    expect(await readFile(remote('target', 'moved', 'child.txt'), 'utf8')).toBe('child');
    // A child of a moved folder keeps its identifier too.
    expect((await client.call<{ item: WireItem }>('item', { identifier: child })).item).toMatchObject({ id: child, parent: dir, name: 'child.txt' });
    expect((await client.call<{ item: WireItem }>('item', { identifier: dir })).item.name).toBe('moved');

    await writeFile(remote('occupied.txt'), 'x');
    const collision = await client.refusal('modify', { identifier: doc, filename: 'occupied.txt' });
    expect(collision.code).toBe('exists');
    expect(await readFile(remote('occupied.txt'), 'utf8')).toBe('x');
    expect((await client.refusal('modify', { identifier: 'root', filename: 'x' })).code).toBe('denied');
    expect((await client.refusal('modify', { identifier: doc, parent: 'trash' })).code).toBe('notSupported');
  });

  it('deletes files and folders, refusing a non-empty folder unless recursive', async () => {
    await writeFile(remote('gone.txt'), 'x');
    await mkdir(remote('full'));
    await mkdir(remote('full', 'deeper'));
    await writeFile(remote('full', 'deeper', 'f'), 'x');
    await start();
    await client.call('delete', { identifier: await idOf('gone.txt') });
    expect(existsSync(remote('gone.txt'))).toBe(false);
    const full = await idOf('full');
    expect((await client.refusal('delete', { identifier: full })).code).toBe('notEmpty');
    expect(existsSync(remote('full', 'deeper', 'f'))).toBe(true);
    await client.call('delete', { identifier: full, recursive: true });
    expect(existsSync(remote('full'))).toBe(false);
    // Deleting what is already gone succeeds, as FileProvider expects.
    expect(await client.call('delete', { identifier: full })).toEqual({});
    expect(await client.call('delete', { identifier: 'p:never/existed' })).toEqual({});
    expect((await client.refusal('delete', { identifier: 'root' })).code).toBe('denied');
  });

  it('reports exactly the remote-side change since an anchor, for the folder and the working set', async () => {
    await writeFile(remote('keep.txt'), 'keep');
    await writeFile(remote('edit.txt'), 'before');
    await writeFile(remote('drop.txt'), 'drop');
    await mkdir(remote('sub'));
    await writeFile(remote('sub', 'inner.txt'), 'inner');
    await start();
    const sub = await idOf('sub');
    await idOf('inner.txt', sub);
    let { anchor } = await client.call<{ anchor: string }>('anchor');

    const none = await client.call<Changes>('changes', { container: 'workingSet', anchor });
    expect(none).toEqual({ updated: [], deleted: [], anchor, more: false });

    await writeFile(remote('added.txt'), 'new on the server');
    const added = await client.call<Changes>('changes', { container: 'workingSet', anchor });
    expect(added.deleted).toEqual([]);
    expect(added.updated.map((item) => [item.name, item.parent, item.size])).toEqual([['added.txt', 'root', 17]]);
    expect(added.more).toBe(false);
    expect(added.anchor).not.toBe(anchor);
    anchor = added.anchor;

    const dropId = await client.call<{ item: WireItem }>('item', { identifier: await idOf('drop.txt') });
    ({ anchor } = await client.call<{ anchor: string }>('anchor'));
    await rm(remote('drop.txt'));
    const dropped = await client.call<Changes>('changes', { container: 'workingSet', anchor });
    expect(dropped.updated).toEqual([]);
    expect(dropped.deleted).toEqual([dropId.item.id]);
    anchor = dropped.anchor;

    const editId = await idOf('edit.txt');
    await writeFile(remote('edit.txt'), 'after, and longer');
    await utimes(remote('edit.txt'), new Date(), new Date(Date.now() + 5_000));
    const edited = await client.call<Changes>('changes', { container: 'root', anchor });
    expect(edited.deleted).toEqual([]);
    expect(edited.updated.map((item) => [item.id, item.size])).toEqual([[editId, 17]]);

    // A change in a subfolder concerns that folder and the working set, not the root.
    await writeFile(remote('sub', 'inner.txt'), 'inner, changed');
    const rootView = await client.call<Changes>('changes', { container: 'root', anchor: edited.anchor });
    expect(rootView.updated).toEqual([]);
    const subView = await client.call<Changes>('changes', { container: sub, anchor: edited.anchor });
    expect(subView.updated.map((item) => item.name)).toEqual(['inner.txt']);
    expect(rootView.anchor).toBe(subView.anchor);
  });

  it('journals changes made through the extension and pages changes with more', async () => {
    await start();
    await enumerateAll('root', 100);
    const { anchor } = await client.call<{ anchor: string }>('anchor');
    for (const name of ['one', 'two', 'three']) await client.call('create', { parent: 'root', filename: name, kind: 'folder' });
    const names: string[] = [];
    let from = anchor;
    for (let round = 0; round < 3; round++) {
      const page = await client.call<Changes>('changes', { container: 'workingSet', anchor: from, limit: 1 });
      names.push(...page.updated.map((item) => item.name));
      expect(page.more).toBe(round < 2);
      from = page.anchor;
    }
    expect(names).toEqual(['one', 'two', 'three']);
    // Nothing new on the remote: the listing agrees with what was journaled.
    expect(await client.call<Changes>('changes', { container: 'workingSet', anchor: from })).toMatchObject({ updated: [], deleted: [], more: false });
    const { item } = await client.call<{ item: WireItem }>('item', { identifier: await idOf('two') });
    await client.call('delete', { identifier: item.id });
    const afterDelete = await client.call<Changes>('changes', { container: 'workingSet', anchor: from });
    expect(afterDelete).toMatchObject({ updated: [], deleted: [item.id] });
  });

  it('answers anchorExpired for an anchor older than the journal, of another run, or not an anchor', async () => {
    await start({ journalCapacity: 2 });
    await enumerateAll('root', 100);
    const { anchor } = await client.call<{ anchor: string }>('anchor');
    for (const name of ['a', 'b', 'c']) await client.call('create', { parent: 'root', filename: name, kind: 'folder' });
    const old = await client.refusal('changes', { container: 'workingSet', anchor });
    expect(old.code).toBe('anchorExpired');
    expect(old.message).toMatch(/keeps only positions after/);
    const current = await client.call<{ anchor: string }>('anchor');
    expect((await client.call<Changes>('changes', { container: 'workingSet', anchor: current.anchor })).updated).toEqual([]);

    const epoch = current.anchor.split('.')[0];
    expect((await client.refusal('changes', { container: 'workingSet', anchor: `${epoch === 'aaaaaaaaaaaa' ? 'bbbbbbbbbbbb' : 'aaaaaaaaaaaa'}.0` })).code).toBe('anchorExpired');
    expect((await client.refusal('changes', { container: 'workingSet', anchor: `${epoch}.999` })).code).toBe('anchorExpired');
    expect((await client.refusal('changes', { container: 'workingSet', anchor: 'not an anchor' })).code).toBe('anchorExpired');

    // A restarted server has a new journal: the anchors of the old one are expired.
    await start();
    expect((await client.refusal('changes', { container: 'workingSet', anchor: current.anchor })).code).toBe('anchorExpired');
  });

  it('answers malformed and wrong-version messages with errors and keeps serving', async () => {
    await start();
    client.sendRaw('this is not json\n');
    expect(await client.nextOrphan()).toMatchObject({ id: null, ok: false, error: { code: 'badRequest' } });
    client.sendRaw('{"v":1,"op":"anchor"}\n');
    expect(await client.nextOrphan()).toMatchObject({ id: null, ok: false, error: { code: 'badRequest', message: expect.stringMatching(/integer id/) } });
    client.sendRaw('[1,2,3]\n');
    expect(await client.nextOrphan()).toMatchObject({ id: null, ok: false, error: { code: 'badRequest' } });
    client.sendRaw(`{"v":1,"id":1,"op":"item","identifier":"${'x'.repeat(1100 * 1024)}"}\n`);
    expect(await client.nextOrphan()).toMatchObject({ id: null, ok: false, error: { code: 'badRequest', message: expect.stringMatching(/longer than/) } });

    const wrongVersion = await client.requestWithId(41, { v: 2, id: 41, op: 'anchor' });
    expect(wrongVersion).toMatchObject({ id: 41, ok: false, error: { code: 'unsupportedVersion', protocol: 1 } });
    const noVersion = await client.requestWithId(42, { id: 42, op: 'anchor' });
    expect(noVersion).toMatchObject({ id: 42, ok: false, error: { code: 'unsupportedVersion' } });
    expect((await client.refusal('frobnicate')).code).toBe('unknownOp');
    expect(await client.refusal('item')).toMatchObject({ code: 'badRequest', message: expect.stringMatching(/identifier/) });
    expect((await client.refusal('enumerate', { container: 'root', limit: 'many' })).code).toBe('badRequest');

    // The same connection, and new ones, still work.
    expect((await client.call<{ anchor: string }>('anchor')).anchor).toMatch(/^[0-9a-f]+\.\d+$/);
    const second = await FpClient.connect(join(work, 'fp.sock'));
    try {
      expect((await second.call<{ item: WireItem }>('item', { identifier: 'root' })).item.kind).toBe('folder');
    } finally {
      second.close();
    }
  });

  it('notices remote changes on the watch interval and says so', async () => {
    let told = 0;
    await start({ watchIntervalMs: 50, onRemoteChanges: () => told++ });
    await enumerateAll('root', 100);
    const { anchor } = await client.call<{ anchor: string }>('anchor');
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(told).toBe(0);
    await writeFile(remote('appeared.txt'), 'hello');
    const deadline = Date.now() + 5_000;
    while (told === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 25));
    expect(told).toBeGreaterThan(0);
    const changes = await client.call<Changes>('changes', { container: 'workingSet', anchor });
    expect(changes.updated.map((item) => item.name)).toEqual(['appeared.txt']);
  });

  it('refuses changes on a read-only mount and marks items not writable', async () => {
    await writeFile(remote('ro.txt'), 'x');
    await start({ readonly: true });
    const id = await idOf('ro.txt');
    expect((await client.call<{ item: WireItem }>('item', { identifier: id })).item.writable).toBe(false);
    expect((await client.refusal('delete', { identifier: id })).code).toBe('readOnly');
    expect((await client.refusal('modify', { identifier: id, filename: 'y' })).code).toBe('readOnly');
    expect((await client.refusal('create', { parent: 'root', filename: 'z', kind: 'folder' })).code).toBe('readOnly');
    expect((await lstat(remote('ro.txt'))).isFile()).toBe(true);
  });
});
