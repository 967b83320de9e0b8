import type { FuseRequest } from './addon-types.js';

/**
 * The addon hands a request over as numbers in one shared Float64Array plus
 * the op's index and what is not a number (addons/fuse/src/request_js.h):
 * an object built here costs a fraction of one built property by property
 * from C++. These two lists must equal the addon's `requestSlots` and
 * `opNames`; `checkAddonLayout` says so when the addon loads.
 */
export const REQUEST_SLOTS = [
  'id',
  'ino',
  'parent',
  'fh',
  'hasFh',
  'size',
  'offset',
  'flags',
  'mode',
  'rdev',
  'toSet',
  'attrUid',
  'attrGid',
  'atimeMs',
  'mtimeMs',
  'newParent',
  'datasync',
  'plus',
] as const;

export const OP_NAMES = [
  'lookup',
  'getattr',
  'setattr',
  'readlink',
  'mknod',
  'mkdir',
  'unlink',
  'rmdir',
  'symlink',
  'rename',
  'link',
  'open',
  'read',
  'write',
  'flush',
  'release',
  'fsync',
  'opendir',
  'readdir',
  'releasedir',
  'fsyncdir',
  'statfs',
  'create',
  'forget',
] as const satisfies readonly FuseRequest['op'][];

type SlotName = (typeof REQUEST_SLOTS)[number];
const S = Object.fromEntries(REQUEST_SLOTS.map((name, index) => [name, index])) as Record<SlotName, number>;
const OP = Object.fromEntries(OP_NAMES.map((name, index) => [name, index])) as Record<FuseRequest['op'], number>;

/** Throws when the loaded addon was built from other lists than this code (a stale build). */
export function checkAddonLayout(addon: { requestSlots: readonly string[]; opNames: readonly string[] }): void {
  const same = (a: readonly string[], b: readonly string[]) => a.length === b.length && a.every((name, i) => name === b[i]);
  if (!same(addon.requestSlots, REQUEST_SLOTS) || !same(addon.opNames, OP_NAMES)) {
    throw new Error('the FUSE addon was built from another version of tmount; rebuild it with `npm run build`');
  }
}

/** The handle getattr and setattr carry only when the kernel sent one. */
function optionalFh(s: Float64Array): number | undefined {
  return s[S.hasFh] ? s[S.fh] : undefined;
}

/** A request from what the addon handed over; `a` and `b` are the op's strings, write data or forget pairs. */
export function decodeRequest(s: Float64Array, op: number, a?: unknown, b?: unknown): FuseRequest {
  const id = s[S.id]!;
  const ino = s[S.ino]!;
  // The hottest first: the comparisons run in order.
  switch (op) {
    case OP.read:
      return { op: 'read', id, ino, fh: s[S.fh]!, size: s[S.size]!, offset: s[S.offset]! };
    case OP.write:
      return { op: 'write', id, ino, fh: s[S.fh]!, data: a as Buffer, offset: s[S.offset]!, flags: s[S.flags]! };
    case OP.getattr: {
      const fh = optionalFh(s);
      return fh === undefined ? { op: 'getattr', id, ino } : { op: 'getattr', id, ino, fh };
    }
    case OP.lookup:
      return { op: 'lookup', id, parent: s[S.parent]!, name: a as string };
    case OP.forget: {
      const pairs = a as Float64Array;
      const items: { ino: number; nlookup: number }[] = [];
      for (let i = 0; i + 1 < pairs.length; i += 2) items.push({ ino: pairs[i]!, nlookup: pairs[i + 1]! });
      return { op: 'forget', id, items };
    }
    case OP.open:
      return { op: 'open', id, ino, flags: s[S.flags]! };
    case OP.flush:
      return { op: 'flush', id, ino, fh: s[S.fh]! };
    case OP.release:
      return { op: 'release', id, ino, fh: s[S.fh]!, flags: s[S.flags]! };
    case OP.opendir:
      return { op: 'opendir', id, ino, flags: s[S.flags]! };
    case OP.readdir:
      return { op: 'readdir', id, ino, fh: s[S.fh]!, size: s[S.size]!, offset: s[S.offset]!, plus: s[S.plus] === 1 };
    case OP.releasedir:
      return { op: 'releasedir', id, ino, fh: s[S.fh]! };
    case OP.create:
      return { op: 'create', id, parent: s[S.parent]!, name: a as string, mode: s[S.mode]!, flags: s[S.flags]! };
    case OP.setattr: {
      const request = {
        op: 'setattr' as const,
        id,
        ino,
        toSet: s[S.toSet]!,
        mode: s[S.mode]!,
        uid: s[S.attrUid]!,
        gid: s[S.attrGid]!,
        size: s[S.size]!,
        atimeMs: s[S.atimeMs]!,
        mtimeMs: s[S.mtimeMs]!,
      };
      const fh = optionalFh(s);
      return fh === undefined ? request : { ...request, fh };
    }
    case OP.readlink:
      return { op: 'readlink', id, ino };
    case OP.mknod:
      return { op: 'mknod', id, parent: s[S.parent]!, name: a as string, mode: s[S.mode]!, rdev: s[S.rdev]! };
    case OP.mkdir:
      return { op: 'mkdir', id, parent: s[S.parent]!, name: a as string, mode: s[S.mode]! };
    case OP.unlink:
      return { op: 'unlink', id, parent: s[S.parent]!, name: a as string };
    case OP.rmdir:
      return { op: 'rmdir', id, parent: s[S.parent]!, name: a as string };
    case OP.symlink:
      return { op: 'symlink', id, parent: s[S.parent]!, name: a as string, target: b as string };
    case OP.rename:
      return { op: 'rename', id, parent: s[S.parent]!, name: a as string, newParent: s[S.newParent]!, newName: b as string, flags: s[S.flags]! };
    case OP.link:
      return { op: 'link', id, ino, newParent: s[S.newParent]!, newName: a as string };
    case OP.fsync:
      return { op: 'fsync', id, ino, fh: s[S.fh]!, datasync: s[S.datasync] === 1 };
    case OP.fsyncdir:
      return { op: 'fsyncdir', id, ino, fh: s[S.fh]!, datasync: s[S.datasync] === 1 };
    case OP.statfs:
      return { op: 'statfs', id, ino };
    default:
      throw new Error(`FUSE request with unknown op index ${op}`);
  }
}
