import { describe, expect, it } from 'vitest';
import { AUTO_ORDER, availabilityOf, reportBackends, selectBackend } from '../../src/backends/index.js';
import type { Availability, BackendName, HostFacts } from '../../src/backends/types.js';
import { ExitCode, UserError } from '../../src/errors.js';
import { chooseBackend } from '../../src/mount.js';

const yes = (detail = 'ok'): Availability => ({ ok: true, detail });
const no = (reason: string): Availability => ({ ok: false, reason });

/** A host where every part each backend needs is present. */
function facts(platform: NodeJS.Platform, overrides: Partial<HostFacts> = {}): HostFacts {
  const osRelease = { win32: '10.0.19045', darwin: '23.4.0' }[platform as string] ?? '6.1.0';
  return {
    platform,
    osRelease,
    devFuse: yes(),
    libfuse3: yes(),
    fuseAddon: yes(),
    cloudFilesAddon: yes(),
    fileProviderApp: yes(),
    nfsMountCommand: yes(),
    ...overrides,
  };
}

const all = (state: Availability): Record<BackendName, Availability> => ({
  fuse: state, nfs: state, 'cloud-files': state, fileprovider: state,
});

describe('selectBackend: the auto rule', () => {
  const cases: [NodeJS.Platform, Partial<Record<BackendName, Availability>>, BackendName | RegExp][] = [
    ['linux', {}, 'fuse'],
    ['linux', { fuse: no('no /dev/fuse') }, /fuse: no \/dev\/fuse/],
    ['freebsd', {}, 'fuse'],
    ['freebsd', { fuse: no('fusefs not loaded') }, 'nfs'],
    ['freebsd', { fuse: no('fusefs not loaded'), nfs: no('no mount_nfs') }, /fuse: fusefs not loaded; nfs: no mount_nfs/],
    ['win32', {}, 'cloud-files'],
    ['win32', { 'cloud-files': no('build too old') }, /cloud-files: build too old/],
    ['darwin', {}, 'fileprovider'],
    ['darwin', { fileprovider: no('app not installed') }, 'nfs'],
    ['darwin', { fileprovider: no('app not installed'), nfs: no('x') }, /fileprovider: app not installed; nfs: x/],
    ['openbsd', {}, 'nfs'],
    ['netbsd', {}, 'nfs'],
    ['openbsd', { nfs: no('no mount_nfs') }, /nfs: no mount_nfs/],
    ['aix', {}, /no backend for aix/],
  ];

  it.each(cases)('%s with %j -> %s', (platform, overrides, expected) => {
    const selection = selectBackend(platform, { ...all(yes()), ...overrides });
    if (typeof expected === 'string') {
      expect(selection).toEqual({ ok: true, backend: expected });
    } else {
      expect(selection.ok).toBe(false);
      expect(!selection.ok && selection.reason).toMatch(expected);
    }
  });

  it('never picks a backend outside the platform order, even when it is available', () => {
    expect(selectBackend('linux', { ...all(yes()), fuse: no('x') }).ok).toBe(false);
    expect(AUTO_ORDER.linux).toEqual(['fuse']);
  });
});

describe('backend availability rules', () => {
  const unavailable: [string, HostFacts, BackendName, RegExp][] = [
    ['FUSE on Windows', facts('win32'), 'fuse', /Linux and FreeBSD, this is win32/],
    ['FUSE without /dev/fuse', facts('linux', { devFuse: no('/dev/fuse is missing; load the module') }), 'fuse', /\/dev\/fuse is missing/],
    ['FUSE without libfuse3', facts('linux', { libfuse3: no('libfuse3.so.3 cannot be loaded') }), 'fuse', /libfuse3\.so\.3 cannot be loaded/],
    ['FUSE without its addon', facts('freebsd', { fuseAddon: no('the fuse addon is not built') }), 'fuse', /addon is not built/],
    ['NFS on Windows', facts('win32'), 'nfs', /Windows has no NFSv3 client/],
    ['Cloud Files on Linux', facts('linux'), 'cloud-files', /Windows API, this is linux/],
    ['Cloud Files before 1709', facts('win32', { osRelease: '10.0.15063' }), 'cloud-files', /build 15063 predates Cloud Files/],
    ['Cloud Files without its addon', facts('win32', { cloudFilesAddon: no('the cloud-files addon is not built') }), 'cloud-files', /not built/],
    ['FileProvider on Linux', facts('linux'), 'fileprovider', /macOS framework, this is linux/],
    ['FileProvider on macOS 11', facts('darwin', { osRelease: '20.6.0' }), 'fileprovider', /older than macOS 12/],
    ['FileProvider without the app', facts('darwin', { fileProviderApp: no('tmount.app is not installed') }), 'fileprovider', /not installed/],
  ];

  it.each(unavailable)('%s is unavailable with a reason', (_, host, backend, reason) => {
    const state = availabilityOf(host)[backend];
    expect(state.ok).toBe(false);
    expect(!state.ok && state.reason).toMatch(reason);
  });

  it.each([
    ['linux', 'fuse'],
    ['freebsd', 'fuse'],
    ['win32', 'cloud-files'],
    ['darwin', 'fileprovider'],
  ] as const)('a complete %s host makes %s available', (platform, backend) => {
    expect(availabilityOf(facts(platform))[backend].ok).toBe(true);
  });
});

describe('chooseBackend', () => {
  it('names the missing part when an explicit choice is unavailable', () => {
    const host = facts('linux', { devFuse: no('/dev/fuse is missing') });
    expect(() => chooseBackend('fuse', host)).toThrow(/backend 'fuse' is not available: \/dev\/fuse is missing/);
    try {
      chooseBackend('fuse', host);
    } catch (err) {
      expect((err as UserError).exitCode).toBe(ExitCode.backendUnavailable);
    }
  });

  it('lists every tried backend when auto finds none', () => {
    const host = facts('darwin', { fileProviderApp: no('no app'), nfsMountCommand: no('no /sbin/mount_nfs'), osRelease: '23.0.0' });
    expect(() => chooseBackend('auto', host)).toThrow(/fileprovider: no app; nfs: .*see 'tmount backends'/);
  });
});

describe('reportBackends', () => {
  it('lists all four backends in order with exactly one default when auto can choose', () => {
    const report = reportBackends(facts('linux'));
    expect(report.map((entry) => entry.name)).toEqual(['fuse', 'nfs', 'cloud-files', 'fileprovider']);
    expect(report.filter((entry) => entry.default).map((entry) => entry.name)).toEqual(['fuse']);
    for (const entry of report) expect(entry.reason.length).toBeGreaterThan(0);
  });
});
