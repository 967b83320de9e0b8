import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { pooledBytesServed, pooledRandomFillSync } from '../../src/remote/padding-random.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

describe('pooled randomFillSync', () => {
  it('fills exactly the range asked for and nothing around it', () => {
    const buf = Buffer.alloc(64, 0xaa);
    pooledRandomFillSync(buf, 10, 16);
    expect(buf.subarray(0, 10).every((b) => b === 0xaa)).toBe(true);
    expect(buf.subarray(26).every((b) => b === 0xaa)).toBe(true);
    expect(buf.subarray(10, 26).some((b) => b !== 0xaa)).toBe(true);
  });

  it('never hands out the same bytes twice, across refills of the pool', () => {
    const seen = new Set<string>();
    // 16-byte draws, far more than one 4 KiB pool holds.
    for (let i = 0; i < 1000; i++) seen.add(pooledRandomFillSync(Buffer.alloc(16)).toString('hex'));
    expect(seen.size).toBe(1000);
  });

  it('counts what it serves and leaves big or malformed fills to node:crypto', () => {
    const before = pooledBytesServed();
    pooledRandomFillSync(Buffer.alloc(8));
    expect(pooledBytesServed()).toBe(before + 8);

    const big = pooledRandomFillSync(Buffer.alloc(1000));
    expect(pooledBytesServed()).toBe(before + 8);
    expect(big.some((b) => b !== 0)).toBe(true);

    expect(() => pooledRandomFillSync(Buffer.alloc(8), 6, 4)).toThrow(RangeError);
  });

  it('fills typed arrays other than Buffer by their bytes', () => {
    const words = new Uint32Array(4);
    pooledRandomFillSync(words);
    expect(words.some((w) => w !== 0)).toBe(true);
  });

  it('is what node:crypto exports once loaded', () => {
    expect(crypto.randomFillSync).toBe(pooledRandomFillSync);
  });
});

describe('ssh2 and the padding pool', () => {
  it('ssh2 takes its packet padding from the pool when loaded the way tmount loads it', () => {
    // A fresh process, as the daemon starts: load tmount's SSH layer, then let
    // ssh2's own cipher allocate packets and see whose bytes it used.
    const script = `
      import { createRequire } from 'node:module';
      await import(${JSON.stringify(join(ROOT, 'dist/remote/connect.js'))});
      const { pooledBytesServed } = await import(${JSON.stringify(join(ROOT, 'dist/remote/padding-random.js'))});
      const require = createRequire(${JSON.stringify(join(ROOT, 'package.json'))});
      const { CIPHER_INFO, createCipher } = require('ssh2/lib/protocol/crypto.js');
      const cipher = createCipher({ outbound: {
        onWrite() {}, seqno: 0, cipherInfo: CIPHER_INFO['aes128-gcm@openssh.com'],
        cipherKey: Buffer.alloc(16, 1), cipherIV: Buffer.alloc(12, 2), macInfo: undefined, macKey: undefined,
      } });
      const before = pooledBytesServed();
      for (let i = 0; i < 10; i++) cipher.allocPacket(20);
      console.log(pooledBytesServed() - before);
    `;
    const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', cwd: ROOT });
    expect(run.stderr).toBe('');
    // Ten packets of 20 payload bytes carry at least 4 bytes of padding each.
    expect(Number(run.stdout.trim())).toBeGreaterThanOrEqual(40);
  });

  it('no module of tmount loads ssh2 except remote/ssh2.ts (type-only imports aside)', () => {
    const sources = (dir: string): string[] =>
      readdirSync(dir).flatMap((name) => {
        const path = join(dir, name);
        return statSync(path).isDirectory() ? sources(path) : path.endsWith('.ts') ? [path] : [];
      });
    const loaders = sources(join(ROOT, 'src')).filter((file) => {
      const text = readFileSync(file, 'utf8');
      const valueImport = /^import\s+(?!type\b)[^;]*?from\s+'ssh2(\/[^']*)?';/ms;
      return valueImport.test(text) || /require\(\s*'ssh2'\s*\)/.test(text);
    });
    expect(loaders.map((file) => file.slice(ROOT.length))).toEqual(['src/remote/ssh2.ts']);
  });
});
