import { describe, expect, it } from 'vitest';
import {
  callbackPath,
  isWithin,
  relativeToRoot,
  syncRootDisplayName,
  syncRootId,
  windowsNameProblem,
  windowsPath,
} from '../../src/backends/cloud-files/paths.js';

const ROOT = 'C:\\Users\\alice\\tmount\\build-box';

describe('cloud-files paths', () => {
  it('joins cfapi volume and volume-relative path, and keeps paths that are already full', () => {
    expect(callbackPath('C:', '\\Users\\alice\\tmount\\build-box\\a.txt')).toBe(`${ROOT}\\a.txt`);
    expect(callbackPath('D:', 'data\\x')).toBe('D:\\data\\x');
    expect(callbackPath('C:', `${ROOT}\\a.txt`)).toBe(`${ROOT}\\a.txt`);
    expect(callbackPath('C:', '\\\\?\\C:\\x')).toBe('\\\\?\\C:\\x');
  });

  const relativeCases: [string, string | undefined][] = [
    [ROOT, ''],
    [`${ROOT}\\`, ''],
    [`${ROOT}\\a.txt`, 'a.txt'],
    [`${ROOT}\\sub\\deeper\\f.bin`, 'sub/deeper/f.bin'],
    // NTFS names ignore case, the platform may spell the root differently.
    ['c:\\users\\ALICE\\tmount\\BUILD-BOX\\Doc.txt', 'Doc.txt'],
    [`\\\\?\\${ROOT}\\a.txt`, 'a.txt'],
    ['C:/Users/alice/tmount/build-box/a/b', 'a/b'],
    ['C:\\Users\\alice\\tmount\\build-box2\\a.txt', undefined],
    ['C:\\Users\\alice\\tmount', undefined],
    ['D:\\elsewhere\\a.txt', undefined],
    [`${ROOT}\\..\\other`, undefined],
    [`${ROOT}\\a\\\\b`, undefined],
  ];
  it.each(relativeCases)('relativeToRoot(%s) is %s', (full, expected) => {
    expect(relativeToRoot(ROOT, full)).toBe(expected);
  });

  it('maps mount-relative paths back to Windows paths', () => {
    expect(windowsPath(ROOT, '')).toBe(ROOT);
    expect(windowsPath(ROOT, 'sub/f.txt')).toBe(`${ROOT}\\sub\\f.txt`);
    for (const rel of ['a', 'a/b/c.txt', 'x y/z']) expect(relativeToRoot(ROOT, windowsPath(ROOT, rel))).toBe(rel);
  });

  it('knows what is within a directory', () => {
    expect(isWithin('a/b', '')).toBe(true);
    expect(isWithin('a', 'a')).toBe(true);
    expect(isWithin('a/b', 'a')).toBe(true);
    expect(isWithin('ab', 'a')).toBe(false);
  });

  const names: [string, RegExp | undefined][] = [
    ['report.txt', undefined],
    ['.gitignore', undefined],
    ['ünïcødé ✓', undefined],
    ['a:b', /character Windows does not allow/],
    ['what?', /character/],
    ['back\\slash', /character/],
    ['tab\tname', /control character/],
    ['dot.', /ends with a dot/],
    ['space ', /ends with a dot or a space/],
    ['CON', /reserved device name/],
    ['nul.txt', /reserved device name/],
    ['com1', /reserved device name/],
    ['LPT9.log', /reserved device name/],
    ['console', undefined],
    ['x'.repeat(255), undefined],
    ['x'.repeat(256), /longer than 255/],
  ];
  it.each(names)('windowsNameProblem(%j)', (name, problem) => {
    const found = windowsNameProblem(name);
    if (problem) expect(found).toMatch(problem);
    else expect(found).toBeUndefined();
  });

  it('builds stable, distinct sync-root ids in the provider!SID!account form', () => {
    const sid = 'S-1-5-21-1-2-3-1001';
    const id = syncRootId(sid, 'alice@build-box:/srv', ROOT);
    expect(id).toMatch(/^tmount!S-1-5-21-1-2-3-1001!alice@build-box_srv-[0-9a-f]{12}$/);
    expect(id.split('!')).toHaveLength(3);
    expect(syncRootId(sid, 'alice@build-box:/srv', ROOT.toUpperCase())).toBe(id);
    expect(syncRootId(sid, 'alice@build-box:/srv', `${ROOT}2`)).not.toBe(id);
    expect(syncRootId(sid, 'alice@build-box:/other', ROOT)).not.toBe(id);
    expect(syncRootId(sid, 'a!b@h:/x', ROOT).split('!')).toHaveLength(3);
  });

  it('names the sync root "tmount — host:/path"', () => {
    expect(syncRootDisplayName('build-box', 22, '/srv/data')).toBe('tmount — build-box:/srv/data');
    expect(syncRootDisplayName('example.org', 2222, '/srv')).toBe('tmount — example.org:2222:/srv');
    expect(syncRootDisplayName('example.org', 22, '')).toBe('tmount — example.org:');
    expect(syncRootDisplayName('::1', 22, '/tmp')).toBe('tmount — [::1]:/tmp');
  });
});
