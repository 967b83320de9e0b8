import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { UserError } from '../errors.js';

/**
 * The ssh_config(5) keywords tmount understands, in their canonical spelling.
 * Each is accepted from `--ssh-option Key=Value` and read from ~/.ssh/config;
 * the check on the value is the one ssh applies.
 */
const KEYWORDS = {
  StrictHostKeyChecking: oneOf(['yes', 'no', 'ask', 'accept-new', 'off']),
  UserKnownHostsFile: anyText,
  GlobalKnownHostsFile: anyText,
  HashKnownHosts: oneOf(['yes', 'no']),
  HostKeyAlias: anyText,
  IdentitiesOnly: oneOf(['yes', 'no']),
  IdentityAgent: anyText,
  PubkeyAuthentication: oneOf(['yes', 'no']),
  PasswordAuthentication: oneOf(['yes', 'no']),
  KbdInteractiveAuthentication: oneOf(['yes', 'no']),
  BatchMode: oneOf(['yes', 'no']),
  ConnectTimeout: seconds(false),
  ServerAliveInterval: seconds(true),
  ServerAliveCountMax: seconds(true),
  Compression: oneOf(['yes', 'no']),
  Ciphers: anyText,
  ProxyJump: anyText,
} satisfies Record<string, (value: string) => string | undefined>;

export type SshOptionKey = keyof typeof KEYWORDS;
export const SSH_OPTION_KEYS = Object.keys(KEYWORDS) as SshOptionKey[];

function oneOf(values: string[]): (value: string) => string | undefined {
  return (value) => (values.includes(value.toLowerCase()) ? undefined : `expected ${values.join(', ')}`);
}

function anyText(value: string): string | undefined {
  return value.trim() === '' ? 'the value is empty' : undefined;
}

function seconds(zeroAllowed: boolean): (value: string) => string | undefined {
  return (value) => {
    if (!/^\d{1,7}$/.test(value)) return 'expected a whole number';
    return !zeroAllowed && Number(value) === 0 ? 'expected a number above 0' : undefined;
  };
}

export function canonicalSshOptionKey(key: string): SshOptionKey | undefined {
  const lower = key.toLowerCase();
  // ChallengeResponseAuthentication is the older name ssh still accepts.
  if (lower === 'challengeresponseauthentication') return 'KbdInteractiveAuthentication';
  return SSH_OPTION_KEYS.find((k) => k.toLowerCase() === lower);
}

function unsupported(key: string): UserError {
  return new UserError('usage', `unsupported ssh option '${key}'; tmount understands ${SSH_OPTION_KEYS.join(', ')}`);
}

/** Checks one option and returns its canonical key. */
export function checkSshOption(key: string, value: string): SshOptionKey {
  const canonical = canonicalSshOptionKey(key);
  if (!canonical) throw unsupported(key);
  const problem = KEYWORDS[canonical](value);
  if (problem) throw new UserError('usage', `invalid value '${value}' for ssh option ${canonical}: ${problem}`);
  return canonical;
}

/** Parses `Key=Value` (or `Key Value`, as `ssh -o` also accepts). */
export function parseSshOptionArg(text: string): [SshOptionKey, string] {
  const m = /^\s*([A-Za-z][A-Za-z0-9]*)\s*(?:=|\s)\s*(.*?)\s*$/.exec(text);
  if (!m || m[2] === '') {
    throw new UserError('usage', `invalid --ssh-option '${text}'; write Key=Value, e.g. --ssh-option StrictHostKeyChecking=accept-new`);
  }
  const key = checkSshOption(m[1]!, m[2]!);
  return [key, m[2]!];
}

/** Validates a whole record (API callers may bypass the CLI) and canonicalizes its keys. */
export function normalizeSshOptions(options: Record<string, string> | undefined): Partial<Record<SshOptionKey, string>> {
  const out: Partial<Record<SshOptionKey, string>> = {};
  for (const [key, value] of Object.entries(options ?? {})) {
    const canonical = checkSshOption(key, value);
    // As on the ssh command line, the first value given for a keyword wins.
    if (out[canonical] === undefined) out[canonical] = value;
  }
  return out;
}

export function parsePortOption(text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) < 1 || Number(text) > 65535) {
    throw new UserError('usage', `invalid --port '${text}'; give a number from 1 to 65535`);
  }
  return Number(text);
}

export function expandHome(path: string, home: string = homedir()): string {
  return path === '~' ? home : path.startsWith('~/') ? join(home, path.slice(2)) : path;
}

/** What the `mount` command line says about connecting, before any defaults. */
export interface ConnectFlags {
  identity?: string[];
  port?: number;
  sshOption?: string[];
  acceptNewHostKey?: boolean;
}

/**
 * The connect-related options of the command line, validated: every
 * `--ssh-option` is a keyword tmount understands and every `--identity` is a
 * readable file. The result is the flag part of `ConnectOptions`; the caller
 * adds the prompter and the ssh_config text.
 */
export function connectOptionsFromCli(
  flags: ConnectFlags,
  cwd: string = process.cwd(),
): { identityFiles: string[]; port?: number; sshOptions: Record<string, string>; acceptNewHostKey: boolean } {
  const sshOptions: Record<string, string> = {};
  for (const text of flags.sshOption ?? []) {
    const [key, value] = parseSshOptionArg(text);
    if (sshOptions[key] === undefined) sshOptions[key] = value;
  }
  const identityFiles = (flags.identity ?? []).map((file) => {
    const expanded = expandHome(file);
    const path = isAbsolute(expanded) ? expanded : resolve(cwd, expanded);
    if (!existsSync(path)) throw new UserError('usage', `identity file ${file} does not exist; pass the private key file to --identity`);
    if (!statSync(path).isFile()) throw new UserError('usage', `identity file ${file} is not a file; pass the private key file to --identity`);
    return path;
  });
  const result: ReturnType<typeof connectOptionsFromCli> = {
    identityFiles,
    sshOptions,
    acceptNewHostKey: flags.acceptNewHostKey ?? false,
  };
  if (flags.port !== undefined) result.port = flags.port;
  return result;
}
