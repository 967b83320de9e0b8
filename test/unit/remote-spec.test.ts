import { describe, expect, it } from 'vitest';
import { ExitCode, UserError } from '../../src/errors.js';
import { formatRemoteSpec, parseRemoteSpec, type RemoteSpec } from '../../src/remote/spec.js';

const valid: [string, RemoteSpec][] = [
  ['alice@example.org:/srv/data', { user: 'alice', host: 'example.org', path: '/srv/data' }],
  ['example.org:/srv', { host: 'example.org', path: '/srv' }],
  ['example.org:', { host: 'example.org', path: '' }],
  ['example.org:projects/web', { host: 'example.org', path: 'projects/web' }],
  ['bob@10.0.0.5:2222:/var/www', { user: 'bob', host: '10.0.0.5', port: 2222, path: '/var/www' }],
  ['build-box:2222:', { host: 'build-box', port: 2222, path: '' }],
  // scp reads a bare number after the colon as a path, not a port.
  ['build-box:2222', { host: 'build-box', path: '2222' }],
  ['[::1]:/tmp', { host: '::1', path: '/tmp' }],
  ['carol@[fe80::1%eth0]:22:/x', { user: 'carol', host: 'fe80::1%eth0', port: 22, path: '/x' }],
  ['my_alias:/path with spaces', { host: 'my_alias', path: '/path with spaces' }],
  ['ssh://alice@example.org:2200/srv', { user: 'alice', host: 'example.org', port: 2200, path: '/srv' }],
  ['ssh://example.org', { host: 'example.org', path: '' }],
  ['ssh://[::1]:22/data', { host: '::1', port: 22, path: '/data' }],
  ['first.last@host:/', { user: 'first.last', host: 'host', path: '/' }],
];

const invalid: [string, RegExp][] = [
  ['', /it is empty/],
  ['example.org', /no ':' between host and path/],
  [':/srv', /the host is empty/],
  ['@example.org:/srv', /the user before @ is empty/],
  ['alice@:/srv', /the host is empty/],
  ['host:99999:/srv', /port 99999 is outside 1-65535/],
  ['host:0:/srv', /port 0 is outside/],
  ['bad host:/srv', /contains characters a hostname cannot have/],
  ['a@b@host:/srv', /does not split into user, host and path/],
  ['[::1/tmp', /does not split|not closed/],
  ['[nothex]:/tmp', /is not an IPv6 address/],
  ['ssh://example.org:abc/srv', /port 'abc' is not a number/],
  ['host;rm -rf:/x', /contains characters a hostname cannot have/],
];

describe('parseRemoteSpec', () => {
  it.each(valid)('parses %s', (text, expected) => {
    expect(parseRemoteSpec(text)).toEqual(expected);
  });

  it.each(invalid)('rejects %j with a one-line usage error', (text, message) => {
    let caught: unknown;
    try {
      parseRemoteSpec(text);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(UserError);
    const error = caught as UserError;
    expect(error.exitCode).toBe(ExitCode.usage);
    expect(error.message).toMatch(message);
    expect(error.message).toContain('write [user@]host[:port]:/path');
    expect(error.message).not.toContain('\n');
  });

  it('formats back to a spec that parses to the same parts', () => {
    for (const [, spec] of valid) expect(parseRemoteSpec(formatRemoteSpec(spec))).toEqual(spec);
  });
});
