import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Availability } from '../backends/types.js';
import { PACKAGE_ROOT } from './package-root.js';

const require = createRequire(import.meta.url);

export type AddonName = 'fuse' | 'cloud-files';

/** cmake-js writes build/<Config>/<target>.node inside each addon folder. */
export function addonCandidates(name: AddonName, root = PACKAGE_ROOT): string[] {
  const file = `tmount_${name.replace('-', '_')}.node`;
  return [
    join(root, 'addons', name, 'build', 'Release', file),
    join(root, 'addons', name, 'build', 'Debug', file),
    join(root, 'addons', name, 'build', file),
  ];
}

export class AddonNotBuiltError extends Error {
  constructor(name: AddonName, tried: string[]) {
    super(`the ${name} addon is not built (looked in ${tried.join(', ')}); run 'npm run build'`);
    this.name = 'AddonNotBuiltError';
  }
}

/**
 * Loads the first built copy of an addon. Only a missing file is swallowed:
 * an addon that exists but fails to load (wrong ABI, missing libfuse3) is a
 * real error and is thrown with its own message.
 */
export function loadAddon<T>(name: AddonName, root = PACKAGE_ROOT): T {
  const tried = addonCandidates(name, root);
  const found = tried.find((path) => existsSync(path));
  if (!found) throw new AddonNotBuiltError(name, tried);
  return require(found) as T;
}

export function probeAddon(name: AddonName, root = PACKAGE_ROOT): Availability {
  const tried = addonCandidates(name, root);
  const found = tried.find((path) => existsSync(path));
  if (found) return { ok: true, detail: `built at ${found}` };
  if (!existsSync(join(root, 'addons', name, 'CMakeLists.txt'))) {
    return { ok: false, reason: `the ${name} addon is not part of this build yet` };
  }
  return { ok: false, reason: `the ${name} addon is not built; run 'npm run build'` };
}
