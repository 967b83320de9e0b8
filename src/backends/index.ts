import { cloudFilesBackend } from './cloud-files/index.js';
import { fileProviderBackend } from './fileprovider/index.js';
import { fuseBackend } from './fuse/index.js';
import { nfsBackend } from './nfs/index.js';
import type { Availability, Backend, BackendName, HostFacts } from './types.js';

export const BACKENDS: Record<BackendName, Backend> = {
  fuse: fuseBackend,
  nfs: nfsBackend,
  'cloud-files': cloudFilesBackend,
  fileprovider: fileProviderBackend,
};

/**
 * The auto rule, in order of preference per platform. The first available
 * entry wins; NFS is the fallback where the native integration is missing.
 */
export const AUTO_ORDER: Partial<Record<NodeJS.Platform, BackendName[]>> = {
  linux: ['fuse'],
  freebsd: ['fuse', 'nfs'],
  win32: ['cloud-files'],
  darwin: ['fileprovider', 'nfs'],
  openbsd: ['nfs'],
  netbsd: ['nfs'],
};

export type Selection =
  | { ok: true; backend: BackendName }
  | { ok: false; reason: string };

export function selectBackend(
  platform: NodeJS.Platform,
  availability: Record<BackendName, Availability>,
): Selection {
  const order = AUTO_ORDER[platform];
  if (!order) return { ok: false, reason: `tmount has no backend for ${platform}` };
  const chosen = order.find((name) => availability[name].ok);
  if (chosen) return { ok: true, backend: chosen };
  const reasons = order.map((name) => {
    const state = availability[name];
    return `${name}: ${state.ok ? 'available' : state.reason}`;
  });
  return { ok: false, reason: reasons.join('; ') };
}

export function availabilityOf(facts: HostFacts): Record<BackendName, Availability> {
  return {
    fuse: BACKENDS.fuse.available(facts),
    nfs: BACKENDS.nfs.available(facts),
    'cloud-files': BACKENDS['cloud-files'].available(facts),
    fileprovider: BACKENDS.fileprovider.available(facts),
  };
}

export interface BackendReport {
  name: BackendName;
  available: boolean;
  reason: string;
  default: boolean;
}

/** What `tmount backends` prints: every backend, in registry order. */
export function reportBackends(facts: HostFacts): BackendReport[] {
  const availability = availabilityOf(facts);
  const selection = selectBackend(facts.platform, availability);
  return Object.values(BACKENDS).map(({ name }) => {
    const state = availability[name];
    return {
      name,
      available: state.ok,
      reason: state.ok ? state.detail : state.reason,
      default: selection.ok && selection.backend === name,
    };
  });
}
