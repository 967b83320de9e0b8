import type { MountHandle } from '../backends/types.js';

/**
 * Keeps the process serving the mount until it ends: Ctrl+C or SIGTERM
 * unmount it; an unmount from outside (tmount unmount, fusermount3 -u)
 * ends the process too.
 */
export async function serveUntilUnmounted(handle: MountHandle): Promise<void> {
  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= handle.unmount().catch((err: unknown) => {
      process.stderr.write(`tmount: unmounting ${handle.mountpoint} failed: ${(err as Error).message}\n`);
    });
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  process.on('SIGHUP', stop);
  try {
    await handle.closed;
    await stopping;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
    process.off('SIGHUP', stop);
  }
}
