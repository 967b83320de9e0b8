import type { Backend } from '../types.js';
import { allOf, backendUnavailable, no } from '../unavailable.js';

export const fuseBackend: Backend = {
  name: 'fuse',
  summary: 'kernel FUSE mount through the libfuse3 low-level API (Linux, FreeBSD)',
  mountpointKind: 'empty-dir',
  available(facts) {
    if (facts.platform !== 'linux' && facts.platform !== 'freebsd') {
      return no(`FUSE mounts run on Linux and FreeBSD, this is ${facts.platform}`);
    }
    return allOf('libfuse3 loads, /dev/fuse is usable, addon built', facts.devFuse, facts.libfuse3, facts.fuseAddon);
  },
  async mount() {
    throw backendUnavailable('fuse', 'the FUSE driver is not part of this build yet');
  },
};
