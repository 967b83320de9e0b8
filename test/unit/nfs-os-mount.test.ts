import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { exportPathFor, nfsBackend } from '../../src/backends/nfs/index.js';
import { osMountCommand, osUnmountCommand, runOsMount, type OsMountSpec } from '../../src/backends/nfs/os-mount.js';
import { encodeMapping, PmapProc, portmapCall } from '../../src/backends/nfs/portmap.js';
import { decodeCallBody, frameRecord, RecordDecoder } from '../../src/backends/nfs/rpc.js';
import { XdrReader, XdrWriter } from '../../src/backends/nfs/xdr.js';
import type { Availability, HostFacts } from '../../src/backends/types.js';

const spec = (platform: NodeJS.Platform, overrides: Partial<OsMountSpec> = {}): OsMountSpec => ({
  platform,
  port: 40123,
  mountPort: 40123,
  exportPath: '/srv/data',
  mountpoint: '/home/alice/data',
  readonly: false,
  insecure: false,
  ...overrides,
});

describe('OS mount command lines', () => {
  it('Linux: mount -t nfs with both ports, TCP, v3, no NLM, no NFSACL', () => {
    expect(osMountCommand(spec('linux'))).toEqual({
      command: {
        file: 'mount',
        args: [
          '-t',
          'nfs',
          '-o',
          'vers=3,proto=tcp,port=40123,mountvers=3,mountproto=tcp,mountport=40123,nolock,noacl,soft,sec=sys,rw',
          '127.0.0.1:/srv/data',
          '/home/alice/data',
        ],
      },
      register: [],
    });
    expect(osMountCommand(spec('linux', { readonly: true })).command.args[3]).toMatch(/,ro$/);
  });

  it('macOS: mount_nfs with port and mountport, local locks, hidden from Finder, reserved port unless insecure', () => {
    expect(osMountCommand(spec('darwin'))).toEqual({
      command: {
        file: '/sbin/mount_nfs',
        args: ['-o', 'vers=3,tcp,port=40123,mountport=40123,locallocks,nobrowse,soft,intr,resvport', '127.0.0.1:/srv/data', '/home/alice/data'],
      },
      register: [],
    });
    expect(osMountCommand(spec('darwin', { insecure: true, readonly: true })).command.args[1]).toBe(
      'vers=3,tcp,port=40123,mountport=40123,locallocks,nobrowse,soft,intr,rdonly',
    );
  });

  it('FreeBSD: mount_nfs with port=, one attempt, MOUNT registered with rpcbind', () => {
    expect(osMountCommand(spec('freebsd', { mountPort: 40124 }))).toEqual({
      command: {
        file: '/sbin/mount_nfs',
        args: ['-o', 'nfsv3,tcp,port=40123,nolockd,soft,intr,retrycnt=1', '127.0.0.1:/srv/data', '/home/alice/data'],
      },
      register: [{ prog: 100005, vers: 3, port: 40124 }],
    });
  });

  it('OpenBSD: mount_nfs -R 1 with port=, MOUNT registered with portmap', () => {
    expect(osMountCommand(spec('openbsd', { readonly: true }))).toEqual({
      command: {
        file: '/sbin/mount_nfs',
        args: ['-R', '1', '-o', 'nfsv3,tcp,port=40123,soft,intr,rdonly', '127.0.0.1:/srv/data', '/home/alice/data'],
      },
      register: [{ prog: 100005, vers: 3, port: 40123 }],
    });
  });

  it('NetBSD: mount_nfs -R 1, NFS and MOUNT both registered with rpcbind', () => {
    expect(osMountCommand(spec('netbsd'))).toEqual({
      command: { file: '/sbin/mount_nfs', args: ['-R', '1', '-o', 'nfsv3,tcp,soft,intr', '127.0.0.1:/srv/data', '/home/alice/data'] },
      register: [
        { prog: 100003, vers: 3, port: 40123 },
        { prog: 100005, vers: 3, port: 40123 },
      ],
    });
  });

  it('has no command for Windows', () => {
    expect(() => osMountCommand(spec('win32'))).toThrow(/cannot mount NFS on win32/);
  });

  it.each([
    ['linux', false, { file: 'umount', args: ['/m'] }],
    ['linux', true, { file: 'umount', args: ['-f', '-l', '/m'] }],
    ['darwin', false, { file: '/usr/sbin/diskutil', args: ['unmount', '/m'] }],
    ['darwin', true, { file: '/usr/sbin/diskutil', args: ['unmount', 'force', '/m'] }],
    ['freebsd', false, { file: '/sbin/umount', args: ['/m'] }],
    ['openbsd', true, { file: '/sbin/umount', args: ['-f', '/m'] }],
    ['netbsd', false, { file: '/sbin/umount', args: ['/m'] }],
  ] as const)('unmounts on %s (force %s)', (platform, force, expected) => {
    expect(osUnmountCommand(platform, '/m', force)).toEqual(expected);
  });
});

describe('export path', () => {
  it.each([
    ['/srv/data', '/srv/data'],
    ['/srv/data/', '/srv/data'],
    ['/srv//data/../x', '/srv/x'],
    ['/', '/'],
    ['', '/~'],
    ['~', '/~'],
    ['projects/web', '/~/projects/web'],
    ['~/projects/', '/~/projects'],
  ])('%j is exported as %j', (remote, expected) => {
    expect(exportPathFor(remote)).toBe(expected);
  });
});

describe('nfs backend availability', () => {
  const yes = (detail: string): Availability => ({ ok: true, detail });
  const facts = (platform: NodeJS.Platform, nfsMountCommand: Availability): HostFacts => ({
    platform,
    osRelease: '1',
    devFuse: yes('x'),
    libfuse3: yes('x'),
    fuseAddon: yes('x'),
    cloudFilesAddon: yes('x'),
    fileProviderApp: yes('x'),
    nfsMountCommand,
  });

  it.each(['linux', 'darwin', 'freebsd', 'openbsd', 'netbsd'] as const)('is available on %s with a mount command, and says which', (platform) => {
    expect(nfsBackend.available(facts(platform, yes('/sbin/mount_nfs present')))).toEqual({ ok: true, detail: 'loopback NFSv3 server, mounted with /sbin/mount_nfs' });
  });

  it('without a mount command, names it and points at --no-os-mount', () => {
    const state = nfsBackend.available(facts('linux', { ok: false, reason: 'no NFS mount command (/sbin/mount.nfs or /usr/sbin/mount.nfs)' }));
    expect(state).toEqual({
      ok: false,
      reason: 'no NFS mount command (/sbin/mount.nfs or /usr/sbin/mount.nfs); the NFS server alone still runs with --no-os-mount, for a user-space NFS client',
    });
  });

  it('is unavailable on Windows', () => {
    expect(nfsBackend.available(facts('win32', yes('x'))).ok).toBe(false);
  });
});

/** A portmapper that records each call and answers with `answer`. */
async function fakePortmapper(answer: (proc: number) => boolean | 'drop'): Promise<{ port: number; calls: { proc: number; args: Buffer; raw: Buffer }[]; server: Server }> {
  const calls: { proc: number; args: Buffer; raw: Buffer }[] = [];
  const server = createServer((socket) => {
    const decoder = new RecordDecoder(4096);
    socket.on('data', (chunk: Buffer) => {
      for (const record of decoder.push(chunk)) {
        const r = new XdrReader(record);
        const xid = r.u32();
        r.u32();
        const header = decodeCallBody(xid, r);
        const args = record.subarray(r.position);
        calls.push({ proc: header.proc, args, raw: record });
        const result = answer(header.proc);
        if (result === 'drop') {
          socket.destroy();
          return;
        }
        socket.write(frameRecord(new XdrWriter().u32(xid).u32(1).u32(0).u32(0).u32(0).u32(0).bool(result).toBuffer()));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as { port: number }).port, calls, server };
}

describe('portmapper registration (BSD mounts)', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await new Promise((resolve) => server.close(resolve));
  });

  it('encodes a PMAP mapping for TCP', () => {
    expect(encodeMapping({ prog: 100005, vers: 3, port: 40123 }).toString('hex')).toBe('000186a5' + '00000003' + '00000006' + '00009cbb');
  });

  it('sends PMAPPROC_SET and reads the boolean answer', async () => {
    const fake = await fakePortmapper(() => true);
    servers.push(fake.server);
    expect(await portmapCall(PmapProc.set, { prog: 100005, vers: 3, port: 40123 }, { port: fake.port, reservedSource: false })).toBe(true);
    expect(fake.calls).toHaveLength(1);
    expect(fake.calls[0]!.proc).toBe(PmapProc.set);
    expect(fake.calls[0]!.args.toString('hex')).toBe('000186a5000000030000000600009cbb');
    // PMAP program 100000 version 2, with AUTH_SYS credentials.
    expect(fake.calls[0]!.raw.subarray(8, 28).toString('hex')).toBe('00000002' + '000186a0' + '00000002' + '00000001' + '00000001');
  });

  it('registers around the mount command and takes the registration back when the command fails', async () => {
    const fake = await fakePortmapper(() => true);
    servers.push(fake.server);
    // /sbin/mount_nfs does not exist on this Linux machine: the command fails after registering.
    await expect(runOsMount(spec('freebsd', { mountpoint: '/nonexistent' }), { port: fake.port, reservedSource: false })).rejects.toThrow(
      /\/sbin\/mount_nfs -o nfsv3,tcp,port=40123,nolockd,soft,intr,retrycnt=1 127\.0\.0\.1:\/srv\/data \/nonexistent/,
    );
    expect(fake.calls.map((call) => call.proc)).toEqual([PmapProc.set, PmapProc.unset]);
  });

  it('refuses to mount when the MOUNT program is already registered', async () => {
    const fake = await fakePortmapper((proc) => proc !== PmapProc.set);
    servers.push(fake.server);
    await expect(runOsMount(spec('openbsd'), { port: fake.port, reservedSource: false })).rejects.toThrow(/already has program 100005 version 3 registered/);
    expect(fake.calls.map((call) => call.proc)).toEqual([PmapProc.set]);
  });

  it('says what to start when no portmapper answers', async () => {
    const fake = await fakePortmapper(() => 'drop');
    servers.push(fake.server);
    await expect(runOsMount(spec('netbsd'), { port: fake.port, reservedSource: false, timeoutMs: 2_000 })).rejects.toThrow(
      /finds the MOUNT service through the portmapper, which cannot be reached .*start rpcbind/,
    );
  });
});
