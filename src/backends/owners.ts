import type { MountContext } from './types.js';

/** How remote owners are shown locally, for every backend that shows owners. */
export interface OwnerMapping {
  /** Show every file as owned by these ids (sshfs -o uid=,gid=). */
  uid?: number;
  gid?: number;
  /** idmap=user: the remote account's ids appear as the local user's, and back. */
  remoteUid?: number;
  remoteGid?: number;
  localUid: number;
  localGid: number;
}

export function ownerMappingFor(context: MountContext): OwnerMapping {
  const { tuning } = context;
  return {
    localUid: process.getuid?.() ?? 0,
    localGid: process.getgid?.() ?? 0,
    ...(tuning.uid !== undefined ? { uid: tuning.uid } : {}),
    ...(tuning.gid !== undefined ? { gid: tuning.gid } : {}),
    ...(tuning.idmapUser ? { remoteUid: context.remoteOwner.uid, remoteGid: context.remoteOwner.gid } : {}),
  };
}

/** The owner a local user sees for remote ids. */
export function shownOwner(owners: OwnerMapping, uid: number, gid: number): { uid: number; gid: number } {
  return {
    uid: owners.uid ?? (owners.remoteUid !== undefined && uid === owners.remoteUid ? owners.localUid : uid),
    gid: owners.gid ?? (owners.remoteGid !== undefined && gid === owners.remoteGid ? owners.localGid : gid),
  };
}

/** The remote id a chown to `local` means: the local user's own ids go back to the remote account's. */
export function remoteUidFor(owners: OwnerMapping, local: number): number {
  return owners.remoteUid !== undefined && local === owners.localUid ? owners.remoteUid : local;
}

export function remoteGidFor(owners: OwnerMapping, local: number): number {
  return owners.remoteGid !== undefined && local === owners.localGid ? owners.remoteGid : local;
}
