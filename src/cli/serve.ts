import type { MountHandle } from '../backends/types.js';

/**
 * Keeps the process serving the mount until it ends: SIGINT, SIGTERM (and
 * SIGHUP in the foreground) unmount it; an unmount from outside (tmount
 * unmount, fusermount3 -u) ends the process too.
 */
export async function serveUntilUnmounted(handle: MountHandle, options: { background: boolean }): Promise<void> {
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= handle.unmount().catch((err: unknown) => {
      process.stderr.write(`tmount: unmounting ${handle.mountpoint} failed: ${(err as Error).message}\n`);
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  // A background mount outlives the terminal that started it.
  const onHangup = options.background ? () => {} : stop;
  process.on('SIGHUP', onHangup);
  try {
    await handle.closed;
    await stopping;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    process.off('SIGHUP', onHangup);
  }
}
