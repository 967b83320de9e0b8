import type { Backend } from '../types.js';
import { allOf, backendUnavailable, no } from '../unavailable.js';

/** Windows 10 1709 (build 16299) introduced the Cloud Files API. */
const FIRST_CFAPI_BUILD = 16299;

export function windowsBuild(osRelease: string): number | undefined {
  const build = Number(osRelease.split('.')[2]);
  return Number.isInteger(build) ? build : undefined;
}

export const cloudFilesBackend: Backend = {
  name: 'cloud-files',
  summary: 'Cloud Files placeholders in File Explorer (Windows 10 1709+)',
  mountpointKind: 'sync-root',
  available(facts) {
    if (facts.platform !== 'win32') return no(`Cloud Files is a Windows API, this is ${facts.platform}`);
    const build = windowsBuild(facts.osRelease);
    if (build === undefined || build < FIRST_CFAPI_BUILD) {
      return no(`Windows build ${build ?? facts.osRelease} predates Cloud Files (needs 10.0.${FIRST_CFAPI_BUILD}, version 1709)`);
    }
    return allOf('cfapi addon built', facts.cloudFilesAddon);
  },
  async mount() {
    throw backendUnavailable('cloud-files', 'the Cloud Files provider is not part of this build yet');
  },
};
