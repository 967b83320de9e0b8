import { ownerMappingFor } from '../owners.js';
import { loadAddon } from '../../platform/addon-loader.js';
import { UserError } from '../../errors.js';
import type { Backend } from '../types.js';
import { allOf, no } from '../unavailable.js';
import type { FuseAddon, FuseSession } from './addon-types.js';
import { FuseDriver } from './driver.js';
import { checkAddonLayout, decodeRequest, REQUEST_SLOTS } from './request-decoder.js';

/** Kernel reads and writes of up to 1 MiB per request: fewer round trips through JS. */
const MAX_WRITE = 1024 * 1024;

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
  async mount(context) {
    const mountpoint = context.mountpoint!;
    const { tuning } = context;
    const addon = loadAddon<FuseAddon>('fuse');
    checkAddonLayout(addon);
    const slots = new Float64Array(REQUEST_SLOTS.length);
    // The kernel's write-back cache coalesces small writes into large ones;
    // it has nothing to do on a read-only mount.
    const writebackCache = !context.readonly;
    let driver: FuseDriver | undefined;
    const session: FuseSession = new addon.FuseSession(
      mountpoint,
      {
        fsname: context.source,
        subtype: 'tmount',
        readonly: context.readonly,
        allowOther: tuning.allowOther,
        defaultPermissions: tuning.defaultPermissions,
        maxWrite: MAX_WRITE,
        maxReadahead: tuning.maxReadAhead,
        writebackCache,
        eventLoop: addon.readsOnEventLoop,
      },
      (op, a, b) => driver!.handle(decodeRequest(slots, op, a, b)),
      slots,
    );
    driver = new FuseDriver(context.fs, session, {
      entryTimeout: tuning.entryTimeout,
      attrTimeout: tuning.attrTimeout,
      negativeTimeout: tuning.negativeTimeout,
      writebackCache,
      kernelStampsWithHandle: process.platform === 'linux',
      owners: ownerMappingFor(context),
      ...(tuning.debug ? { log: tuning.debug } : {}),
      onUnexpected: (err, op) => process.stderr.write(`tmount: internal error in FUSE ${op}: ${(err as Error)?.stack ?? String(err)}\n`),
    });
    try {
      session.mount();
    } catch (err) {
      throw new UserError('mountpoint', `cannot mount at ${mountpoint}: ${(err as Error).message}`);
    }
    return {
      backend: 'fuse',
      mountpoint,
      unmount: () => session.unmount(),
      closed: session.closed,
    };
  },
};
