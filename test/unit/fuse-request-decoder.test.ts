import { describe, expect, it } from 'vitest';
import { checkAddonLayout, decodeRequest, OP_NAMES, REQUEST_SLOTS } from '../../src/backends/fuse/request-decoder.js';

type SlotName = (typeof REQUEST_SLOTS)[number];

/** Slots as the addon fills them: every number of the request, zeros elsewhere. */
function slots(values: Partial<Record<SlotName, number>>): Float64Array {
  const filled = new Float64Array(REQUEST_SLOTS.length);
  for (const [name, value] of Object.entries(values)) filled[REQUEST_SLOTS.indexOf(name as SlotName)] = value;
  return filled;
}

const op = (name: (typeof OP_NAMES)[number]) => OP_NAMES.indexOf(name);

describe('decodeRequest', () => {
  it('gives a read the handle, size and offset (offsets beyond 4 GiB included)', () => {
    const request = decodeRequest(slots({ id: 7, ino: 5, fh: 3, hasFh: 1, size: 4096, offset: 2 ** 40 + 4096 }), op('read'));
    expect(request).toEqual({ op: 'read', id: 7, ino: 5, fh: 3, size: 4096, offset: 2 ** 40 + 4096 });
  });

  it('hands a write its data and flags', () => {
    const data = Buffer.from('abc');
    const request = decodeRequest(slots({ id: 8, ino: 5, fh: 3, hasFh: 1, offset: 10, flags: 0o2001 }), op('write'), data);
    expect(request).toEqual({ op: 'write', id: 8, ino: 5, fh: 3, data, offset: 10, flags: 0o2001 });
  });

  it('leaves fh out of getattr and setattr when the kernel sent none', () => {
    expect(decodeRequest(slots({ id: 1, ino: 9, fh: 0, hasFh: 0 }), op('getattr'))).toEqual({ op: 'getattr', id: 1, ino: 9 });
    expect(decodeRequest(slots({ id: 1, ino: 9, fh: 0, hasFh: 1 }), op('getattr'))).toEqual({ op: 'getattr', id: 1, ino: 9, fh: 0 });
    const setattr = decodeRequest(
      slots({ id: 2, ino: 9, toSet: 0b11, mode: 0o100600, attrUid: 1000, attrGid: 100, size: 3, atimeMs: 1.5, mtimeMs: 2.5 }),
      op('setattr'),
    );
    expect(setattr).toEqual({ op: 'setattr', id: 2, ino: 9, toSet: 0b11, mode: 0o100600, uid: 1000, gid: 100, size: 3, atimeMs: 1.5, mtimeMs: 2.5 });
  });

  it('puts names, link targets and new names where each op has them', () => {
    expect(decodeRequest(slots({ id: 3, parent: 1 }), op('lookup'), 'a.txt')).toEqual({ op: 'lookup', id: 3, parent: 1, name: 'a.txt' });
    expect(decodeRequest(slots({ id: 4, parent: 1 }), op('symlink'), 'ln', '../target')).toEqual({
      op: 'symlink', id: 4, parent: 1, name: 'ln', target: '../target',
    });
    expect(decodeRequest(slots({ id: 5, parent: 1, newParent: 2, flags: 1 }), op('rename'), 'old', 'new')).toEqual({
      op: 'rename', id: 5, parent: 1, name: 'old', newParent: 2, newName: 'new', flags: 1,
    });
    expect(decodeRequest(slots({ id: 6, ino: 8, newParent: 2 }), op('link'), 'hard')).toEqual({
      op: 'link', id: 6, ino: 8, newParent: 2, newName: 'hard',
    });
  });

  it('turns booleans into booleans and forget pairs into items', () => {
    expect(decodeRequest(slots({ id: 1, ino: 2, fh: 4, hasFh: 1, size: 4096, plus: 1 }), op('readdir'))).toMatchObject({ plus: true, offset: 0 });
    expect(decodeRequest(slots({ id: 1, ino: 2, fh: 4, hasFh: 1 }), op('fsync'))).toMatchObject({ datasync: false });
    expect(decodeRequest(slots({}), op('forget'), new Float64Array([5, 1, 6, 3]))).toEqual({
      op: 'forget', id: 0, items: [{ ino: 5, nlookup: 1 }, { ino: 6, nlookup: 3 }],
    });
  });

  it('decodes every op the addon knows under its own name, with the fields its handler reads', () => {
    const filled = slots({ id: 9, ino: 4, parent: 1, fh: 2, hasFh: 1, size: 8, offset: 16, flags: 3, mode: 0o100644, newParent: 5 });
    const expected: Record<(typeof OP_NAMES)[number], string[]> = {
      lookup: ['parent', 'name'],
      getattr: ['ino', 'fh'],
      setattr: ['ino', 'fh', 'toSet', 'mode', 'uid', 'gid', 'size', 'atimeMs', 'mtimeMs'],
      readlink: ['ino'],
      mknod: ['parent', 'name', 'mode', 'rdev'],
      mkdir: ['parent', 'name', 'mode'],
      unlink: ['parent', 'name'],
      rmdir: ['parent', 'name'],
      symlink: ['parent', 'name', 'target'],
      rename: ['parent', 'name', 'newParent', 'newName', 'flags'],
      link: ['ino', 'newParent', 'newName'],
      open: ['ino', 'flags'],
      read: ['ino', 'fh', 'size', 'offset'],
      write: ['ino', 'fh', 'data', 'offset', 'flags'],
      flush: ['ino', 'fh'],
      release: ['ino', 'fh', 'flags'],
      fsync: ['ino', 'fh', 'datasync'],
      opendir: ['ino', 'flags'],
      readdir: ['ino', 'fh', 'size', 'offset', 'plus'],
      releasedir: ['ino', 'fh'],
      fsyncdir: ['ino', 'fh', 'datasync'],
      statfs: ['ino'],
      create: ['parent', 'name', 'mode', 'flags'],
      forget: ['items'],
    };
    for (const name of OP_NAMES) {
      const a = name === 'write' ? Buffer.from('x') : name === 'forget' ? new Float64Array([4, 1]) : 'a';
      const request = decodeRequest(filled, op(name), a, 'b');
      expect(Object.keys(request).sort()).toEqual(['op', 'id', ...expected[name]].sort());
      expect(request.op).toBe(name);
      expect(Object.values(request)).not.toContain(undefined);
    }
  });

  it('refuses an op index it does not know', () => {
    expect(() => decodeRequest(slots({}), OP_NAMES.length)).toThrow(`unknown op index ${OP_NAMES.length}`);
  });
});

describe('checkAddonLayout', () => {
  it('accepts an addon built from the same lists and names the fix for a stale one', () => {
    expect(() => checkAddonLayout({ requestSlots: [...REQUEST_SLOTS], opNames: [...OP_NAMES] })).not.toThrow();
    const swapped = [...REQUEST_SLOTS];
    [swapped[0], swapped[1]] = [swapped[1]!, swapped[0]!];
    expect(() => checkAddonLayout({ requestSlots: swapped, opNames: [...OP_NAMES] })).toThrow('rebuild it with `npm run build`');
    expect(() => checkAddonLayout({ requestSlots: [...REQUEST_SLOTS], opNames: OP_NAMES.slice(1) })).toThrow('rebuild it');
  });
});
