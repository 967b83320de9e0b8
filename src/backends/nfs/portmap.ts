import { connect, type Socket } from 'node:net';
import { hostname } from 'node:os';
import { AcceptStat, encodeCall, MsgType, RecordDecoder, ReplyStat, frameRecord } from './rpc.js';
import { XdrReader, XdrWriter } from './xdr.js';

/** PMAP v2 (RFC 1833 section 3): the portmapper every BSD runs on port 111 (as rpcbind or portmap). */
export const PMAP_PROGRAM = 100000;
export const PMAP_V2 = 2;
export const PMAP_PORT = 111;
export const PmapProc = { null: 0, set: 1, unset: 2, getport: 3 } as const;
export const IPPROTO_TCP = 6;

export interface Mapping {
  prog: number;
  vers: number;
  port: number;
}

export interface PortmapOptions {
  /** Where the portmapper listens; 127.0.0.1:111 unless a test says otherwise. */
  host?: string;
  port?: number;
  /**
   * rpcbind and portmap accept SET and UNSET only from a reserved port on
   * the loopback address (FreeBSD rpcbind's check_access, OpenBSD portmap),
   * which only root can bind. Tests turn this off.
   */
  reservedSource?: boolean;
  timeoutMs?: number;
}

/**
 *   struct mapping { unsigned int prog; unsigned int vers; unsigned int prot; unsigned int port; };
 *
 * The argument of PMAPPROC_SET and PMAPPROC_UNSET (UNSET ignores prot and port).
 */
export function encodeMapping(mapping: Mapping): Buffer {
  return new XdrWriter().u32(mapping.prog).u32(mapping.vers).u32(IPPROTO_TCP).u32(mapping.port).toBuffer();
}

let nextXid = (Date.now() & 0x7fffffff) >>> 0;

/** One PMAP call over TCP; resolves with the boolean result of SET or UNSET. */
export async function portmapCall(proc: number, mapping: Mapping, options: PortmapOptions = {}): Promise<boolean> {
  const xid = nextXid++ >>> 0;
  const call = encodeCall({
    xid,
    prog: PMAP_PROGRAM,
    vers: PMAP_V2,
    proc,
    auth: { stamp: 0, machine: hostname().slice(0, 255), uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, gids: [] },
    args: [encodeMapping(mapping)],
  });
  const socket = await open(options);
  try {
    const reply = await exchange(socket, frameRecord(call), options.timeoutMs ?? 5_000);
    return decodeBoolReply(reply, xid);
  } finally {
    socket.destroy();
  }
}

async function open(options: PortmapOptions): Promise<Socket> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? PMAP_PORT;
  if (options.reservedSource === false) return connectTo(host, port, undefined);
  let lastError: unknown;
  // bindresvport(3) starts from the top of the reserved range; do the same, skipping ports in use.
  for (let local = 1023; local >= 600; local--) {
    try {
      return await connectTo(host, port, local);
    } catch (err) {
      lastError = err;
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'EADDRINUSE' && code !== 'EADDRNOTAVAIL') break;
    }
  }
  throw new Error(`cannot reach the portmapper at ${host}:${port} from a reserved port: ${(lastError as Error).message}`);
}

function connectTo(host: string, port: number, localPort: number | undefined): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, ...(localPort !== undefined ? { localAddress: host, localPort } : {}) });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

function exchange(socket: Socket, request: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const decoder = new RecordDecoder(64 * 1024);
    const timer = setTimeout(() => reject(new Error(`the portmapper did not answer within ${timeoutMs} ms`)), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      try {
        const [record] = decoder.push(chunk);
        if (record) {
          clearTimeout(timer);
          resolve(record);
        }
      } catch (err) {
        clearTimeout(timer);
        reject(err);
      }
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('close', () => {
      clearTimeout(timer);
      reject(new Error('the portmapper closed the connection without answering'));
    });
    socket.write(request);
  });
}

function decodeBoolReply(reply: Buffer, xid: number): boolean {
  const r = new XdrReader(reply);
  if (r.u32('xid') !== xid || r.u32('msg_type') !== MsgType.reply) throw new Error('the portmapper answered another call');
  if (r.u32('reply_stat') !== ReplyStat.accepted) throw new Error('the portmapper denied the call (authentication or RPC version)');
  r.u32('verf flavor');
  r.opaque(400, 'verf body');
  const stat = r.u32('accept_stat');
  if (stat !== AcceptStat.success) throw new Error(`the portmapper refused the call (accept_stat ${stat})`);
  return r.bool('result');
}
