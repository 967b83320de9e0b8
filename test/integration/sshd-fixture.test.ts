import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { generateKeyPair } from '../fixtures/keys.js';
import { connectSftp } from '../fixtures/ssh-server.js';
import { waitFor } from '../fixtures/wait.js';
import { descendants, isAlive, startSshd } from '../fixtures/sshd.mjs';

const FIXTURE = fileURLToPath(new URL('../fixtures/sshd.mjs', import.meta.url));

describe('the private sshd fixture', () => {
  it('serves its remote root over SFTP to a key-authenticated ssh2 client, then leaves nothing behind', async () => {
    const server = await startSshd();
    let sessionPids: number[] = [];
    try {
      await mkdir(join(server.remoteRoot, 'docs'));
      await writeFile(join(server.remoteRoot, 'hello.txt'), 'hello\n');
      const { client, sftp } = await connectSftp(server);
      try {
        const names = await new Promise<string[]>((resolve, reject) =>
          sftp.readdir(server.remoteRoot, (err, list) => (err ? reject(err) : resolve(list.map((e) => e.filename)))),
        );
        expect(names.sort()).toEqual(['docs', 'hello.txt']);
        sessionPids = await descendants(server.pid);
        expect(sessionPids.length).toBeGreaterThan(0);
      } finally {
        client.end();
      }
    } finally {
      await server.stop();
    }
    expect(isAlive(server.pid)).toBe(false);
    expect(sessionPids.filter(isAlive)).toEqual([]);
    expect(existsSync(server.tempDir)).toBe(false);
  });

  it('refuses a client whose key is not authorized', async () => {
    const server = await startSshd();
    try {
      const { Client } = await import('ssh2');
      const { private: privateKey } = generateKeyPair('ed25519');
      const client = new Client();
      const error = await new Promise<Error>((resolve) => {
        client.once('ready', () => resolve(new Error('unexpectedly authenticated')));
        client.once('error', resolve);
        client.connect({ host: server.host, port: server.port, username: server.user, privateKey, readyTimeout: 10_000 });
      });
      client.end();
      expect(error.message).toMatch(/authentication methods failed/);
    } finally {
      await server.stop();
    }
  });

  it('is torn down by its watchdog when the process that started it is killed', async () => {
    const child = spawn(
      process.execPath,
      ['--input-type=module', '-e', `
        const { startSshd } = await import(${JSON.stringify(FIXTURE)});
        const server = await startSshd();
        process.stdout.write(JSON.stringify({ pid: server.pid, dir: server.tempDir }) + '\\n');
        setInterval(() => {}, 1000);
      `],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let out = '';
        child.stdout!.on('data', (chunk) => {
          out += chunk;
          if (out.includes('\n')) resolve(out);
        });
        child.once('exit', (code) => reject(new Error(`fixture child exited early (${code})`)));
      });
      const { pid, dir } = JSON.parse(line) as { pid: number; dir: string };
      expect(isAlive(pid)).toBe(true);
      expect(existsSync(dir)).toBe(true);

      child.kill('SIGKILL');
      expect(await waitFor(() => !isAlive(pid) && !existsSync(dir), 5_000)).toBe(true);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
