import { createServer, type Server, type Socket } from 'node:net';
import {
  AcceptStat,
  acceptedHeader,
  type AuthSys,
  AuthFlavor,
  AuthStat,
  authErrorReply,
  decodeAuthSys,
  decodeCallBody,
  MsgType,
  progMismatchReply,
  recordMark,
  RecordDecoder,
  RecordError,
  RPC_VERSION,
  rpcMismatchReply,
} from './rpc.js';
import { XdrError, XdrReader, XdrWriter } from './xdr.js';

/** Ports below this one can only be bound by root: the kernel's NFS clients use them. */
const RESERVED_PORTS = 1024;

/** What a procedure learns about its caller. */
export interface CallContext {
  xid: number;
  prog: number;
  vers: number;
  proc: number;
  /** AUTH_SYS credentials; undefined for an AUTH_NONE call of procedure 0. */
  auth: AuthSys | undefined;
  /** The client's TCP source port. */
  port: number;
}

/** One RPC program: which versions and procedures it serves, and the procedures themselves. */
export interface RpcProgram {
  readonly prog: number;
  readonly name: string;
  readonly lowVersion: number;
  readonly highVersion: number;
  /** Whether callers must send from a reserved port (unless the server runs insecure). */
  readonly reservedPort: boolean;
  hasProcedure(vers: number, proc: number): boolean;
  procedureName(proc: number): string;
  /**
   * Decodes the arguments from `args` and writes the results to `out`.
   * Throwing an XdrError turns the reply into GARBAGE_ARGS; any other throw
   * into SYSTEM_ERR.
   */
  call(context: CallContext, args: XdrReader, out: XdrWriter): Promise<void>;
}

export interface RpcServerOptions {
  programs: RpcProgram[];
  /** Largest record accepted; a longer one closes the connection. */
  maxRecord: number;
  /** Accept calls from unprivileged source ports (user-space clients such as libnfs). */
  insecure: boolean;
  /** Calls one connection may have in progress before the server stops reading from it. */
  maxInFlight?: number;
  /** Bytes of call records in progress, all connections together, before the server stops reading. */
  maxInFlightBytes?: number;
  maxConnections?: number;
  /** A connection with no call in progress is closed after this long without traffic (clients reconnect). */
  idleTimeoutMs?: number;
  /** Logs each call and its outcome when set. */
  log?: (line: string) => void;
  /** Something unexpected (a bug, not a client mistake) happened. */
  onUnexpected?: (err: unknown, what: string) => void;
}

/** Replies queued on a socket past this many bytes make the server stop reading until they drain. */
const MAX_QUEUED_REPLY_BYTES = 8 * 1024 * 1024;

/**
 * Memory is bounded by: one partial record (maxRecord) per connection, plus
 * the records of calls in progress (maxInFlightBytes, shared), plus the
 * replies queued per socket (MAX_QUEUED_REPLY_BYTES) before it is paused.
 */
const DEFAULTS = { maxInFlight: 64, maxInFlightBytes: 32 * 1024 * 1024, maxConnections: 64, idleTimeoutMs: 15 * 60_000 };

/**
 * ONC RPC over TCP on 127.0.0.1, serving several programs on one port.
 * Runs on the JS main thread; every call of a connection is answered
 * independently (clients pipeline and match replies by xid).
 */
export class RpcServer {
  private readonly server: Server;
  private readonly connections = new Set<Connection>();
  private readonly programs = new Map<number, RpcProgram>();
  /** Bytes of records whose calls are in progress, over all connections. */
  inFlightBytes = 0;
  private closing: Promise<void> | undefined;
  private resolveClosed!: () => void;
  /** Settles once the server has stopped and every connection is gone. */
  readonly closed = new Promise<void>((resolve) => (this.resolveClosed = resolve));

  constructor(readonly options: RpcServerOptions) {
    for (const program of options.programs) this.programs.set(program.prog, program);
    // Half-open: a client that shuts down its side still gets the replies it is owed.
    this.server = createServer({ allowHalfOpen: true }, (socket) => this.accept(socket));
  }

  /** Binds 127.0.0.1 only, on a port the OS picks; resolves with that port. */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
        this.server.off('error', reject);
        resolve(this.port);
      });
    });
  }

  get port(): number {
    const address = this.server.address();
    return typeof address === 'object' && address ? address.port : 0;
  }

  private accept(socket: Socket): void {
    if (this.closing || this.connections.size >= (this.options.maxConnections ?? DEFAULTS.maxConnections)) {
      socket.destroy();
      return;
    }
    const connection = new Connection(socket, this);
    this.connections.add(connection);
    socket.once('close', () => {
      this.connections.delete(connection);
      connection.settle();
    });
  }

  get overBudget(): boolean {
    return this.inFlightBytes > (this.options.maxInFlightBytes ?? DEFAULTS.maxInFlightBytes);
  }

  /** A call finished: connections paused for the shared budget may read again. */
  released(): void {
    if (!this.overBudget) for (const connection of this.connections) connection.maybeResume();
  }

  /** Stops listening, closes every connection and waits (at most `graceMs`) for calls in progress. */
  close(graceMs = 5_000): Promise<void> {
    this.closing ??= (async () => {
      // server.close() calls back only once every connection is gone.
      const stopped = new Promise<void>((resolve) => this.server.close(() => resolve()));
      for (const connection of this.connections) connection.endWhenIdle();
      const idle = Promise.all([...this.connections].map((connection) => connection.idle()));
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([idle, new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
      for (const connection of this.connections) connection.socket.destroy();
      await stopped;
      this.resolveClosed();
    })();
    return this.closing;
  }

  /**
   * Turns one record into the reply to send, or undefined when there is
   * nothing to answer (a reply message, or a header too short to name an xid
   * is 'close').
   */
  async dispatch(record: Buffer, port: number): Promise<Buffer[] | undefined | 'close'> {
    const reader = new XdrReader(record);
    let xid: number;
    let mtype: number;
    try {
      xid = reader.u32('xid');
      mtype = reader.u32('msg_type');
    } catch {
      return 'close';
    }
    // A server has no use for replies; RFC 5531 lets it ignore them.
    if (mtype !== MsgType.call) return mtype === MsgType.reply ? undefined : 'close';
    let header;
    try {
      header = decodeCallBody(xid, reader);
    } catch (err) {
      // An auth body longer than 400 bytes is a bad credential or verifier;
      // a header cut short cannot be answered sensibly.
      if (err instanceof XdrError && err.reason === 'too long') {
        return authErrorReply(xid, err.type === 'cred body' ? AuthStat.badCred : AuthStat.badVerf).toBuffers();
      }
      return 'close';
    }
    if (header.rpcvers !== RPC_VERSION) return rpcMismatchReply(xid).toBuffers();

    let auth: AuthSys | undefined;
    if (header.cred.flavor === AuthFlavor.sys) {
      try {
        auth = decodeAuthSys(new XdrReader(header.cred.body));
      } catch {
        return authErrorReply(xid, AuthStat.badCred).toBuffers();
      }
    } else if (!(header.cred.flavor === AuthFlavor.none && header.proc === 0)) {
      // Only the NULL procedure may be called without credentials (RFC 5531 section 8.1);
      // every other flavor is one this server does not speak.
      return authErrorReply(xid, AuthStat.tooWeak).toBuffers();
    }

    const program = this.programs.get(header.prog);
    if (!program) return acceptedHeader(xid, AcceptStat.progUnavail).toBuffers();
    if (header.vers < program.lowVersion || header.vers > program.highVersion) {
      return progMismatchReply(xid, program.lowVersion, program.highVersion).toBuffers();
    }
    if (!program.hasProcedure(header.vers, header.proc)) return acceptedHeader(xid, AcceptStat.procUnavail).toBuffers();
    if (program.reservedPort && !this.options.insecure && header.proc !== 0 && port >= RESERVED_PORTS) {
      return authErrorReply(xid, AuthStat.tooWeak).toBuffers();
    }

    const context: CallContext = { xid, prog: header.prog, vers: header.vers, proc: header.proc, auth, port };
    const out = new XdrWriter();
    const started = this.options.log ? process.hrtime.bigint() : 0n;
    try {
      await program.call(context, reader, out);
    } catch (err) {
      const what = `${program.name} ${program.procedureName(header.proc)}`;
      if (err instanceof XdrError) {
        this.trace(started, xid, what, `GARBAGE_ARGS: ${err.message}`);
        return acceptedHeader(xid, AcceptStat.garbageArgs).toBuffers();
      }
      this.options.onUnexpected?.(err, what);
      this.trace(started, xid, what, 'SYSTEM_ERR');
      return acceptedHeader(xid, AcceptStat.systemErr).toBuffers();
    }
    this.trace(started, xid, `${program.name} ${program.procedureName(header.proc)}`, 'ok');
    return acceptedHeader(xid, AcceptStat.success).append(out.toBuffers()).toBuffers();
  }

  private trace(started: bigint, xid: number, what: string, outcome: string): void {
    if (!this.options.log) return;
    const micros = Number(process.hrtime.bigint() - started) / 1000;
    this.options.log(`nfs #${xid} ${what} -> ${outcome} in ${micros.toFixed(0)} µs`);
  }
}

/** One client connection: record reassembly, calls in flight, and back-pressure. */
class Connection {
  private readonly decoder: RecordDecoder;
  private inFlight = 0;
  private paused = false;
  private ending = false;
  private readonly waiters: (() => void)[] = [];
  private readonly remotePort: number;

  constructor(
    readonly socket: Socket,
    private readonly server: RpcServer,
  ) {
    this.decoder = new RecordDecoder(server.options.maxRecord);
    this.remotePort = socket.remotePort ?? 0;
    socket.setNoDelay(true);
    socket.setTimeout(server.options.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs, () => {
      if (this.inFlight === 0) socket.destroy();
    });
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
    socket.on('drain', () => this.maybeResume());
    socket.on('error', () => socket.destroy());
    // A half-closed client gets its outstanding replies, then the connection ends.
    socket.on('end', () => this.endWhenIdle());
  }

  private receive(chunk: Buffer): void {
    let records: Buffer[];
    try {
      records = this.decoder.push(chunk);
    } catch (err) {
      if (!(err instanceof RecordError)) this.server.options.onUnexpected?.(err, 'RPC record decoding');
      this.socket.destroy();
      return;
    }
    for (const record of records) this.handle(record);
  }

  private handle(record: Buffer): void {
    this.inFlight++;
    this.server.inFlightBytes += record.length;
    this.maybePause();
    void this.server
      .dispatch(record, this.remotePort)
      .then(
        (reply) => {
          if (reply === 'close') this.socket.destroy();
          else if (reply) this.send(reply);
        },
        (err: unknown) => {
          this.server.options.onUnexpected?.(err, 'RPC dispatch');
          this.socket.destroy();
        },
      )
      .finally(() => {
        this.inFlight--;
        this.server.inFlightBytes -= record.length;
        this.maybeResume();
        this.server.released();
        if (this.inFlight === 0) {
          for (const wake of this.waiters.splice(0)) wake();
          if (this.ending) this.socket.end();
        }
      });
  }

  private send(buffers: Buffer[]): void {
    if (this.socket.destroyed || !this.socket.writable) return;
    const length = buffers.reduce((sum, buffer) => sum + buffer.length, 0);
    this.socket.cork();
    this.socket.write(recordMark(length));
    for (const buffer of buffers) this.socket.write(buffer);
    this.socket.uncork();
  }

  private get saturated(): boolean {
    const limit = this.server.options.maxInFlight ?? DEFAULTS.maxInFlight;
    return this.inFlight >= limit || this.server.overBudget || this.socket.writableLength > MAX_QUEUED_REPLY_BYTES;
  }

  private maybePause(): void {
    if (!this.paused && this.saturated) {
      this.paused = true;
      this.socket.pause();
    }
  }

  maybeResume(): void {
    if (this.paused && !this.saturated) {
      this.paused = false;
      this.socket.resume();
    }
  }

  idle(): Promise<void> {
    if (this.inFlight === 0) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  endWhenIdle(): void {
    this.ending = true;
    if (this.inFlight === 0) this.socket.end();
  }

  /** The socket is gone: nobody waits for its calls any more. */
  settle(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }
}
