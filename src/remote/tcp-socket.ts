import { connect, type Socket } from 'node:net';

/** One socket read's worth: what Node's stream path allocates per read too. */
const READ_BYTES = 64 * 1024;

/**
 * A TCP connection that hands what it reads to its 'data' listeners
 * directly, without the readable-stream machinery (push, buffering, the
 * read(0) scheduled after every chunk). ssh2 only listens for 'data',
 * 'end' and 'close', and per SFTP request those stream steps cost about as
 * much CPU as decrypting the answer.
 *
 * Node's `onread` reads into one reused buffer, so each chunk is copied
 * before it is emitted: ssh2 may keep a partial packet across chunks.
 * Reading starts paused: nothing arrives before the SSH client has
 * attached its listener and called resume() (ssh2 does both).
 */
export function connectTcp(host: string, port: number): Socket {
  const readInto = Buffer.allocUnsafe(READ_BYTES);
  const socket: Socket = connect({
    host,
    port,
    onread: {
      buffer: readInto,
      callback: (bytes: number) => {
        const chunk = Buffer.allocUnsafe(bytes);
        readInto.copy(chunk, 0, 0, bytes);
        socket.emit('data', chunk);
        return true; // Keep reading: SSH's channel windows are the flow control.
      },
    },
  });
  socket.once('connect', () => socket.pause());
  return socket;
}
