import type { Backend } from '../types.js';
import { allOf, backendUnavailable, no } from '../unavailable.js';

/** Darwin 21 is macOS 12 Monterey, the first with NSFileProviderReplicatedExtension on macOS. */
const FIRST_DARWIN_MAJOR = 21;

export const fileProviderBackend: Backend = {
  name: 'fileprovider',
  summary: 'FileProvider extension shown in Finder under Locations (macOS 12+)',
  mountpointKind: 'none',
  available(facts) {
    if (facts.platform !== 'darwin') return no(`FileProvider is a macOS framework, this is ${facts.platform}`);
    const major = Number(facts.osRelease.split('.')[0]);
    if (!(major >= FIRST_DARWIN_MAJOR)) {
      return no(`Darwin ${facts.osRelease} is older than macOS 12, which FileProvider needs`);
    }
    return allOf('tmount.app with its extension is installed', facts.fileProviderApp);
  },
  async mount() {
    throw backendUnavailable('fileprovider', 'the FileProvider extension is not part of this build yet');
  },
};
