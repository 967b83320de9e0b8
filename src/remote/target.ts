import { readFile } from 'node:fs/promises';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import SSHConfig from 'ssh-config';
import type { RemoteSpec } from './spec.js';

/** Where to connect and as whom, after ssh_config has had its say. */
export interface SshTarget {
  /** The name the user typed (an alias, or the host itself). */
  alias: string;
  hostname: string;
  port: number;
  user: string;
  identityFiles: string[];
  proxyJump?: string;
  path: string;
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

function all(value: string | string[] | undefined): string[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

function expandTilde(path: string, home: string): string {
  return path === '~' ? home : path.startsWith('~/') ? join(home, path.slice(2)) : path;
}

/**
 * Applies ssh_config(5) to a parsed spec. Explicit parts of the spec win over
 * the config, as they do on the ssh command line.
 */
export function resolveTarget(
  spec: RemoteSpec,
  configText: string,
  env: { localUser: string; home: string } = { localUser: userInfo().username, home: homedir() },
): SshTarget {
  // ssh_config keywords are case-insensitive; ignoreCase hands them back lowercased.
  const computed = SSHConfig.parse(configText).compute(spec.host, { ignoreCase: true });
  const hostname = first(computed.hostname) ?? spec.host;
  const portText = first(computed.port);
  const configPort = portText !== undefined && /^\d+$/.test(portText) ? Number(portText) : undefined;
  const target: SshTarget = {
    alias: spec.host,
    hostname: hostname.replaceAll('%h', spec.host),
    port: spec.port ?? configPort ?? 22,
    user: spec.user ?? first(computed.user) ?? env.localUser,
    identityFiles: all(computed.identityfile).map((file) => expandTilde(file, env.home)),
    path: spec.path,
  };
  const proxyJump = first(computed.proxyjump);
  if (proxyJump !== undefined && proxyJump.toLowerCase() !== 'none') target.proxyJump = proxyJump;
  return target;
}

export async function readUserSshConfig(home = homedir()): Promise<string> {
  try {
    return await readFile(join(home, '.ssh', 'config'), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return '';
    throw err;
  }
}
