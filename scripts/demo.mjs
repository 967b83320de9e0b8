#!/usr/bin/env node
// `npm run demo`, after set-up: a private OpenSSH server on loopback serving a
// small sample folder, mounted with `tmount mount --backend auto`. On a
// terminal it stays mounted until Ctrl+C; otherwise (CI) it shows the mount
// and cleans up straight away.
import { spawnSync } from 'node:child_process';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startSshd } from '../test/fixtures/sshd.mjs';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));
const interactive = process.stdin.isTTY && process.env.CI !== 'true';

function tmount(...args) {
  return spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8' });
}

function say(message = '') {
  process.stdout.write(`${message}\n`);
}

async function writeSampleFolder(root) {
  await mkdir(join(root, 'src'));
  await mkdir(join(root, 'notes', '2026'), { recursive: true });
  await writeFile(join(root, 'README.txt'), 'This folder lives on the demo SSH server.\n');
  await writeFile(join(root, 'src', 'hello.c'), '#include <stdio.h>\nint main(void) { puts("hello from the remote"); }\n');
  await writeFile(join(root, 'notes', '2026', 'todo.md'), '- try editing this file through the mount\n');
}

const server = await startSshd();
const localDir = await mkdtemp(join(tmpdir(), 'tmount-demo-'));
const mountpoint = join(localDir, 'mnt');
let mountId;
let cleaned = false;
async function cleanUp() {
  if (cleaned) return;
  cleaned = true;
  if (mountId) tmount('unmount', mountId);
  await server.stop();
  await rm(localDir, { recursive: true, force: true });
}
process.once('SIGINT', () => cleanUp().then(() => process.exit(0)));
process.once('SIGTERM', () => cleanUp().then(() => process.exit(0)));

try {
  await writeSampleFolder(server.remoteRoot);
  const remote = `${server.user}@${server.host}:${server.port}:${server.remoteRoot}`;
  await mkdir(mountpoint);
  say(`demo: OpenSSH server on ${server.host}:${server.port} serving ${server.remoteRoot}`);
  say('demo: backends on this machine:');
  say(tmount('backends').stdout.trimEnd().replace(/^/gm, '  '));

  // The demo server's throw-away keys: the key to log in with, and its host key.
  const mounted = tmount(
    'mount', '--backend', 'auto', '--identity', server.privateKeyPath,
    '--ssh-option', `UserKnownHostsFile=${server.knownHostsPath}`, remote, mountpoint,
  );
  if (mounted.status !== 0) {
    say('demo: the mount step failed:');
    say(`  ${mounted.stderr.trim()}`);
    process.exitCode = mounted.status ?? 1;
  } else {
    say(mounted.stdout.trimEnd());
    mountId = /id (m-[0-9a-f]+)\)/.exec(mounted.stdout)?.[1];
    say(tmount('status').stdout.trimEnd());
    say(`demo: look in ${mountpoint}, or open it in your file manager:`);
    say(spawnSync('ls', ['-l', mountpoint], { encoding: 'utf8' }).stdout.trimEnd().replace(/^/gm, '  '));
    if (interactive) {
      say('demo: press Ctrl+C to unmount and clean up');
      await new Promise(() => {});
    }
  }
} finally {
  await cleanUp();
}
