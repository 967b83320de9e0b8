import { UserError } from '../errors.js';

/**
 * What the user typed, split into parts. `host` may still be an ssh_config
 * alias; `resolveSpec` turns it into something to connect to.
 */
export interface RemoteSpec {
  user?: string;
  host: string;
  port?: number;
  /** Absolute, or relative to the remote user's home ('' means the home itself). */
  path: string;
}

const USAGE_HINT = 'write [user@]host[:port]:/path, host:relative/path or ssh://[user@]host[:port]/path';

function malformed(spec: string, problem: string): UserError {
  return new UserError('usage', `invalid remote '${spec}': ${problem}; ${USAGE_HINT}`);
}

function parsePort(spec: string, text: string): number {
  if (!/^\d{1,5}$/.test(text)) throw malformed(spec, `port '${text}' is not a number`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw malformed(spec, `port ${port} is outside 1-65535`);
  return port;
}

// Letters, digits and the punctuation hostnames, IPv4 literals and ssh_config
// aliases use. Anything else (spaces, shell metacharacters) is a typo.
const HOST_RE = /^[A-Za-z0-9._-]+$/;
const USER_RE = /^[A-Za-z0-9._][A-Za-z0-9._@-]*$/;

function checkHost(spec: string, host: string, bracketed: boolean): void {
  if (host === '') throw malformed(spec, 'the host is empty');
  if (bracketed) {
    if (!/^[0-9A-Fa-f:.]+(%[A-Za-z0-9._-]+)?$/.test(host) || !host.includes(':')) {
      throw malformed(spec, `'[${host}]' is not an IPv6 address`);
    }
  } else if (!HOST_RE.test(host)) {
    throw malformed(spec, `host '${host}' contains characters a hostname cannot have`);
  }
}

function checkUser(spec: string, user: string | undefined): void {
  if (user === undefined) return;
  if (!USER_RE.test(user)) throw malformed(spec, `user '${user}' is not a valid user name`);
}

function parseUrl(spec: string): RemoteSpec {
  const m = /^ssh:\/\/(?:([^@/]*)@)?(\[[^\]]*\]|[^:/]*)(?::([^/]*))?(\/.*)?$/.exec(spec);
  if (!m) throw malformed(spec, 'it is not an ssh:// URL');
  const [, user, rawHost = '', portText, path] = m;
  const bracketed = rawHost.startsWith('[');
  const host = bracketed ? rawHost.slice(1, -1) : rawHost;
  checkUser(spec, user);
  checkHost(spec, host, bracketed);
  const result: RemoteSpec = { host, path: path ?? '' };
  if (user !== undefined) result.user = user;
  if (portText !== undefined) result.port = parsePort(spec, portText);
  return result;
}

/**
 * Parses `[user@]host[:port]:path` (scp style, with `[v6]` brackets) and
 * `ssh://[user@]host[:port]/path`. A relative path is relative to the remote
 * home, as with scp and sshfs.
 */
export function parseRemoteSpec(spec: string): RemoteSpec {
  if (spec.trim() === '') throw malformed(spec, 'it is empty');
  if (spec.startsWith('ssh://')) return parseUrl(spec);

  if (!spec.includes(':')) {
    throw malformed(spec, "there is no ':' between host and path (use 'host:' for the home directory)");
  }
  const m = /^(?:([^@:/]*)@)?(\[[^\]]*\]|[^:@[\]]*):(.*)$/s.exec(spec);
  if (!m) throw malformed(spec, 'it does not split into user, host and path');
  const [, user, rawHost = ''] = m;
  let rest = m[3] ?? '';
  if (user === '') throw malformed(spec, 'the user before @ is empty');
  const bracketed = rawHost.startsWith('[');
  const host = bracketed ? rawHost.slice(1, -1) : rawHost;
  checkUser(spec, user);
  checkHost(spec, host, bracketed);

  // `host:2222:/srv` — a port is digits followed by another colon. `host:2222`
  // alone is a relative path named 2222, as scp reads it.
  let port: number | undefined;
  const portMatch = /^(\d+):(.*)$/s.exec(rest);
  if (portMatch) {
    port = parsePort(spec, portMatch[1]!);
    rest = portMatch[2]!;
  }
  if (rest.includes('\0')) throw malformed(spec, 'the path contains a NUL byte');

  const result: RemoteSpec = { host, path: rest };
  if (user !== undefined) result.user = user;
  if (port !== undefined) result.port = port;
  return result;
}

export function formatRemoteSpec(spec: RemoteSpec): string {
  const host = spec.host.includes(':') ? `[${spec.host}]` : spec.host;
  const user = spec.user ? `${spec.user}@` : '';
  const port = spec.port ? `${spec.port}:` : '';
  return `${user}${host}:${port}${spec.path}`;
}
