import { describe, expect, it } from 'vitest';
import type { RawLocalState } from '../../src/backends/cloud-files/addon-types.js';
import {
  CF_BLOCK,
  decodeLocalState,
  FileAttribute,
  type FetchRange,
  identityOf,
  metadataOf,
  placeholderOutcome,
  placeholdersOf,
  planTransfer,
  specChanged,
  statusOf,
  toCfPlaceholder,
} from '../../src/backends/cloud-files/placeholders.js';
import { FsError } from '../../src/vfs/errors.js';
import type { Attr, DirEntry } from '../../src/vfs/remote-fs.js';

const MiB = 1024 * 1024;

function entry(name: string, mode: number, size = 0, mtimeMs = 1_700_000_000_000): DirEntry {
  const attr: Attr = { ino: 0, mode, size, uid: 1000, gid: 1000, atimeMs: mtimeMs - 1000, mtimeMs, nlink: 1, blocks: 0 };
  return { name, attr };
}

describe('placeholdersOf', () => {
  it('keeps files and directories with their sizes and times, and says why it leaves others out', () => {
    const { specs, skipped } = placeholdersOf(
      'dir',
      [
        entry('b.txt', 0o100644, 10),
        entry('a', 0o040755),
        entry('link', 0o120777, 4),
        entry('fifo', 0o010644),
        entry('x:y', 0o100644),
        entry('readonly.txt', 0o100444, 3),
        entry('README', 0o100644, 1),
        entry('readme', 0o100644, 2),
      ],
      false,
    );
    expect(specs).toEqual([
      { name: 'README', path: 'dir/README', isDirectory: false, size: 1, mtimeMs: 1_700_000_000_000, atimeMs: 1_699_999_999_000, readonly: false },
      { name: 'a', path: 'dir/a', isDirectory: true, size: 0, mtimeMs: 1_700_000_000_000, atimeMs: 1_699_999_999_000, readonly: false },
      { name: 'b.txt', path: 'dir/b.txt', isDirectory: false, size: 10, mtimeMs: 1_700_000_000_000, atimeMs: 1_699_999_999_000, readonly: false },
      { name: 'readonly.txt', path: 'dir/readonly.txt', isDirectory: false, size: 3, mtimeMs: 1_700_000_000_000, atimeMs: 1_699_999_999_000, readonly: true },
    ]);
    expect(skipped.map((s) => s.name).sort()).toEqual(['fifo', 'link', 'readme', 'x:y']);
    expect(skipped.find((s) => s.name === 'readme')!.reason).toMatch(/differs from 'README' only in case/);
  });

  it('shows every file read-only on a read-only mount, but not directories', () => {
    const { specs } = placeholdersOf('', [entry('f', 0o100644, 1), entry('d', 0o040755)], true);
    expect(specs.map((s) => [s.name, s.readonly])).toEqual([['d', false], ['f', true]]);
  });

  it('turns a spec into cfapi metadata: attributes, times, identity, in sync, directories populated on demand', () => {
    const [file, dir] = placeholdersOf('p', [entry('f.bin', 0o100644, 5), entry('d', 0o040755)], false).specs.sort((a) => (a.isDirectory ? 1 : -1));
    expect(metadataOf(file!)).toEqual({ size: 5, attributes: FileAttribute.normal, createdMs: 1_700_000_000_000, modifiedMs: 1_700_000_000_000, accessedMs: 1_699_999_999_000, changedMs: 1_700_000_000_000 });
    expect(metadataOf(dir!).attributes).toBe(FileAttribute.directory);
    expect(metadataOf({ ...file!, readonly: true }).attributes).toBe(FileAttribute.readonly);
    expect(toCfPlaceholder(file!)).toMatchObject({ name: 'f.bin', identity: Buffer.from('p/f.bin'), markInSync: true, populated: false });
    expect(identityOf('x'.repeat(5000))).toHaveLength(64);
  });

  it('notices the changes a placeholder must follow', () => {
    const [spec] = placeholdersOf('', [entry('f', 0o100644, 5)], false).specs;
    expect(specChanged(spec!, { ...spec! })).toBe(false);
    expect(specChanged(spec!, { ...spec!, atimeMs: 1 })).toBe(false);
    expect(specChanged(spec!, { ...spec!, size: 6 })).toBe(true);
    expect(specChanged(spec!, { ...spec!, mtimeMs: 1 })).toBe(true);
    expect(specChanged(spec!, { ...spec!, readonly: true })).toBe(true);
  });
});

describe('planTransfer', () => {
  const options = { chunkBytes: MiB, readAheadBytes: 8 * MiB };
  const range = (fileSize: number, requiredOffset: number, requiredLength: number, optionalOffset = 0, optionalLength = 0): FetchRange => ({
    fileSize,
    requiredOffset,
    requiredLength,
    optionalOffset,
    optionalLength,
  });
  const spans = (r: FetchRange, o = options) => planTransfer(r, o).map((c) => [c.offset, c.length]);

  it.each([
    ['an aligned block', range(10 * MiB, 0, CF_BLOCK), [[0, CF_BLOCK]]],
    ['an unaligned range, stretched to whole blocks', range(10 * MiB, 5000, 100), [[CF_BLOCK, CF_BLOCK]]],
    ['a range across a block border', range(10 * MiB, 4000, 200), [[0, 2 * CF_BLOCK]]],
    ['the tail, ending unaligned at the end of the file', range(10_000, 9000, 1000), [[8192, 1808]]],
    ['a required range past the end, cut at the end', range(10_000, 9000, 50_000), [[8192, 1808]]],
    ['to the end (CF_EOF) of a small file', range(5, 0, -1), [[0, 5]]],
    ['an empty file', range(0, 0, -1), []],
    ['nothing required', range(MiB, 0, 0), []],
    ['more than a chunk', range(3 * MiB, 0, 2 * MiB + 1), [[0, MiB], [MiB, MiB], [2 * MiB, CF_BLOCK]]],
    ['read-ahead into the optional range', range(100 * MiB, 0, CF_BLOCK, 0, -1), Array.from({ length: 8 }, (_, i) => [i * MiB, MiB])],
    ['read-ahead stops where the optional range ends', range(100 * MiB, 0, CF_BLOCK, 0, 2 * MiB + 100), [[0, MiB], [MiB, MiB], [2 * MiB, CF_BLOCK]]],
    ['read-ahead stops at the end of the file', range(MiB + 10, 0, CF_BLOCK, 0, -1), [[0, MiB], [MiB, 10]]],
    ['an optional range that does not touch the required one is ignored', range(100 * MiB, 0, CF_BLOCK, 50 * MiB, MiB), [[0, CF_BLOCK]]],
  ])('%s', (_name, r, expected) => {
    expect(spans(r)).toEqual(expected);
  });

  it('always covers the required range with block-aligned chunks (random ranges)', () => {
    let seed = 42;
    const random = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31;
      return seed % n;
    };
    for (let i = 0; i < 2000; i++) {
      const fileSize = 1 + random(20 * MiB);
      const requiredOffset = random(fileSize);
      const requiredLength = random(3) === 0 ? -1 : 1 + random(3 * MiB);
      const optionalLength = [0, -1, random(10 * MiB)][random(3)]!;
      const r = range(fileSize, requiredOffset, requiredLength, requiredOffset, optionalLength);
      const chunks = planTransfer(r, { chunkBytes: 256 * 1024, readAheadBytes: 2 * MiB });
      const requiredEnd = requiredLength < 0 ? fileSize : Math.min(fileSize, requiredOffset + requiredLength);
      expect(chunks[0]!.offset).toBeLessThanOrEqual(requiredOffset);
      const last = chunks.at(-1)!;
      expect(last.offset + last.length).toBeGreaterThanOrEqual(requiredEnd);
      expect(last.offset + last.length).toBeLessThanOrEqual(fileSize);
      for (const [index, chunk] of chunks.entries()) {
        expect(chunk.offset % CF_BLOCK).toBe(0);
        expect(chunk.length).toBeGreaterThan(0);
        if (chunk.offset + chunk.length !== fileSize) expect(chunk.length % CF_BLOCK).toBe(0);
        if (index > 0) expect(chunk.offset).toBe(chunks[index - 1]!.offset + chunks[index - 1]!.length);
      }
    }
  });

  it('refuses a chunk size cfapi cannot take', () => {
    expect(() => planTransfer(range(MiB, 0, 1), { chunkBytes: 1000, readAheadBytes: 0 })).toThrow(/multiple of 4096/);
  });
});

describe('statusOf: the errno → cfapi status table', () => {
  it.each([
    ['ENOENT', 'notFound'],
    ['EACCES', 'accessDenied'],
    ['EPERM', 'accessDenied'],
    ['EROFS', 'accessDenied'],
    ['ENOTEMPTY', 'notEmpty'],
    ['EEXIST', 'exists'],
    ['ETIMEDOUT', 'timeout'],
    ['ENOTCONN', 'networkUnavailable'],
    ['ENOSPC', 'diskFull'],
    ['EXDEV', 'notSupported'],
    ['EISDIR', 'invalidRequest'],
    ['EIO', 'unsuccessful'],
  ] as const)('%s → %s', (code, status) => {
    expect(statusOf(new FsError(code, 'op', 'p'))).toBe(status);
  });
  it('anything that is not an FsError is unsuccessful', () => {
    expect(statusOf(new Error('bug'))).toBe('unsuccessful');
    expect(statusOf('string')).toBe('unsuccessful');
  });
});

describe('placeholder results and local state', () => {
  it('reads per-entry HRESULTs', () => {
    expect(placeholderOutcome(0)).toBe('created');
    expect(placeholderOutcome(1)).toBe('created');
    expect(placeholderOutcome(0x800700b7)).toBe('exists');
    expect(placeholderOutcome(0x80070050)).toBe('exists');
    expect(placeholderOutcome(-2147024713)).toBe('exists');
    expect(placeholderOutcome(0x8000000a)).toBe('failed');
    expect(placeholderOutcome(0x8007017c)).toBe('failed');
  });

  const raw = (overrides: Partial<RawLocalState>): RawLocalState => ({
    isDirectory: false,
    attributes: FileAttribute.normal,
    size: 100,
    modifiedMs: 5,
    placeholder: true,
    inSyncState: 1,
    pinState: 0,
    onDiskDataSize: 0,
    usn: 77n,
    ...overrides,
  });

  it('decodes the addon raw state', () => {
    expect(decodeLocalState(raw({}))).toEqual({ isDirectory: false, size: 100, modifiedMs: 5, placeholder: true, inSync: true, pin: 'unspecified', hydrated: false, usn: 77n });
    expect(decodeLocalState(raw({ onDiskDataSize: 100, pinState: 1 }))).toMatchObject({ hydrated: true, pin: 'pinned' });
    expect(decodeLocalState(raw({ inSyncState: 0, pinState: 2 }))).toMatchObject({ inSync: false, pin: 'unpinned' });
    expect(decodeLocalState(raw({ isDirectory: true, onDiskDataSize: 0 }))).toMatchObject({ hydrated: true });
    expect(decodeLocalState(raw({ usn: 0n }))).not.toHaveProperty('usn');
    const plain = decodeLocalState(raw({ placeholder: false, inSyncState: -1, pinState: -1, onDiskDataSize: -1, attributes: FileAttribute.pinned }));
    expect(plain).toMatchObject({ placeholder: false, inSync: false, hydrated: true, pin: 'pinned' });
  });
});
