import { connect, type Socket } from 'node:net';

/** One socket read's worth: what Node's stream path allocates per read too. */
const READ_BYTES = 64 * 1024;
/** Chunks are copied into slabs of this size, each slab used once, front to back. */
const SLAB_BYTES = 256 * 1024;

/**
 * A TCP connection that hands what it reads to its 'data' listeners
 * directly, without the readable-stream machinery (push, buffering, the
 * read(0) scheduled after every chunk). ssh2 only listens for 'data',
 * 'end' and 'close', and per SFTP request those stream steps cost about as
 * much CPU as decrypting the answer.
 *
 * Node's `onread` reads into one reused buffer, so each chunk is copied
 * before it is emitted: ssh2 may keep a partial packet across chunks. The
 * copies are views into a slab instead of a Buffer each, which for a 4 KiB
 * answer would be a memory allocation and external memory for the garbage
 * collector to track, per SFTP reply. This code never writes a slab's bytes
 * twice (ssh2 decrypts each chunk in place, and keeps views into it, such as
 * SFTP handles). A view someone keeps keeps its whole slab alive, so
 * SftpSession copies what it keeps for long: the handles of open files.
 * Reading starts paused: nothing arrives before the SSH client has
 * attached its listener and called resume() (ssh2 does both).
 */
export function connectTcp(host: string, port: number): Socket {
  const readInto = Buffer.allocUnsafe(READ_BYTES);
  let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  let used = 0;
  const socket: Socket = connect({
    host,
    port,
    onread: {
      buffer: readInto,
      callback: (bytes: number) => {
        if (bytes > SLAB_BYTES - used) {
          slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
          used = 0;
        }
        readInto.copy(slab, used, 0, bytes);
        const chunk = slab.subarray(used, used + bytes);
        used += bytes;
        socket.emit('data', chunk);
        return true; // Keep reading: SSH's channel windows are the flow control.
      },
    },
  });
  socket.once('connect', () => socket.pause());
  return socket;
}
