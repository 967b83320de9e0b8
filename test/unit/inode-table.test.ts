import { describe, expect, it } from 'vitest';
import { InodeTable, ROOT_INO } from '../../src/vfs/inode-table.js';

describe('InodeTable', () => {
  it('gives the root ino 1 and one stable ino per path', () => {
    const table = new InodeTable();
    expect(table.root.ino).toBe(ROOT_INO);
    const a = table.remember('a');
    const again = table.remember('a');
    expect(again).toBe(a);
    expect(a.nlookup).toBe(2);
    expect(table.remember('b').ino).not.toBe(a.ino);
  });

  it('drops a node when the kernel forgets every lookup, and hands the same ino back later', () => {
    const table = new InodeTable();
    const ino = table.remember('dir/file').ino;
    table.forget(ino, 1);
    expect(table.get(ino)).toBeUndefined();
    expect(table.find('dir/file')).toBeUndefined();
    expect(table.remember('dir/file').ino).toBe(ino);
  });

  it('never forgets the root', () => {
    const table = new InodeTable();
    table.forget(ROOT_INO, 100);
    expect(table.get(ROOT_INO)).toBe(table.root);
  });

  it('keeps an unlinked but open file until its last handle closes', () => {
    const table = new InodeTable();
    const node = table.remember('f');
    table.opened(node);
    table.unlink('f');
    table.forget(node.ino, 1);
    expect(table.get(node.ino)).toBe(node);
    expect(node.unlinked).toBe(true);
    expect(table.find('f')).toBeUndefined();
    table.closed(node);
    expect(table.get(node.ino)).toBeUndefined();
    // A new file at the same name is a different file with a different ino.
    expect(table.remember('f').ino).not.toBe(node.ino);
  });

  it('moves a whole subtree on rename and keeps its inos', () => {
    const table = new InodeTable();
    const dir = table.remember('src');
    const file = table.remember('src/lib/x.ts');
    const other = table.remember('srcfoo');
    table.rename('src', 'dst/src');
    expect(dir.path).toBe('dst/src');
    expect(file.path).toBe('dst/src/lib/x.ts');
    expect(table.find('dst/src/lib/x.ts')).toBe(file);
    expect(table.find('src/lib/x.ts')).toBeUndefined();
    expect(other.path).toBe('srcfoo');
  });

  it('unlinks what a rename replaces', () => {
    const table = new InodeTable();
    const from = table.remember('new');
    const to = table.remember('old');
    table.opened(to);
    table.rename('new', 'old');
    expect(table.find('old')).toBe(from);
    expect(to.unlinked).toBe(true);
    expect(table.get(to.ino)).toBe(to);
  });

  it('gives every node a content id that is never reused', () => {
    const table = new InodeTable();
    const first = table.remember('x');
    table.forget(first.ino, 1);
    const second = table.remember('x');
    expect(second.ino).toBe(first.ino);
    expect(second.contentId).not.toBe(first.contentId);
  });

  it('bounds the memory of forgotten paths', () => {
    const table = new InodeTable({ retiredMax: 2 });
    const inos = ['a', 'b', 'c'].map((p) => table.remember(p).ino);
    for (const ino of inos) table.forget(ino, 1);
    expect(table.remember('a').ino).not.toBe(inos[0]);
    expect(table.remember('c').ino).toBe(inos[2]);
  });
});
