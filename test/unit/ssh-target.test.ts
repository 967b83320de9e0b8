import { describe, expect, it } from 'vitest';
import { parseRemoteSpec } from '../../src/remote/spec.js';
import { resolveTarget } from '../../src/remote/target.js';

const env = { localUser: 'me', home: '/home/me' };
const config = `
Host build-box
  HostName 192.168.7.20
  User builder
  Port 2201
  IdentityFile ~/.ssh/build_ed25519
  IdentityFile /etc/keys/shared
  ProxyJump bastion.example.org

Host *.lab
  User labuser
  HostName %h.internal

Host *
  ProxyJump none
`;

describe('resolveTarget', () => {
  it('expands an ssh_config alias to host, user, port, keys and jump host', () => {
    expect(resolveTarget(parseRemoteSpec('build-box:/srv'), config, env)).toEqual({
      alias: 'build-box',
      hostname: '192.168.7.20',
      port: 2201,
      user: 'builder',
      identityFiles: ['/home/me/.ssh/build_ed25519', '/etc/keys/shared'],
      proxyJump: 'bastion.example.org',
      path: '/srv',
    });
  });

  it('lets the user and port typed in the spec win over the config', () => {
    const target = resolveTarget(parseRemoteSpec('root@build-box:2299:/x'), config, env);
    expect(target.user).toBe('root');
    expect(target.port).toBe(2299);
    expect(target.hostname).toBe('192.168.7.20');
  });

  it('applies wildcard sections and %h', () => {
    const target = resolveTarget(parseRemoteSpec('gpu1.lab:data'), config, env);
    expect(target).toMatchObject({ hostname: 'gpu1.lab.internal', user: 'labuser', port: 22, path: 'data' });
    expect(target.proxyJump).toBeUndefined();
  });

  it('falls back to the local user and port 22 without any config', () => {
    expect(resolveTarget(parseRemoteSpec('example.org:/srv'), '', env)).toEqual({
      alias: 'example.org', hostname: 'example.org', port: 22, user: 'me', identityFiles: [], path: '/srv',
    });
  });
});
