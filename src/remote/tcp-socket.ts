import { connect, type Socket } from 'node:net';

/** One socket read's worth: what Node's stream path allocates per read too. */
const READ_BYTES = 64 * 1024;
/** Reads land in slabs of this size, each slab used once, front to back. */
const SLAB_BYTES = 256 * 1024;

/**
 * A TCP connection that hands what it reads to its 'data' listeners
 * directly, without the readable-stream machinery (push, buffering, the
 * read(0) scheduled after every chunk). ssh2 only listens for 'data',
 * 'end' and 'close', and per SFTP request those stream steps cost about as
 * much CPU as decrypting the answer.
 *
 * Each socket read goes straight into the unused part of a slab (Node's
 * `onread` asks for the next buffer after every read), and the chunk
 * emitted is that view: no copy, and no Buffer allocation per read, which
 * for a 4 KiB answer would be a memory allocation and external memory for
 * the garbage collector to track. A slab's bytes are written once, front to
 * back: ssh2 decrypts each chunk in place and keeps views into it (a
 * partial packet across chunks, SFTP handles). A view someone keeps keeps
 * its whole slab alive, so SftpSession copies what it keeps for long: the
 * handles of open files. Reading starts paused: nothing arrives before the
 * SSH client has attached its listener and called resume() (ssh2 does both).
 */
export function connectTcp(host: string, port: number): Socket {
  let slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
  let used = 0;
  const socket: Socket = connect({
    host,
    port,
    onread: {
      buffer: () => {
        if (SLAB_BYTES - used < READ_BYTES) {
          slab = Buffer.allocUnsafeSlow(SLAB_BYTES);
          used = 0;
        }
        return slab.subarray(used, used + READ_BYTES);
      },
      callback: (bytes: number, into: Uint8Array) => {
        used += bytes;
        socket.emit('data', (into as Buffer).subarray(0, bytes));
        return true; // Keep reading: SSH's channel windows are the flow control.
      },
    },
  });
  socket.once('connect', () => socket.pause());
  return socket;
}
