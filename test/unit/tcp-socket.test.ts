import { randomBytes } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import { connectTcp } from '../../src/remote/tcp-socket.js';

let server: Server | undefined;
const clients: Socket[] = [];

afterEach(async () => {
  for (const client of clients.splice(0)) client.destroy();
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A loopback server that runs `talk` on each connection; resolves with its port. */
async function serve(talk: (peer: Socket) => Promise<void>): Promise<number> {
  server = createServer((peer) => void talk(peer).catch(() => peer.destroy()));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  return (server.address() as { port: number }).port;
}

function connected(port: number): Promise<Socket> {
  const socket = connectTcp('127.0.0.1', port);
  clients.push(socket);
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Everything the socket delivers until the peer ends, with the chunks as they were emitted. */
function collect(socket: Socket): Promise<Buffer[]> {
  const chunks: Buffer[] = [];
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.resume();
  return new Promise((resolve) => socket.once('end', () => resolve(chunks)));
}

describe('connectTcp', () => {
  it('keeps what the peer sends before anyone listens (an SSH server speaks first)', async () => {
    const port = await serve(async (peer) => {
      peer.end('SSH-2.0-OpenSSH_9.2\r\n');
    });
    const socket = await connected(port);
    // The banner is on the socket now; the client attaches a listener later.
    await sleep(50);
    const chunks = await collect(socket);
    expect(Buffer.concat(chunks).toString()).toBe('SSH-2.0-OpenSSH_9.2\r\n');
  });

  it('delivers every byte in order, and a chunk a listener keeps stays intact', async () => {
    const parts = Array.from({ length: 8 }, (_, i) => randomBytes(1_000 + i * 20_000));
    const port = await serve(async (peer) => {
      for (const part of parts) {
        peer.write(part);
        // Separate socket reads, so that each lands in the socket's one read buffer.
        await sleep(5);
      }
      peer.end();
    });
    const chunks = await collect(await connected(port));
    expect(chunks.length).toBeGreaterThan(1);
    // A listener that keeps chunks must still see what it was given.
    expect(Buffer.concat(chunks).equals(Buffer.concat(parts))).toBe(true);
  });

  it('writes like any socket and reports the peer closing', async () => {
    const port = await serve(async (peer) => {
      peer.once('data', (request) => peer.end(Buffer.concat([Buffer.from('echo:'), request])));
    });
    const socket = await connected(port);
    const reply = collect(socket);
    socket.write('ping');
    expect(Buffer.concat(await reply).toString()).toBe('echo:ping');
    await new Promise((resolve) => (socket.closed ? resolve(undefined) : socket.once('close', resolve)));
  });
});
