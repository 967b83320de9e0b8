import { XdrError, type XdrReader, XdrWriter } from './xdr.js';

/** ONC RPC version 2 (RFC 5531). */
export const RPC_VERSION = 2;

export const MsgType = { call: 0, reply: 1 } as const;
export const ReplyStat = { accepted: 0, denied: 1 } as const;
export const AcceptStat = { success: 0, progUnavail: 1, progMismatch: 2, procUnavail: 3, garbageArgs: 4, systemErr: 5 } as const;
export const RejectStat = { rpcMismatch: 0, authError: 1 } as const;
export const AuthStat = {
  ok: 0,
  badCred: 1,
  rejectedCred: 2,
  badVerf: 3,
  rejectedVerf: 4,
  tooWeak: 5,
  invalidResp: 6,
  failed: 7,
} as const;
export const AuthFlavor = { none: 0, sys: 1, short: 2, dh: 3, gss: 6 } as const;

/** opaque_auth bodies are at most 400 bytes (RFC 5531 section 8.2). */
export const MAX_AUTH_BYTES = 400;
/** authsys_parms: machinename<255>, gids<16> (RFC 5531 appendix A). */
const MAX_MACHINE_NAME = 255;
const MAX_GIDS = 16;

export interface OpaqueAuth {
  flavor: number;
  body: Buffer;
}

export interface CallHeader {
  xid: number;
  rpcvers: number;
  prog: number;
  vers: number;
  proc: number;
  cred: OpaqueAuth;
  verf: OpaqueAuth;
}

export interface AuthSys {
  stamp: number;
  machine: string;
  uid: number;
  gid: number;
  gids: number[];
}

/**
 * The part of a call after `xid` and `mtype` (which the caller has read):
 *
 *   struct call_body {
 *     unsigned int rpcvers;  unsigned int prog;  unsigned int vers;  unsigned int proc;
 *     opaque_auth cred;  opaque_auth verf;
 *     // procedure-specific parameters follow
 *   };
 *   struct opaque_auth { auth_flavor flavor; opaque body<400>; };
 *
 * Throws XdrError when the header is truncated or an auth body is too long.
 */
export function decodeCallBody(xid: number, reader: XdrReader): CallHeader {
  const rpcvers = reader.u32('rpcvers');
  const prog = reader.u32('prog');
  const vers = reader.u32('vers');
  const proc = reader.u32('proc');
  const cred = { flavor: reader.u32('cred flavor'), body: reader.opaque(MAX_AUTH_BYTES, 'cred body') };
  const verf = { flavor: reader.u32('verf flavor'), body: reader.opaque(MAX_AUTH_BYTES, 'verf body') };
  return { xid, rpcvers, prog, vers, proc, cred, verf };
}

/**
 *   struct authsys_parms {
 *     unsigned int stamp;  string machinename<255>;
 *     unsigned int uid;  unsigned int gid;  unsigned int gids<16>;
 *   };
 */
export function decodeAuthSys(reader: XdrReader): AuthSys {
  const stamp = reader.u32('authsys stamp');
  const machine = reader.string(MAX_MACHINE_NAME, 'authsys machinename');
  const uid = reader.u32('authsys uid');
  const gid = reader.u32('authsys gid');
  const count = reader.u32('authsys gids length');
  if (count > MAX_GIDS) throw new XdrError('authsys gids', count * 4, 'too long', `more than ${MAX_GIDS} groups`);
  const gids: number[] = [];
  for (let i = 0; i < count; i++) gids.push(reader.u32('authsys gid'));
  return { stamp, machine, uid, gid, gids };
}

export function encodeAuthSys(auth: AuthSys): Buffer {
  const w = new XdrWriter().u32(auth.stamp).string(auth.machine).u32(auth.uid).u32(auth.gid).u32(auth.gids.length);
  for (const gid of auth.gids) w.u32(gid);
  return w.toBuffer();
}

/**
 * Starts an accepted reply; the procedure's results follow for SUCCESS.
 *
 *   rpc_msg { xid; mtype = REPLY (1); reply_stat = MSG_ACCEPTED (0);
 *             accepted_reply { opaque_auth verf = AUTH_NONE, empty; accept_stat stat; ... } }
 */
export function acceptedHeader(xid: number, stat: number): XdrWriter {
  return new XdrWriter()
    .u32(xid)
    .u32(MsgType.reply)
    .u32(ReplyStat.accepted)
    .u32(AuthFlavor.none)
    .u32(0)
    .u32(stat);
}

/** PROG_MISMATCH carries the lowest and highest version served: `struct { unsigned int low; unsigned int high; }`. */
export function progMismatchReply(xid: number, low: number, high: number): XdrWriter {
  return acceptedHeader(xid, AcceptStat.progMismatch).u32(low).u32(high);
}

/** MSG_DENIED, RPC_MISMATCH: `rejected_reply { reject_stat = RPC_MISMATCH (0); unsigned int low; unsigned int high; }`. */
export function rpcMismatchReply(xid: number): XdrWriter {
  return new XdrWriter().u32(xid).u32(MsgType.reply).u32(ReplyStat.denied).u32(RejectStat.rpcMismatch).u32(RPC_VERSION).u32(RPC_VERSION);
}

/** MSG_DENIED, AUTH_ERROR: `rejected_reply { reject_stat = AUTH_ERROR (1); auth_stat stat; }`. */
export function authErrorReply(xid: number, stat: number): XdrWriter {
  return new XdrWriter().u32(xid).u32(MsgType.reply).u32(ReplyStat.denied).u32(RejectStat.authError).u32(stat);
}

/**
 * A call message for the client side (the portmapper registration and the
 * tests): header with AUTH_SYS credentials (or AUTH_NONE), then `args`.
 */
export function encodeCall(options: {
  xid: number;
  prog: number;
  vers: number;
  proc: number;
  auth?: AuthSys;
  args?: readonly Buffer[];
}): Buffer {
  const w = new XdrWriter().u32(options.xid).u32(MsgType.call).u32(RPC_VERSION).u32(options.prog).u32(options.vers).u32(options.proc);
  if (options.auth) w.u32(AuthFlavor.sys).opaque(encodeAuthSys(options.auth));
  else w.u32(AuthFlavor.none).u32(0);
  w.u32(AuthFlavor.none).u32(0);
  if (options.args) w.append(options.args);
  return w.toBuffer();
}

/** Record marking (RFC 5531 section 11): a fragment header's top bit marks the last fragment, the other 31 bits its length. */
const LAST_FRAGMENT = 0x80000000;
const MAX_FRAGMENT = 0x7fffffff;

/** The 4-byte header of a record sent as one fragment. */
export function recordMark(length: number): Buffer {
  if (length > MAX_FRAGMENT) throw new RangeError(`RPC record of ${length} bytes is longer than one fragment can carry`);
  const mark = Buffer.allocUnsafe(4);
  mark.writeUInt32BE((LAST_FRAGMENT | length) >>> 0, 0);
  return mark;
}

export function frameRecord(payload: Buffer): Buffer {
  return Buffer.concat([recordMark(payload.length), payload]);
}

/** A stream that cannot be trusted any more: the connection is closed. */
export class RecordError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RecordError';
  }
}

/**
 * Reassembles records from a byte stream. A record longer than `maxRecord`
 * fails as soon as a fragment header announces it, before anything is
 * buffered for it, so a hostile length never becomes an allocation.
 */
export class RecordDecoder {
  private header = Buffer.alloc(4);
  private headerBytes = 0;
  /** Bytes still expected for the current fragment; -1 while reading a header. */
  private fragmentLeft = -1;
  private lastFragment = false;
  private parts: Buffer[] = [];
  private recordBytes = 0;

  constructor(readonly maxRecord: number) {}

  /** True while part of a record has arrived and the rest has not. */
  get partial(): boolean {
    return this.headerBytes > 0 || this.fragmentLeft >= 0 || this.recordBytes > 0;
  }

  push(chunk: Buffer): Buffer[] {
    const records: Buffer[] = [];
    let at = 0;
    while (at < chunk.length) {
      if (this.fragmentLeft < 0) {
        const take = Math.min(4 - this.headerBytes, chunk.length - at);
        chunk.copy(this.header, this.headerBytes, at, at + take);
        this.headerBytes += take;
        at += take;
        if (this.headerBytes < 4) break;
        const word = this.header.readUInt32BE(0);
        this.headerBytes = 0;
        this.lastFragment = (word & LAST_FRAGMENT) !== 0;
        this.fragmentLeft = word & MAX_FRAGMENT;
        if (this.recordBytes + this.fragmentLeft > this.maxRecord) {
          throw new RecordError(
            `RPC record of at least ${this.recordBytes + this.fragmentLeft} bytes exceeds the limit of ${this.maxRecord} bytes`,
          );
        }
      }
      const take = Math.min(this.fragmentLeft, chunk.length - at);
      if (take > 0) {
        this.parts.push(chunk.subarray(at, at + take));
        this.recordBytes += take;
        this.fragmentLeft -= take;
        at += take;
      }
      if (this.fragmentLeft === 0) {
        this.fragmentLeft = -1;
        if (this.lastFragment) {
          records.push(this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.recordBytes));
          this.parts = [];
          this.recordBytes = 0;
        }
      }
    }
    return records;
  }
}
