import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT_INO, type RemoteFs } from '../../src/vfs/remote-fs.js';
import { type NodeSftpServer, openNodeSftpRemoteFs, startNodeSftpServer } from '../fixtures/node-sftp-server.js';

// The Windows CI job's smoke test serves its remote with this fixture; here
// it is checked against RemoteFs on the OS where everything else is tested.

const { O_RDONLY, O_WRONLY, O_CREAT, O_TRUNC } = fsConstants;

let root: string;
let server: NodeSftpServer;
let opened: { fs: RemoteFs; close(): Promise<void> };

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'tmount-node-sftp-'));
  server = await startNodeSftpServer(root);
  opened = await openNodeSftpRemoteFs(server);
});
afterAll(async () => {
  await opened?.close();
  await server?.stop();
  await rm(root, { recursive: true, force: true });
});

describe('the in-process SFTP server fixture', () => {
  it('lists, reads, writes, renames and deletes through RemoteFs', async () => {
    const { fs } = opened;
    const content = randomBytes(100_000);
    await mkdir(join(root, 'sub'));
    await writeFile(join(root, 'sub', 'data.bin'), content);
    const sub = await fs.lookup(ROOT_INO, 'sub');
    expect((await fs.readdir(sub.ino)).map((entry) => [entry.name, entry.attr.size])).toEqual([['data.bin', content.length]]);

    const file = await fs.lookup(sub.ino, 'data.bin');
    const reader = await fs.open(file.ino, O_RDONLY);
    expect((await fs.read(reader.fh, 0, content.length + 10)).equals(content)).toBe(true);
    await fs.release(reader.fh);

    const written = randomBytes(70_000);
    const created = await fs.create(sub.ino, 'new.bin', 0o644, O_WRONLY | O_CREAT | O_TRUNC);
    await fs.write(created.fh, 0, written);
    await fs.release(created.fh);
    expect((await readFile(join(root, 'sub', 'new.bin'))).equals(written)).toBe(true);

    await fs.rename(sub.ino, 'new.bin', ROOT_INO, 'moved.bin');
    expect((await stat(join(root, 'moved.bin'))).size).toBe(written.length);
    await fs.unlink(ROOT_INO, 'moved.bin');
    await expect(stat(join(root, 'moved.bin'))).rejects.toThrow(/ENOENT/);
    await expect(fs.lookup(ROOT_INO, 'missing')).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
