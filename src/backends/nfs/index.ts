import type { Backend } from '../types.js';
import { backendUnavailable, no } from '../unavailable.js';

export const nfsBackend: Backend = {
  name: 'nfs',
  summary: 'loopback NFSv3 server mounted by the OS NFS client (BSDs, macOS fallback)',
  mountpointKind: 'empty-dir',
  available(facts) {
    if (facts.platform === 'win32') return no('Windows has no NFSv3 client to mount a loopback export with');
    return no('the NFS server is not part of this build yet');
  },
  async mount() {
    throw backendUnavailable('nfs', 'the NFS server is not part of this build yet');
  },
};
