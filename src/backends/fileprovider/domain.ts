import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import { formatRemoteSpec } from '../../remote/spec.js';
import type { SshTarget } from '../../remote/target.js';

export const DOMAIN_PREFIX = 'tmount-';

export interface DomainIdentity {
  /** NSFileProviderDomainIdentifier: `tmount-<key>` (no '/' or ':', which FileProvider forbids). */
  identifier: string;
  /** 12 hex digits naming the domain's socket and files in the App Group container. */
  key: string;
  /** What Finder shows in its sidebar. */
  displayName: string;
  /** The root folder's name (FileProvider requires one; Finder may show it). */
  rootName: string;
}

/**
 * One domain per remote folder: the same user, host, port and path always
 * give the same identifier, so a mount made again finds what the system
 * kept of the last one, and two folders of one host never share a domain.
 */
export function domainFor(target: Pick<SshTarget, 'user' | 'alias' | 'hostname' | 'port' | 'path'>): DomainIdentity {
  const path = target.path === '' ? '' : posix.normalize(target.path).replace(/(.)\/$/, '$1');
  const key = createHash('sha256').update(`${target.user}\0${target.hostname.toLowerCase()}\0${target.port}\0${path}`).digest('hex').slice(0, 12);
  const shown = formatRemoteSpec({ user: target.user, host: target.alias, path, ...(target.port !== 22 ? { port: target.port } : {}) });
  const last = posix.basename(path);
  return {
    identifier: `${DOMAIN_PREFIX}${key}`,
    key,
    displayName: `tmount — ${shown}`,
    rootName: last === '' || last === '/' || last === '.' ? target.alias : last,
  };
}

export function keyOf(identifier: string): string | undefined {
  return identifier.startsWith(DOMAIN_PREFIX) ? identifier.slice(DOMAIN_PREFIX.length) : undefined;
}

/**
 * tmount's domains that no running mount serves: left behind by a mount
 * process that died without unmounting. Only domains the system listed are
 * returned, so nothing is ever removed that does not exist.
 */
export function staleDomains(listed: { identifier: string }[], keep: string, isServed: (key: string) => boolean): string[] {
  return listed
    .map((domain) => domain.identifier)
    .filter((identifier) => {
      const key = keyOf(identifier);
      return key !== undefined && identifier !== keep && !isServed(key);
    });
}
