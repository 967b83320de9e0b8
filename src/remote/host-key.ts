import { mkdir, readFile, appendFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { describeCause } from '../errors.js';
import type { Prompter } from './auth.js';
import {
  fingerprintSha256,
  formatKnownHostsLine,
  keyTypeLabel,
  keyTypeOfBlob,
  knownHostsName,
  lookupHostKey,
  parseKnownHosts,
  type KnownHostEntry,
} from './known-hosts.js';
import { SshError } from './ssh-error.js';

export type StrictHostKeyChecking = 'yes' | 'no' | 'ask' | 'accept-new';

export interface HostKeyPolicy {
  /** The user's files; a newly accepted key is appended to the first. */
  userFiles: string[];
  /** Read, never written (/etc/ssh/ssh_known_hosts). */
  globalFiles: string[];
  strict: StrictHostKeyChecking;
  /** --accept-new-host-key: record an unknown key without asking. */
  acceptNew: boolean;
  hash: boolean;
  prompter: Prompter | undefined;
  notify: (message: string) => void;
  home: string;
  whilePrompting<T>(ask: () => Promise<T>): Promise<T>;
  /** The key accepted at the first login; a reconnect takes it without asking. */
  pinned?: Buffer;
}

export interface HostKeySubject {
  /** The name known_hosts is searched for: HostName, or HostKeyAlias. */
  host: string;
  /** 22 when HostKeyAlias is used: the alias is stored bare, as ssh does. */
  port: number;
  /** How to reach the host with ssh, for the "connect once with ssh" hint. */
  sshCommand: string;
}

export async function readKnownHostsFiles(paths: readonly string[]): Promise<KnownHostEntry[]> {
  const entries: KnownHostEntry[] = [];
  for (const path of paths) {
    try {
      entries.push(...parseKnownHosts(await readFile(path, 'utf8'), path));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') continue;
      throw new SshError('hostKey', `cannot read the known hosts file ${path}: ${describeCause(err)}; fix its permissions, or name another with --ssh-option UserKnownHostsFile=...`, 'fatal', err);
    }
  }
  return entries;
}

function tildify(path: string, home: string): string {
  return path === home ? '~' : path.startsWith(`${home}/`) ? `~/${path.slice(home.length + 1)}` : path;
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", `'\\''`)}'`;
}

async function appendLine(path: string, line: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  let prefix = '';
  try {
    const existing = await readFile(path);
    if (existing.length > 0 && existing[existing.length - 1] !== 0x0a) prefix = '\n';
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  await appendFile(path, `${prefix}${line}\n`, { mode: 0o644 });
}

/**
 * Decides whether to trust `keyBlob` as the host key of `subject`, as ssh's
 * StrictHostKeyChecking does, and records a newly accepted key. Throws an
 * SshError of kind 'hostKey' when the key must not be trusted.
 */
export async function verifyHostKey(policy: HostKeyPolicy, subject: HostKeySubject, keyBlob: Buffer): Promise<void> {
  const keyType = keyTypeOfBlob(keyBlob);
  const name = knownHostsName(subject.host, subject.port);
  const fingerprint = fingerprintSha256(keyBlob);
  const described = `${keyTypeLabel(keyType)} ${fingerprint}`;
  const entries = await readKnownHostsFiles([...policy.userFiles, ...policy.globalFiles]);
  const found = lookupHostKey(entries, subject.host, subject.port, keyType, keyBlob);

  if (found.status === 'revoked') {
    const where = `${tildify(found.entry!.file, policy.home)}:${found.entry!.line}`;
    throw new SshError(
      'hostKey',
      `host key of ${name} (${described}) is marked @revoked in ${where}; refusing to connect — the host's administrator must install a new key`,
      'hostKey',
    );
  }
  // A reconnect must reach the host the user accepted, even if known_hosts
  // has been edited since: anything else needs a fresh mount.
  if (policy.pinned) {
    if (policy.pinned.equals(keyBlob)) return;
    throw new SshError(
      'hostKey',
      `host key of ${name} changed since tmount first connected (now ${described}, was ${fingerprintSha256(policy.pinned)}); someone may be intercepting the connection — check the key, then mount again`,
      'hostKey',
    );
  }
  if (found.status === 'match') return;

  if (found.status === 'changed') {
    const entry = found.entry!;
    const where = `${tildify(entry.file, policy.home)}:${entry.line}`;
    const defaultFile = join(policy.home, '.ssh', 'known_hosts');
    const fileFlag = entry.file === defaultFile ? '' : ` -f ${shellQuote(entry.file)}`;
    throw new SshError(
      'hostKey',
      `host key for ${name} has CHANGED (now ${fingerprint}, known_hosts line ${where} has another key); someone may be intercepting the connection, or the host was reinstalled — remove the old key with: ssh-keygen -R ${shellQuote(name)}${fileFlag}`,
      'hostKey',
    );
  }

  const record = async (): Promise<void> => {
    const file = policy.userFiles[0];
    if (!file) return;
    const line = formatKnownHostsLine(subject.host, subject.port, keyType, keyBlob, { hash: policy.hash });
    try {
      await appendLine(file, line);
      policy.notify(`added the ${described} host key of ${name} to ${tildify(file, policy.home)}`);
    } catch (err) {
      // ssh connects anyway when it cannot record the key; so do we, and say so.
      policy.notify(`could not add the host key of ${name} to ${tildify(file, policy.home)}: ${describeCause(err)}`);
    }
  };

  switch (policy.strict) {
    case 'no':
      policy.notify(`accepting the unknown ${described} host key of ${name} (StrictHostKeyChecking=no); it is not recorded`);
      return;
    case 'accept-new':
      await record();
      return;
    case 'yes':
      throw new SshError(
        'hostKey',
        `host key of ${name} (${described}) is not in known_hosts and StrictHostKeyChecking is yes; connect once with ${subject.sshCommand} to check and record it`,
        'hostKey',
      );
    case 'ask':
      break;
  }
  if (policy.acceptNew) {
    await record();
    return;
  }
  const prompter = policy.prompter;
  if (!prompter) {
    throw new SshError(
      'hostKey',
      `host key of ${name} (${described}) is not known and there is no terminal to confirm it; connect once with ${subject.sshCommand}, or pass --accept-new-host-key`,
      'hostKey',
    );
  }
  const question =
    `The authenticity of host '${name}' can't be established.\n` +
    `${keyTypeLabel(keyType)} key fingerprint is ${fingerprint}.\n` +
    'Are you sure you want to continue connecting (yes/no)? ';
  const yes = await policy.whilePrompting(() => prompter.askYesNo(question));
  if (!yes) {
    throw new SshError('hostKey', `host key of ${name} (${described}) was not accepted; nothing was connected`, 'hostKey');
  }
  await record();
}
