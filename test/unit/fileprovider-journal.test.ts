import { describe, expect, it } from 'vitest';
import { domainFor, staleDomains } from '../../src/backends/fileprovider/domain.js';
import { IdTable } from '../../src/backends/fileprovider/identifiers.js';
import { ChangeJournal, coalesce } from '../../src/backends/fileprovider/journal.js';
import { LineSplitter } from '../../src/backends/fileprovider/protocol.js';

describe('ChangeJournal', () => {
  it('answers changes after an anchor in pages, each page ending at its own anchor', () => {
    const journal = new ChangeJournal(100, 'abc123');
    const start = journal.anchor;
    expect(start).toBe('abc123.0');
    for (const id of ['a', 'b', 'c']) journal.record({ kind: 'update', id, parent: 'root' });
    const first = journal.read(start, 2);
    expect(first).toMatchObject({ ok: true, anchor: 'abc123.2', more: true });
    expect(first.ok && first.entries.map((entry) => entry.id)).toEqual(['a', 'b']);
    const second = journal.read(first.ok ? first.anchor : '', 2);
    expect(second).toMatchObject({ ok: true, anchor: 'abc123.3', more: false });
    expect(journal.read(journal.anchor, 10)).toEqual({ ok: true, entries: [], anchor: 'abc123.3', more: false });
  });

  it.each([
    ['another epoch', 'def456.0', /earlier run/],
    ['a position past the head', 'abc123.9', /past the journal's head/],
    ['something else', 'garbage', /not a sync anchor/],
    ['a position the journal no longer keeps', 'abc123.0', /keeps only positions after 1/],
  ])('an anchor naming %s is expired', (_, anchor, reason) => {
    const journal = new ChangeJournal(2, 'abc123');
    for (const id of ['a', 'b', 'c']) journal.record({ kind: 'update', id, parent: 'root' });
    const read = journal.read(anchor, 10);
    expect(read.ok).toBe(false);
    expect(!read.ok && read.reason).toMatch(reason);
  });

  it('the oldest retained position is still answerable', () => {
    const journal = new ChangeJournal(2, 'abc123');
    for (const id of ['a', 'b', 'c']) journal.record({ kind: 'update', id, parent: 'root' });
    const read = journal.read('abc123.1', 10);
    expect(read.ok && read.entries.map((entry) => entry.id)).toEqual(['b', 'c']);
  });

  it('coalesces to the last change of each item and keeps the parent a move left', () => {
    const net = coalesce([
      { seq: 1, kind: 'update', id: 'x', parent: 'root' },
      { seq: 2, kind: 'update', id: 'y', parent: 'p:d', oldParent: 'root' },
      { seq: 3, kind: 'delete', id: 'x', parent: 'root' },
      { seq: 4, kind: 'update', id: 'y', parent: 'p:d' },
      { seq: 5, kind: 'update', id: 'z', parent: 'root', oldParent: 'root' },
    ]);
    expect(net).toEqual([
      { seq: 3, kind: 'delete', id: 'x', parent: 'root' },
      { seq: 4, kind: 'update', id: 'y', parent: 'p:d', oldParent: 'root' },
      { seq: 5, kind: 'update', id: 'z', parent: 'root' },
    ]);
  });
});

describe('IdTable', () => {
  it('derives identifiers from paths, so an unchanged item keeps its identifier across runs', () => {
    const first = new IdTable();
    const second = new IdTable();
    expect(first.idFor('')).toBe('root');
    expect(first.idFor('a/b.txt')).toBe('p:a/b.txt');
    expect(second.pathOf('p:a/b.txt')).toBe('a/b.txt');
    expect(second.idFor('a/b.txt')).toBe('p:a/b.txt');
    for (const bad of ['p:/etc/passwd', 'p:a/../b', 'p:', 'x:y', 'p2:a', 'p:a//b']) expect(second.pathOf(bad)).toBeUndefined();
  });

  it('keeps identifiers through a move of a folder, and gives the freed path a new identifier', () => {
    const ids = new IdTable();
    const dir = ids.idFor('dir');
    const child = ids.idFor('dir/child');
    ids.move('dir', 'moved/here');
    expect(ids.pathOf(dir)).toBe('moved/here');
    expect(ids.pathOf(child)).toBe('moved/here/child');
    expect(ids.idFor('moved/here/child')).toBe(child);
    expect(ids.idFor('dir')).toBe('p2:dir');
    expect(ids.pathOf('p2:dir')).toBe('dir');
  });

  it('a removed item and everything below it lose their identifiers for good', () => {
    const ids = new IdTable();
    const dir = ids.idFor('dir');
    const child = ids.idFor('dir/child');
    ids.idFor('dirt');
    expect(ids.subtree('dir').sort()).toEqual([dir, child].sort());
    expect(ids.remove('dir').sort()).toEqual([dir, child].sort());
    expect(ids.pathOf(dir)).toBeUndefined();
    expect(ids.pathOf(child)).toBeUndefined();
    expect(ids.idFor('dir')).toBe('p2:dir');
    expect(ids.pathOf('p:dirt')).toBe('dirt');
  });
});

describe('domains', () => {
  const target = { user: 'alice', alias: 'box', hostname: 'box.example.org', port: 22, path: '/srv/data' };

  it('names a domain after its remote folder, distinct per folder, port and user', () => {
    const domain = domainFor(target);
    expect(domain.identifier).toMatch(/^tmount-[0-9a-f]{12}$/);
    expect(domain.displayName).toBe('tmount — alice@box:/srv/data');
    expect(domain.rootName).toBe('data');
    expect(domainFor({ ...target, path: '/srv/data/' }).identifier).toBe(domain.identifier);
    expect(domainFor({ ...target, hostname: 'BOX.example.org' }).identifier).toBe(domain.identifier);
    const others = [{ path: '/srv/other' }, { port: 2222 }, { user: 'bob' }, { hostname: 'other.example.org' }].map((change) => domainFor({ ...target, ...change }).identifier);
    expect(new Set([domain.identifier, ...others]).size).toBe(5);
    expect(domainFor({ ...target, port: 2222 }).displayName).toBe('tmount — alice@box:2222:/srv/data');
    expect(domainFor({ ...target, path: '' }).rootName).toBe('box');
    expect(domainFor({ ...target, path: '/' }).rootName).toBe('box');
    expect(domain.identifier).not.toMatch(/[/:]/);
  });

  it('only tmount domains that no running mount serves are stale', () => {
    const listed = ['tmount-aaaaaaaaaaaa', 'tmount-bbbbbbbbbbbb', 'tmount-cccccccccccc', 'com.example.other'].map((identifier) => ({ identifier }));
    expect(staleDomains(listed, 'tmount-cccccccccccc', (key) => key === 'bbbbbbbbbbbb')).toEqual(['tmount-aaaaaaaaaaaa']);
  });
});

describe('LineSplitter', () => {
  it('returns whole lines only, and drops an overlong one up to its newline', () => {
    const splitter = new LineSplitter(10);
    expect(splitter.push('{"a":1}\n{"b"')).toEqual({ lines: ['{"a":1}'], overlong: 0 });
    expect(splitter.push(':2}\n\n')).toEqual({ lines: ['{"b":2}'], overlong: 0 });
    expect(splitter.push('x'.repeat(11))).toEqual({ lines: [], overlong: 1 });
    expect(splitter.push('y'.repeat(20))).toEqual({ lines: [], overlong: 0 });
    expect(splitter.push('tail\nok\n')).toEqual({ lines: ['ok'], overlong: 0 });
  });
});
