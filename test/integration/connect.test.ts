import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SFTPWrapper } from 'ssh2';
import { generateKeyPair } from '../fixtures/keys.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { UserError } from '../../src/errors.js';
import { classifyError, cipherList, openSsh, SshError, type ConnectOptions, type Prompter, type SshConnection } from '../../src/remote/connect.js';
import { verifyHostKey, type HostKeyPolicy } from '../../src/remote/host-key.js';
import { checkHostKey, keyTypeOfBlob, parseKnownHosts } from '../../src/remote/known-hosts.js';
import { connectOptionsFromCli, parseSshOptionArg } from '../../src/remote/ssh-options.js';
import type { SshTarget } from '../../src/remote/target.js';
import { useSshServer } from '../fixtures/ssh-server.js';
import { freePort, type SshServer } from '../fixtures/sshd.mjs';

const run = promisify(execFile);
const fixture = useSshServer();

let scratch: string;
let home: string;
let savedAgentSocket: string | undefined;
const open: SshConnection[] = [];

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'tmount-connect-'));
  // The default identity files and known_hosts live under `home`; the real ~/.ssh stays untouched.
  home = join(scratch, 'home');
  savedAgentSocket = process.env.SSH_AUTH_SOCK;
  delete process.env.SSH_AUTH_SOCK;
});

afterAll(async () => {
  if (savedAgentSocket !== undefined) process.env.SSH_AUTH_SOCK = savedAgentSocket;
  await rm(scratch, { recursive: true, force: true });
});

afterEach(async () => {
  await Promise.all(open.splice(0).map((c) => c.close()));
});

function targetOf(server: SshServer, overrides: Partial<SshTarget> = {}): SshTarget {
  return { alias: server.host, hostname: server.host, port: server.port, user: server.user, identityFiles: [], path: '', ...overrides };
}

function optionsFor(server: SshServer, overrides: ConnectOptions = {}): ConnectOptions {
  return {
    sshConfig: '',
    identityFiles: [server.privateKeyPath],
    knownHostsFiles: [server.knownHostsPath],
    globalKnownHostsFiles: [],
    agentSocket: '',
    home,
    readyTimeoutMs: 10_000,
    ...overrides,
  };
}

async function connect(target: SshTarget, options: ConnectOptions): Promise<SshConnection> {
  const connection = await openSsh(target, options);
  open.push(connection);
  return connection;
}

async function failure(promise: Promise<unknown>): Promise<UserError> {
  const result = await promise.then(
    (value) => {
      if (value && typeof value === 'object' && 'close' in value) open.push(value as SshConnection);
      return new Error('expected a failure, but it connected');
    },
    (err: unknown) => err,
  );
  if (!(result instanceof UserError)) throw result;
  expect(result.message).not.toContain('\n');
  return result;
}

async function listRemote(connection: SshConnection, path: string): Promise<string[]> {
  const sftp = await new Promise<SFTPWrapper>((resolve, reject) =>
    connection.client.sftp((err, channel) => (err ? reject(err) : resolve(channel))),
  );
  try {
    return await new Promise<string[]>((resolve, reject) =>
      sftp.readdir(path, (err, list) => (err ? reject(err) : resolve(list.map((e) => e.filename).sort()))),
    );
  } finally {
    sftp.end();
  }
}

/** Fails the test if anything is asked; counts the questions. */
function silentPrompter(): Prompter & { asked: string[] } {
  const asked: string[] = [];
  return {
    asked,
    askYesNo: async (q) => {
      asked.push(q);
      throw new Error(`unexpected question: ${q}`);
    },
    askSecret: async (q) => {
      asked.push(q);
      throw new Error(`unexpected prompt: ${q}`);
    },
  };
}

function scriptedPrompter(answers: { secrets?: string[]; yesNo?: boolean[] }): Prompter & { asked: string[] } {
  const asked: string[] = [];
  const secrets = [...(answers.secrets ?? [])];
  const yesNo = [...(answers.yesNo ?? [])];
  return {
    asked,
    askYesNo: async (q) => {
      asked.push(q);
      const answer = yesNo.shift();
      if (answer === undefined) throw new Error(`unscripted question: ${q}`);
      return answer;
    },
    askSecret: async (q) => {
      asked.push(q);
      const answer = secrets.shift();
      if (answer === undefined) throw new Error(`unscripted prompt: ${q}`);
      return answer;
    },
  };
}

function hostKeyBlob(server: SshServer): Buffer {
  return Buffer.from(server.hostPublicKey.split(' ')[1]!, 'base64');
}

function acceptedLogins(server: SshServer): number {
  return server.log().match(/Accepted publickey for /g)?.length ?? 0;
}

describe('openSsh with the private sshd', () => {
  it('logs in with a key file, says publickey, and carries SFTP', async () => {
    const { server } = fixture;
    await writeFile(join(server.remoteRoot, 'hello.txt'), 'hi\n');
    const connection = await connect(targetOf(server), optionsFor(server));
    expect(connection.authMethod).toBe('publickey');
    expect(connection.target.port).toBe(server.port);
    expect(await listRemote(connection, server.remoteRoot)).toContain('hello.txt');
  });

  it('reports a refused key as an authentication error (exit 6) naming what it tried', async () => {
    const { server } = fixture;
    const stranger = join(scratch, 'stranger_ed25519');
    await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
    const err = await failure(openSsh(targetOf(server), optionsFor(server, { identityFiles: [stranger] })));
    expect(err.exitCode).toBe(6);
    expect(err.message).toBe(
      `authentication failed for ${server.user}@${server.host} (the server accepts publickey): tried ${stranger}; add your key to the server or pass --identity`,
    );
    expect(classifyError(err)).toBe('auth');
  });

  it('never asks for a password the server does not accept', async () => {
    const { server } = fixture;
    const prompter = silentPrompter();
    const err = await failure(openSsh(targetOf(server), optionsFor(server, { identityFiles: [], prompter })));
    expect(err.exitCode).toBe(6);
    expect(err.message).toMatch(/tried no key \(no agent, no identity file found\)/);
    expect(prompter.asked).toEqual([]);
  });

  it('refuses an unknown host without a terminal (exit 7) and writes nothing', async () => {
    const { server } = fixture;
    const knownHosts = join(scratch, 'known_hosts_unknown');
    await writeFile(knownHosts, '');
    const err = await failure(openSsh(targetOf(server), optionsFor(server, { knownHostsFiles: [knownHosts] })));
    expect(err.exitCode).toBe(7);
    expect(err.message).toMatch(
      new RegExp(`^host key of \\[127\\.0\\.0\\.1\\]:${server.port} \\(ED25519 SHA256:[A-Za-z0-9+/]+\\) is not known and there is no terminal to confirm it; connect once with ssh -p ${server.port} ${server.user}@127\\.0\\.0\\.1, or pass --accept-new-host-key$`),
    );
    expect(await readFile(knownHosts, 'utf8')).toBe('');
    expect(classifyError(err)).toBe('hostKey');
  });

  it('records an unknown host key with acceptNewHostKey: exactly one line, which then matches', async () => {
    const { server } = fixture;
    const knownHosts = join(scratch, 'known_hosts_accept', 'known_hosts');
    const notes: string[] = [];
    const connection = await connect(
      targetOf(server),
      optionsFor(server, { knownHostsFiles: [knownHosts], acceptNewHostKey: true, notify: (m) => notes.push(m) }),
    );
    expect(connection.authMethod).toBe('publickey');
    const text = await readFile(knownHosts, 'utf8');
    expect(text.split('\n').filter(Boolean)).toEqual([`[127.0.0.1]:${server.port} ${server.hostPublicKey}`]);
    const blob = hostKeyBlob(server);
    expect(checkHostKey(parseKnownHosts(text), '127.0.0.1', server.port, keyTypeOfBlob(blob), blob)).toBe('match');
    expect(notes).toEqual([expect.stringMatching(/^added the ED25519 SHA256:\S+ host key of \[127\.0\.0\.1\]:\d+ to /)]);

    // The second time the key is known: nothing more is written.
    await connect(targetOf(server), optionsFor(server, { knownHostsFiles: [knownHosts], acceptNewHostKey: true }));
    expect(await readFile(knownHosts, 'utf8')).toBe(text);
  });

  it('hashes the recorded name with HashKnownHosts=yes', async () => {
    const { server } = fixture;
    const knownHosts = join(scratch, 'known_hosts_hashed');
    await connect(
      targetOf(server),
      optionsFor(server, { knownHostsFiles: [knownHosts], sshOptions: { StrictHostKeyChecking: 'accept-new', HashKnownHosts: 'yes' } }),
    );
    const text = await readFile(knownHosts, 'utf8');
    expect(text).toMatch(/^\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+ ssh-ed25519 \S+\n$/);
    expect(text).not.toContain('127.0.0.1');
    const found = await run('ssh-keygen', ['-F', `[127.0.0.1]:${server.port}`, '-f', knownHosts]);
    expect(found.stdout).toContain(server.hostPublicKey.split(' ')[1]);
  });

  it('asks on a terminal and records the key on yes; no is exit 7', async () => {
    const { server } = fixture;
    const knownHosts = join(scratch, 'known_hosts_ask');
    const no = scriptedPrompter({ yesNo: [false] });
    const refused = await failure(openSsh(targetOf(server), optionsFor(server, { knownHostsFiles: [knownHosts], prompter: no })));
    expect(refused.exitCode).toBe(7);
    expect(existsSync(knownHosts)).toBe(false);

    const yes = scriptedPrompter({ yesNo: [true] });
    await connect(targetOf(server), optionsFor(server, { knownHostsFiles: [knownHosts], prompter: yes }));
    expect(yes.asked).toHaveLength(1);
    expect(yes.asked[0]).toMatch(
      new RegExp(`^The authenticity of host '\\[127\\.0\\.0\\.1\\]:${server.port}' can't be established\\.\\nED25519 key fingerprint is SHA256:\\S+\\.\\nAre you sure you want to continue connecting \\(yes/no\\)\\? $`),
    );
    expect((await readFile(knownHosts, 'utf8')).trim()).toBe(`[127.0.0.1]:${server.port} ${server.hostPublicKey}`);
  });

  it('accepts without recording under StrictHostKeyChecking=no', async () => {
    const { server } = fixture;
    const knownHosts = join(scratch, 'known_hosts_no');
    await connect(targetOf(server), optionsFor(server, { knownHostsFiles: [knownHosts], sshOptions: { stricthostkeychecking: 'no' } }));
    expect(existsSync(knownHosts)).toBe(false);
  });

  it('refuses a CHANGED host key (exit 7) and says how to remove the old one', async () => {
    const { server } = fixture;
    const other = generateKeyPair('ed25519').public.trim().split(/\s+/).slice(0, 2).join(' ');
    const knownHosts = join(scratch, 'known_hosts_changed');
    await writeFile(knownHosts, `# old\n[127.0.0.1]:${server.port} ${other}\n`);
    const err = await failure(openSsh(targetOf(server), optionsFor(server, { knownHostsFiles: [knownHosts] })));
    expect(err.exitCode).toBe(7);
    expect(err.message).toMatch(
      new RegExp(`^host key for \\[127\\.0\\.0\\.1\\]:${server.port} has CHANGED \\(now SHA256:\\S+, known_hosts line ${knownHosts}:2 has another key\\); someone may be intercepting the connection, or the host was reinstalled — remove the old key with: ssh-keygen -R '\\[127\\.0\\.0\\.1\\]:${server.port}' -f '${knownHosts}'$`),
    );
  });

  it('refuses a host key marked @revoked', async () => {
    const { server } = fixture;
    const knownHosts = join(scratch, 'known_hosts_revoked');
    await writeFile(knownHosts, `[127.0.0.1]:${server.port} ${server.hostPublicKey}\n@revoked * ${server.hostPublicKey}\n`);
    const err = await failure(openSsh(targetOf(server), optionsFor(server, { knownHostsFiles: [knownHosts] })));
    expect(err.exitCode).toBe(7);
    expect(err.message).toMatch(/is marked @revoked in .*known_hosts_revoked:2/);
  });

  it('reports a closed port as a connection error (exit 5) with host and port', async () => {
    const { server } = fixture;
    const port = await freePort();
    const err = await failure(openSsh(targetOf(server, { port }), optionsFor(server)));
    expect(err.exitCode).toBe(5);
    expect(err.message).toBe(
      `cannot connect to 127.0.0.1:${port}: connection refused; check the host and port, and that an SSH server runs there (ECONNREFUSED)`,
    );
    expect(classifyError(err)).toBe('transient');
  });

  it('applies the --port override over the target', async () => {
    const { server } = fixture;
    const closed = await freePort();
    const connection = await connect(targetOf(server, { port: closed }), optionsFor(server, { port: server.port }));
    expect(connection.target.port).toBe(server.port);
  });

  it('reconnects after the first connection closed, with the same key and without asking', async () => {
    const { server } = fixture;
    const prompter = silentPrompter();
    const first = await connect(targetOf(server), optionsFor(server, { prompter }));
    await first.close();
    expect(await first.closed).toBeUndefined();
    const second = await first.reconnect();
    open.push(second);
    expect(second.authMethod).toBe('publickey');
    expect(await listRemote(second, server.remoteRoot)).toBeInstanceOf(Array);
    expect(prompter.asked).toEqual([]);
  });

  it('reconnect fails with exit 6 when the key that worked is refused now', async () => {
    const { server } = fixture;
    const authorized = join(server.tempDir, 'authorized_keys');
    const saved = await readFile(authorized, 'utf8');
    const first = await connect(targetOf(server), optionsFor(server, { prompter: silentPrompter() }));
    await first.close();
    await writeFile(authorized, '');
    try {
      const err = await failure(first.reconnect());
      expect(err.exitCode).toBe(6);
      expect(err.message).toBe(
        `authentication failed for ${server.user}@127.0.0.1 on reconnect (the server accepts publickey): the key ${server.privateKeyPath}, which worked at the first login, was refused; mount again to authenticate afresh`,
      );
    } finally {
      await writeFile(authorized, saved);
    }
  });

  describe('a passphrase-protected key', () => {
    let keyPath: string;
    beforeAll(async () => {
      keyPath = join(scratch, 'locked_ed25519');
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'open sesame', '-C', 'locked', '-f', keyPath]);
      await appendFile(join(fixture.server.tempDir, 'authorized_keys'), await readFile(`${keyPath}.pub`, 'utf8'));
    });

    it('asks for the passphrase once, then reconnects without asking', async () => {
      const { server } = fixture;
      const prompter = scriptedPrompter({ secrets: ['open sesame'] });
      const first = await connect(targetOf(server), optionsFor(server, { identityFiles: [keyPath], prompter }));
      expect(first.authMethod).toBe('publickey');
      expect(prompter.asked).toEqual([`Enter passphrase for key '${keyPath}': `]);
      await first.close();
      const second = await first.reconnect();
      open.push(second);
      expect(prompter.asked).toHaveLength(1);
    });

    it('asks again after a wrong passphrase', async () => {
      const { server } = fixture;
      const prompter = scriptedPrompter({ secrets: ['wrong', 'open sesame'] });
      await connect(targetOf(server), optionsFor(server, { identityFiles: [keyPath], prompter }));
      expect(prompter.asked).toHaveLength(2);
    });

    it('is skipped with a clear note when there is no terminal', async () => {
      const { server } = fixture;
      const err = await failure(openSsh(targetOf(server), optionsFor(server, { identityFiles: [keyPath] })));
      expect(err.exitCode).toBe(6);
      expect(err.message).toContain(`tried ${keyPath} (encrypted; no terminal to ask for its passphrase — load it into ssh-agent)`);
    });
  });

  describe('with ssh-agent', () => {
    let agent: ChildProcess | undefined;
    let socket: string;
    let lockedKey: string;

    beforeAll(async () => {
      socket = join(scratch, 'agent.sock');
      agent = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
      const deadline = Date.now() + 5_000;
      while (!existsSync(socket)) {
        if (Date.now() > deadline) throw new Error(`ssh-agent did not create ${socket} within 5 s`);
        await new Promise((r) => setTimeout(r, 20));
      }
      await run('ssh-add', ['-q', fixture.server.privateKeyPath], { env: { ...process.env, SSH_AUTH_SOCK: socket } });
      lockedKey = join(scratch, 'unrelated_ed25519');
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'x', '-f', lockedKey]);
    });

    afterAll(async () => {
      if (agent && agent.exitCode === null && agent.signalCode === null) {
        const exited = new Promise((resolve) => agent!.once('exit', resolve));
        agent.kill('SIGTERM');
        await exited;
      }
    });

    it('logs in with an agent key, says agent, and reconnects with it', async () => {
      const { server } = fixture;
      const connection = await connect(targetOf(server), optionsFor(server, { identityFiles: [], agentSocket: socket }));
      expect(connection.authMethod).toBe('agent');
      await connection.close();
      const again = await connection.reconnect();
      open.push(again);
      expect(again.authMethod).toBe('agent');
    });

    it('takes the socket from SSH_AUTH_SOCK by default', async () => {
      const { server } = fixture;
      process.env.SSH_AUTH_SOCK = socket;
      try {
        const { agentSocket: _unused, ...rest } = optionsFor(server, { identityFiles: [] });
        const connection = await connect(targetOf(server), rest);
        expect(connection.authMethod).toBe('agent');
      } finally {
        delete process.env.SSH_AUTH_SOCK;
      }
    });

    it('with IdentitiesOnly uses only agent keys that belong to the identity files', async () => {
      const { server } = fixture;
      const err = await failure(
        openSsh(
          targetOf(server),
          optionsFor(server, { identityFiles: [lockedKey], agentSocket: socket, sshOptions: { IdentitiesOnly: 'yes' } }),
        ),
      );
      expect(err.exitCode).toBe(6);
      expect(err.message).toContain(`tried agent (0 keys), ${lockedKey} (encrypted;`);
      const ok = await connect(
        targetOf(server),
        optionsFor(server, { identityFiles: [server.privateKeyPath], agentSocket: socket, sshOptions: { IdentitiesOnly: 'yes' } }),
      );
      expect(ok.authMethod).toBe('agent');
    });

    it('notes an unreachable agent and goes on to the key files', async () => {
      const { server } = fixture;
      const stranger = join(scratch, 'agentless_ed25519');
      await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
      const err = await failure(
        openSsh(targetOf(server), optionsFor(server, { identityFiles: [stranger], agentSocket: join(scratch, 'no-such.sock') })),
      );
      expect(err.message).toMatch(/tried agent \(unreachable: [^)]+\), .*agentless_ed25519;/);
    });
  });

  it('jumps through a ProxyJump host from ssh_config', async () => {
    const { server } = fixture;
    const sshConfig = [
      'Host jump',
      '  HostName 127.0.0.1',
      `  Port ${server.port}`,
      `  User ${server.user}`,
      'Host inner',
      '  HostName 127.0.0.1',
      `  Port ${server.port}`,
      '  ProxyJump jump',
      '',
    ].join('\n');
    const before = acceptedLogins(server);
    const target = targetOf(server, { alias: 'inner', proxyJump: 'jump' });
    const connection = await connect(target, optionsFor(server, { sshConfig }));
    expect(connection.authMethod).toBe('publickey');
    expect(await listRemote(connection, server.remoteRoot)).toBeInstanceOf(Array);
    // One login on the jump host, one on the target through it.
    await expect.poll(() => acceptedLogins(server) - before).toBe(2);

    await connection.close();
    const again = await connection.reconnect();
    open.push(again);
    await expect.poll(() => acceptedLogins(server) - before).toBe(4);
  });

  it('jumps through a chain given as --ssh-option ProxyJump=a,b', async () => {
    const { server } = fixture;
    const hop = `${server.user}@127.0.0.1:${server.port}`;
    const before = acceptedLogins(server);
    const connection = await connect(targetOf(server), optionsFor(server, { sshOptions: { ProxyJump: `${hop},${hop}` } }));
    expect(await listRemote(connection, server.remoteRoot)).toBeInstanceOf(Array);
    await expect.poll(() => acceptedLogins(server) - before).toBe(3);
  });

  it('offers only the ciphers asked for', async () => {
    const { server } = fixture;
    const connection = await connect(targetOf(server), optionsFor(server, { sshOptions: { Ciphers: 'aes256-ctr' } }));
    expect(connection.authMethod).toBe('publickey');
  });
});

describe('options', () => {
  it('rejects an unknown --ssh-option as a usage error naming the key', () => {
    expect(() => parseSshOptionArg('ForwardX11=yes')).toThrow(/unsupported ssh option 'ForwardX11'; tmount understands StrictHostKeyChecking, /);
    expect(() => parseSshOptionArg('StrictHostKeyChecking=maybe')).toThrow(
      /invalid value 'maybe' for ssh option StrictHostKeyChecking: expected yes, no, ask, accept-new, off/,
    );
    expect(() => parseSshOptionArg('Compression')).toThrow(/write Key=Value/);
    expect(parseSshOptionArg('serveraliveinterval=10')).toEqual(['ServerAliveInterval', '10']);
    expect(parseSshOptionArg('ConnectTimeout 7')).toEqual(['ConnectTimeout', '7']);
  });

  it('rejects unknown keys passed to openSsh before connecting', async () => {
    const target: SshTarget = { alias: 'h', hostname: '127.0.0.1', port: 1, user: 'x', identityFiles: [], path: '' };
    const err = await failure(openSsh(target, { sshConfig: '', home, sshOptions: { Tunnel: 'yes' } }));
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(/^unsupported ssh option 'Tunnel'/);
  });

  it('builds ConnectOptions from the command line and checks identity files exist', () => {
    const key = join(scratch, 'stranger_ed25519');
    expect(connectOptionsFromCli({ identity: [key], port: 2222, sshOption: ['IdentitiesOnly=yes', 'identitiesonly=no'] })).toEqual({
      identityFiles: [key],
      port: 2222,
      sshOptions: { IdentitiesOnly: 'yes' },
      acceptNewHostKey: false,
    });
    expect(() => connectOptionsFromCli({ identity: [join(scratch, 'nope')] })).toThrow(/identity file .*nope does not exist/);
  });

  it('prefers AES-GCM, then chacha20, and follows ssh Ciphers syntax', () => {
    expect(cipherList(undefined).slice(0, 2)).toEqual(['aes128-gcm@openssh.com', 'chacha20-poly1305@openssh.com']);
    expect(cipherList('aes256-ctr,aes128-ctr')).toEqual(['aes256-ctr', 'aes128-ctr']);
    expect(cipherList('^aes256-ctr')[0]).toBe('aes256-ctr');
    expect(cipherList('+aes128-cbc').at(-1)).toBe('aes128-cbc');
    expect(cipherList('-*-ctr')).not.toContain('aes128-ctr');
    expect(() => cipherList('rot13')).toThrow(/Ciphers: rot13 is not supported/);
  });

  it('on reconnect accepts only the host key accepted at the first login', async () => {
    const first = Buffer.from(generateKeyPair('ed25519').public.trim().split(/\s+/)[1]!, 'base64');
    const other = Buffer.from(generateKeyPair('ed25519').public.trim().split(/\s+/)[1]!, 'base64');
    const knownHosts = join(scratch, 'known_hosts_pinned');
    await writeFile(knownHosts, `[example.org]:2222 ssh-ed25519 ${other.toString('base64')}\n`);
    const policy: HostKeyPolicy = {
      userFiles: [knownHosts],
      globalFiles: [],
      strict: 'no',
      acceptNew: true,
      hash: false,
      prompter: undefined,
      notify: () => {},
      home,
      whilePrompting: (ask) => ask(),
      pinned: first,
    };
    const subject = { host: 'example.org', port: 2222, sshCommand: 'ssh -p 2222 example.org' };
    await expect(verifyHostKey(policy, subject, first)).resolves.toBeUndefined();
    // Even a key known_hosts now lists is refused: the mount must reach the host it started with.
    await expect(verifyHostKey(policy, subject, other)).rejects.toMatchObject({
      exitCode: 7,
      message: expect.stringMatching(/^host key of \[example\.org\]:2222 changed since tmount first connected/),
    });
  });

  it('classifies failures for the reconnect policy', () => {
    const withLevel = (message: string, level: string): Error => Object.assign(new Error(message), { level });
    const withCode = (message: string, code: unknown): Error => Object.assign(new Error(message), { code });
    expect(classifyError(new SshError('connection', 'x', 'fatal'))).toBe('fatal');
    expect(classifyError(new UserError('auth', 'x'))).toBe('auth');
    expect(classifyError(new UserError('usage', 'x'))).toBe('fatal');
    expect(classifyError(withLevel('All configured authentication methods failed', 'client-authentication'))).toBe('auth');
    expect(classifyError(withLevel('Keepalive timeout', 'client-timeout'))).toBe('transient');
    expect(classifyError(withLevel('Handshake failed: no matching cipher', 'handshake'))).toBe('fatal');
    expect(classifyError(withCode('read ECONNRESET', 'ECONNRESET'))).toBe('transient');
    expect(classifyError(withCode('Too many authentication failures', 2))).toBe('auth');
    expect(classifyError(withCode('too many connections', 12))).toBe('transient');
    expect(classifyError(withLevel('Host denied (verification failed)', 'handshake'))).toBe('hostKey');
  });
});
