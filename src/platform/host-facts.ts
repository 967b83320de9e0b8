import { accessSync, constants, existsSync } from 'node:fs';
import { homedir, release } from 'node:os';
import { join } from 'node:path';
import koffi from 'koffi';
import type { Availability, HostFacts } from '../backends/types.js';
import { probeAddon } from './addon-loader.js';

const LIBFUSE3_NAMES = ['libfuse3.so.3', 'libfuse3.so'];

/** Loading the library is the honest test: a package can be "installed" and still unloadable. */
export function probeLibrary(names: string[], hint: string): Availability {
  const errors: string[] = [];
  for (const name of names) {
    try {
      koffi.load(name);
      return { ok: true, detail: `${name} loads` };
    } catch (err) {
      errors.push(`${name}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  return { ok: false, reason: `${names[0]} cannot be loaded (${errors.join('; ')}); ${hint}` };
}

function probeDevFuse(platform: NodeJS.Platform): Availability {
  if (!existsSync('/dev/fuse')) {
    return {
      ok: false,
      reason: platform === 'freebsd'
        ? '/dev/fuse is missing; load the module with `kldload fusefs`'
        : '/dev/fuse is missing; load the module with `modprobe fuse` (containers need --device /dev/fuse)',
    };
  }
  try {
    accessSync('/dev/fuse', constants.R_OK | constants.W_OK);
    return { ok: true, detail: '/dev/fuse is usable' };
  } catch {
    return { ok: false, reason: '/dev/fuse exists but this user cannot open it; add the user to the fuse group' };
  }
}

function libfuseHint(platform: NodeJS.Platform): string {
  return platform === 'freebsd' ? 'install it with `pkg install fusefs-libs3`' : 'install it with `apt-get install fuse3` (or your distribution\'s fuse3 package)';
}

function probeFileProviderApp(env: NodeJS.ProcessEnv): Availability {
  const candidates = [env.TMOUNT_APP, '/Applications/tmount.app', join(homedir(), 'Applications', 'tmount.app')]
    .filter((path): path is string => Boolean(path));
  const found = candidates.find((app) => existsSync(join(app, 'Contents', 'PlugIns', 'tmount FileProvider.appex')));
  return found
    ? { ok: true, detail: `extension installed in ${found}` }
    : { ok: false, reason: `tmount.app with its FileProvider extension is not installed (looked in ${candidates.join(', ')}); build it with scripts/build-macos-bundle.sh` };
}

function probeNfsMountCommand(platform: NodeJS.Platform): Availability {
  const paths = platform === 'linux' ? ['/sbin/mount.nfs', '/usr/sbin/mount.nfs'] : ['/sbin/mount_nfs', '/usr/sbin/mount_nfs'];
  const found = paths.find((path) => existsSync(path));
  return found ? { ok: true, detail: `${found} present` } : { ok: false, reason: `no NFS mount command (${paths.join(' or ')})` };
}

const notHere = (what: string, platform: string): Availability => ({ ok: false, reason: `${what} does not apply on ${platform}` });

/** Gathers what the backend rules need, probing only what applies to this OS. */
export function gatherHostFacts(platform: NodeJS.Platform = process.platform, env = process.env): HostFacts {
  const fuseOs = platform === 'linux' || platform === 'freebsd';
  return {
    platform,
    osRelease: release(),
    devFuse: fuseOs ? probeDevFuse(platform) : notHere('/dev/fuse', platform),
    libfuse3: fuseOs ? probeLibrary(LIBFUSE3_NAMES, libfuseHint(platform)) : notHere('libfuse3', platform),
    fuseAddon: fuseOs ? probeAddon('fuse') : notHere('the FUSE addon', platform),
    cloudFilesAddon: platform === 'win32' ? probeAddon('cloud-files') : notHere('the Cloud Files addon', platform),
    fileProviderApp: platform === 'darwin' ? probeFileProviderApp(env) : notHere('tmount.app', platform),
    nfsMountCommand: platform === 'win32' ? notHere('mount_nfs', platform) : probeNfsMountCommand(platform),
  };
}
