import { execFileSync, spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPair } from '../fixtures/keys.js';
import { afterAll, describe, expect, it } from 'vitest';
import {
  checkHostKey,
  fingerprintSha256,
  formatKnownHostsLine,
  keyTypeLabel,
  keyTypeOfBlob,
  knownHostsName,
  knownKeyTypes,
  lookupHostKey,
  parseKnownHosts,
} from '../../src/remote/known-hosts.js';

function publicKey(type: 'ed25519' | 'ecdsa' | 'rsa'): { line: string; type: string; b64: string; blob: Buffer } {
  const pair = generateKeyPair(type);
  const [keyType, b64] = pair.public.trim().split(/\s+/) as [string, string];
  return { line: `${keyType} ${b64}`, type: keyType, b64, blob: Buffer.from(b64, 'base64') };
}

const ed = publicKey('ed25519');
const edOther = publicKey('ed25519');
const ecdsa = publicKey('ecdsa');
const rsa = publicKey('rsa');

const hasKeygen = spawnSync('ssh-keygen', ['-?'], { stdio: 'ignore' }).error === undefined;
const scratch = mkdtempSync(join(tmpdir(), 'tmount-known-hosts-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function hashed(name: string, salt: Buffer): string {
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

describe('parseKnownHosts', () => {
  it('keeps line numbers and markers, and skips comments, blanks and broken lines', () => {
    const text = [
      '# a comment',
      '',
      `example.org ${ed.line} alice@laptop`,
      `@revoked * ${edOther.line}`,
      `@cert-authority *.example.org ${ecdsa.line}`,
      `@bogus host ${ed.line}`,
      `broken.example ssh-ed25519 not*base64`,
      `mismatch.example ssh-rsa ${ed.b64}`,
      `onlyhost`,
      `   indented.example ${rsa.line}`,
    ].join('\n');
    const entries = parseKnownHosts(text, '/k');
    expect(entries.map((e) => [e.line, e.marker, e.keyType])).toEqual([
      [3, undefined, 'ssh-ed25519'],
      [4, 'revoked', 'ssh-ed25519'],
      [5, 'cert-authority', 'ecdsa-sha2-nistp256'],
      [10, undefined, 'ssh-rsa'],
    ]);
    expect(entries[0]!.file).toBe('/k');
    expect(entries[0]!.names).toEqual({ kind: 'patterns', patterns: ['example.org'] });
  });
});

describe('checkHostKey', () => {
  const salt = Buffer.alloc(20, 7);
  const cases: Array<[string, string, string, number, Buffer, ReturnType<typeof checkHostKey>]> = [
    ['a plain name on port 22', `example.org ${ed.line}`, 'example.org', 22, ed.blob, 'match'],
    ['names are case-insensitive', `Example.ORG ${ed.line}`, 'EXAMPLE.org', 22, ed.blob, 'match'],
    ['a plain name does not cover another port', `example.org ${ed.line}`, 'example.org', 2222, ed.blob, 'unknown'],
    ['[host]:port for another port', `[example.org]:2222 ${ed.line}`, 'example.org', 2222, ed.blob, 'match'],
    ['[host]:22 is not how port 22 is stored', `[example.org]:22 ${ed.line}`, 'example.org', 22, ed.blob, 'unknown'],
    ['a comma list', `a.example,example.org,10.0.0.1 ${ed.line}`, 'example.org', 22, ed.blob, 'match'],
    ['a * wildcard', `*.example.org ${ed.line}`, 'gpu1.example.org', 22, ed.blob, 'match'],
    ['* needs at least the dot', `*.example.org ${ed.line}`, 'example.org', 22, ed.blob, 'unknown'],
    ['a ? wildcard', `gpu?.lab ${ed.line}`, 'gpu7.lab', 22, ed.blob, 'match'],
    ['? is exactly one character', `gpu?.lab ${ed.line}`, 'gpu17.lab', 22, ed.blob, 'unknown'],
    ['* alone covers bracketed names', `* ${ed.line}`, '127.0.0.1', 2222, ed.blob, 'match'],
    ['a wildcard inside brackets', `[10.0.0.*]:2222 ${ed.line}`, '10.0.0.9', 2222, ed.blob, 'match'],
    ['negation rules the line out', `*.example.org,!bad.example.org ${ed.line}`, 'bad.example.org', 22, ed.blob, 'unknown'],
    ['negation leaves the others', `*.example.org,!bad.example.org ${ed.line}`, 'ok.example.org', 22, ed.blob, 'match'],
    ['an IPv6 literal with a port', `[::1]:2222 ${ed.line}`, '::1', 2222, ed.blob, 'match'],
    ['a hashed name', `${hashed('example.org', salt)} ${ed.line}`, 'example.org', 22, ed.blob, 'match'],
    ['a hashed name is case-insensitive too', `${hashed('example.org', salt)} ${ed.line}`, 'Example.Org', 22, ed.blob, 'match'],
    ['a hashed [host]:port', `${hashed('[127.0.0.1]:2222', salt)} ${ed.line}`, '127.0.0.1', 2222, ed.blob, 'match'],
    ['a hashed name for another host', `${hashed('other.org', salt)} ${ed.line}`, 'example.org', 22, ed.blob, 'unknown'],
    ['another key of the same type has CHANGED', `example.org ${edOther.line}`, 'example.org', 22, ed.blob, 'changed'],
    ['a hashed line with another key has CHANGED', `${hashed('[127.0.0.1]:2222', salt)} ${edOther.line}`, '127.0.0.1', 2222, ed.blob, 'changed'],
    ['a key of another type only is unknown, as in ssh', `example.org ${rsa.line}`, 'example.org', 22, ed.blob, 'unknown'],
    ['one matching line among others wins', `example.org ${edOther.line}\nexample.org ${ed.line}`, 'example.org', 22, ed.blob, 'match'],
    ['@revoked beats a matching line', `example.org ${ed.line}\n@revoked * ${ed.line}`, 'example.org', 22, ed.blob, 'revoked'],
    ['@revoked for another host does not apply', `@revoked other.org ${ed.line}`, 'example.org', 22, ed.blob, 'unknown'],
    ['@cert-authority never vouches for a plain key', `@cert-authority *.example.org ${ed.line}`, 'a.example.org', 22, ed.blob, 'unknown'],
    ['@cert-authority with another key is not a change', `@cert-authority * ${edOther.line}`, 'example.org', 22, ed.blob, 'unknown'],
    ['an empty file knows nothing', '', 'example.org', 22, ed.blob, 'unknown'],
  ];
  it.each(cases)('%s', (_label, text, host, port, blob, expected) => {
    expect(checkHostKey(parseKnownHosts(text), host, port, keyTypeOfBlob(blob), blob)).toBe(expected);
  });

  it('names the line that decided', () => {
    const entries = parseKnownHosts(`# keys\nfirst.org ${ed.line}\n[127.0.0.1]:2222 ${edOther.line}\n`, '/home/a/.ssh/known_hosts');
    const found = lookupHostKey(entries, '127.0.0.1', 2222, 'ssh-ed25519', ed.blob);
    expect(found.status).toBe('changed');
    expect(found.entry).toMatchObject({ file: '/home/a/.ssh/known_hosts', line: 3 });
  });
});

describe('formatting', () => {
  it('builds the stored name as ssh does', () => {
    expect(knownHostsName('Example.org', 22)).toBe('example.org');
    expect(knownHostsName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222');
    expect(knownHostsName('::1', 2222)).toBe('[::1]:2222');
  });

  it('formats plain and hashed lines that parse back to a match', () => {
    const plain = formatKnownHostsLine('127.0.0.1', 2222, ed.type, ed.blob);
    expect(plain).toBe(`[127.0.0.1]:2222 ${ed.line}`);
    const salt = Buffer.alloc(20, 1);
    const hashedLine = formatKnownHostsLine('127.0.0.1', 2222, ed.type, ed.blob, { hash: true, salt });
    expect(hashedLine).toBe(`${hashed('[127.0.0.1]:2222', salt)} ${ed.line}`);
    for (const line of [plain, formatKnownHostsLine('127.0.0.1', 2222, ed.type, ed.blob, { hash: true })]) {
      expect(checkHostKey(parseKnownHosts(line), '127.0.0.1', 2222, ed.type, ed.blob)).toBe('match');
      expect(checkHostKey(parseKnownHosts(line), '127.0.0.1', 22, ed.type, ed.blob)).toBe('unknown');
    }
  });

  it('reads the key type from the blob and labels it as ssh prints it', () => {
    expect([ed, ecdsa, rsa].map((k) => keyTypeOfBlob(k.blob))).toEqual(['ssh-ed25519', 'ecdsa-sha2-nistp256', 'ssh-rsa']);
    expect([ed, ecdsa, rsa].map((k) => keyTypeLabel(k.type))).toEqual(['ED25519', 'ECDSA', 'RSA']);
    expect(keyTypeLabel('sk-ssh-ed25519@openssh.com')).toBe('ED25519-SK');
    expect(() => keyTypeOfBlob(Buffer.from([0, 0]))).toThrow(/2 bytes is too short/);
  });

  it('lists the key types known for a host, in file order', () => {
    const entries = parseKnownHosts(`h ${rsa.line}\n* ${ed.line}\n@revoked h ${ecdsa.line}\nother ${ecdsa.line}`);
    expect(knownKeyTypes(entries, 'h', 22)).toEqual(['ssh-rsa', 'ssh-ed25519']);
  });
});

describe.skipIf(!hasKeygen)('agreement with ssh-keygen', () => {
  it('computes the same SHA256 fingerprint', () => {
    const file = join(scratch, 'key.pub');
    writeFileSync(file, `${ed.line} test\n`);
    const out = execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', file], { encoding: 'utf8' });
    expect(out.split(' ')[1]).toBe(fingerprintSha256(ed.blob));
  });

  it('matches the entries ssh-keygen -H hashes', () => {
    const file = join(scratch, 'known_hosts_h');
    writeFileSync(file, `[127.0.0.1]:2222 ${ed.line}\nexample.org ${rsa.line}\n`);
    execFileSync('ssh-keygen', ['-H', '-f', file], { stdio: 'ignore' });
    const entries = parseKnownHosts(readFileSync(file, 'utf8'));
    expect(entries.every((e) => e.names.kind === 'hashed')).toBe(true);
    expect(checkHostKey(entries, '127.0.0.1', 2222, ed.type, ed.blob)).toBe('match');
    expect(checkHostKey(entries, 'example.org', 22, rsa.type, rsa.blob)).toBe('match');
    expect(checkHostKey(entries, '127.0.0.1', 2223, ed.type, ed.blob)).toBe('unknown');
  });

  it('writes hashed lines ssh-keygen -F finds', () => {
    const file = join(scratch, 'known_hosts_f');
    writeFileSync(file, `${formatKnownHostsLine('127.0.0.1', 2222, ed.type, ed.blob, { hash: true })}\n`);
    const found = spawnSync('ssh-keygen', ['-F', '[127.0.0.1]:2222', '-f', file], { encoding: 'utf8' });
    expect(found.status).toBe(0);
    expect(found.stdout).toContain(ed.b64);
  });
});
