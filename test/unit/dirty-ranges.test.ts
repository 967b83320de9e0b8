import { describe, expect, it } from 'vitest';
import { DirtyRanges } from '../../src/vfs/dirty-ranges.js';

const b = (text: string) => Buffer.from(text);

function flat(ranges: DirtyRanges) {
  return ranges.take().map(({ offset, data }) => [offset, data.toString()]);
}

describe('DirtyRanges', () => {
  it('coalesces sequential writes into one range', () => {
    const dirty = new DirtyRanges();
    dirty.add(0, b('abc'));
    dirty.add(3, b('def'));
    dirty.add(6, b('g'));
    expect(dirty.bytes).toBe(7);
    expect(dirty.end).toBe(7);
    expect(flat(dirty)).toEqual([[0, 'abcdefg']]);
    expect(dirty.isEmpty).toBe(true);
  });

  it('keeps separate ranges in offset order', () => {
    const dirty = new DirtyRanges();
    dirty.add(10, b('xx'));
    dirty.add(0, b('aa'));
    dirty.add(5, b('m'));
    expect(flat(dirty)).toEqual([[0, 'aa'], [5, 'm'], [10, 'xx']]);
  });

  it('lets a later write win where it overlaps', () => {
    const dirty = new DirtyRanges();
    dirty.add(0, b('aaaaaa'));
    dirty.add(2, b('BB'));
    expect(flat(dirty)).toEqual([[0, 'aaBBaa']]);
  });

  it('merges a write that bridges two ranges', () => {
    const dirty = new DirtyRanges();
    dirty.add(0, b('aa'));
    dirty.add(4, b('cc'));
    dirty.add(1, b('XXXX'));
    expect(dirty.bytes).toBe(6);
    expect(flat(dirty)).toEqual([[0, 'aXXXXc']]);
  });

  it('extends a range from the front and merges touching ranges', () => {
    const dirty = new DirtyRanges();
    dirty.add(3, b('def'));
    dirty.add(0, b('abc'));
    expect(flat(dirty)).toEqual([[0, 'abcdef']]);
  });

  it('answers whether a byte range has unflushed data', () => {
    const dirty = new DirtyRanges();
    dirty.add(100, b('x'.repeat(10)));
    expect(dirty.overlaps(0, 100)).toBe(false);
    expect(dirty.overlaps(105, 1)).toBe(true);
    expect(dirty.overlaps(109, 50)).toBe(true);
    expect(dirty.overlaps(110, 50)).toBe(false);
  });

  it('drops bytes past a truncation point', () => {
    const dirty = new DirtyRanges();
    dirty.add(0, b('abcdef'));
    dirty.add(10, b('zz'));
    dirty.truncate(4);
    expect(dirty.bytes).toBe(4);
    expect(flat(dirty)).toEqual([[0, 'abcd']]);
  });
});

describe('DirtyRanges.takeFirst', () => {
  it('streams the ranges out in pieces of at most max bytes, in offset order', () => {
    const dirty = new DirtyRanges();
    dirty.add(0, b('abc'));
    dirty.add(3, b('defgh'));
    dirty.add(20, b('xyz'));
    const pieces: [number, string][] = [];
    for (let piece = dirty.takeFirst(4); piece; piece = dirty.takeFirst(4)) pieces.push([piece.offset, piece.data.toString()]);
    expect(pieces).toEqual([[0, 'abcd'], [4, 'efgh'], [20, 'xyz']]);
    expect(dirty.isEmpty).toBe(true);
    expect(dirty.bytes).toBe(0);
  });

  it('keeps what it did not take mergeable with later writes', () => {
    const dirty = new DirtyRanges();
    dirty.add(0, b('abcdef'));
    expect(dirty.takeFirst(2)?.data.toString()).toBe('ab');
    dirty.add(6, b('gh'));
    dirty.add(3, b('X'));
    expect(flat(dirty)).toEqual([[2, 'cXefgh']]);
  });
});
