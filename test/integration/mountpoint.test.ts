import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ExitCode, UserError } from '../../src/errors.js';
import { prepareMountpoint } from '../../src/mountpoint.js';

let base: string;
beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), 'tmount-mp-'));
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

async function rejection(promise: Promise<unknown>): Promise<UserError> {
  const err = await promise.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(UserError);
  return err as UserError;
}

describe('prepareMountpoint', () => {
  it('accepts an existing empty directory and leaves it in place on undo', async () => {
    const dir = join(base, 'empty');
    await mkdir(dir);
    const prepared = await prepareMountpoint('empty-dir', dir, 'host');
    expect(prepared.path).toBe(dir);
    await prepared.undo();
    expect(existsSync(dir)).toBe(true);
  });

  it('refuses a missing explicit mountpoint and says how to create it', async () => {
    const err = await rejection(prepareMountpoint('empty-dir', join(base, 'missing'), 'host'));
    expect(err.exitCode).toBe(ExitCode.mountpoint);
    expect(err.message).toMatch(/does not exist; create it with: mkdir -p/);
  });

  it('refuses a file and a non-empty directory unless --nonempty', async () => {
    const file = join(base, 'file');
    await writeFile(file, 'x');
    expect((await rejection(prepareMountpoint('empty-dir', file, 'host'))).message).toMatch(/is not a directory/);
    const full = join(base, 'full');
    await mkdir(full);
    await writeFile(join(full, 'a'), 'x');
    expect((await rejection(prepareMountpoint('empty-dir', full, 'host'))).message).toMatch(/is not empty; .*--nonempty/);
    expect((await prepareMountpoint('empty-dir', full, 'host', { nonempty: true })).path).toBe(full);
  });

  it('creates a missing sync-root folder and removes it again on undo', async () => {
    const dir = join(base, 'sync', 'root');
    const prepared = await prepareMountpoint('sync-root', dir, 'host');
    expect(existsSync(dir)).toBe(true);
    await prepared.undo();
    expect(existsSync(join(base, 'sync'))).toBe(false);
  });

  it('refuses a mountpoint for a backend that has none', async () => {
    const err = await rejection(prepareMountpoint('none', '/tmp/x', 'host'));
    expect(err.exitCode).toBe(ExitCode.usage);
  });
});
