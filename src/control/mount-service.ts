import type { BackendName } from '../backends/types.js';
import { chmodSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { RunningMount } from '../mount.js';
import { type MountSignal, type MountState, nextMountState } from './mount-state.js';
import { type ControlEvent, encode, type Hello, LineDecoder, PROTOCOL_VERSION, type Request } from './protocol.js';
import { type Registration, register, unregister } from './registry.js';
import type { MountStatus } from './status.js';

export type ConnectionStateName = 'connecting' | 'connected' | 'reconnecting' | 'disconnected';

export interface MountServiceOptions {
  id: string;
  version: string;
  stateDir: string;
  socket: string;
  /** How often the health probe asks the remote, and how long it waits. */
  probeIntervalMs?: number;
  probeTimeoutMs?: number;
}

/**
 * The mount process's side of the lifecycle: registration, the control
 * socket, the health monitor and the event stream. It observes the running
 * mount and reports; unmounting goes through `running.unmount()`.
 */
export class MountService {
  private state: MountState = { state: 'active' };
  private connection: { state: ConnectionStateName; since: string; reconnects: number; latencyMs: number | null };
  private readonly subscribers = new Set<Socket>();
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  private probeTimer: NodeJS.Timeout | undefined;
  private readonly startedAt = new Date().toISOString();
  private stopped = false;
  private failedProbes = 0;

  private running: RunningMount | undefined;

  constructor(
    private readonly options: MountServiceOptions,
    private readonly starting: { remote: string; mountpoint: string | null; backend: BackendName },
  ) {
    this.connection = { state: 'connecting', since: this.startedAt, reconnects: 0, latencyMs: null };
  }

  get id(): string {
    return this.options.id;
  }

  private registration(): Registration {
    const running = this.running;
    return {
      id: this.options.id,
      pid: process.pid,
      remote: running ? running.source : this.starting.remote,
      mountpoint: running ? (running.mountpoint ?? null) : this.starting.mountpoint,
      backend: running ? running.backend : this.starting.backend,
      startedAt: this.startedAt,
      socket: this.options.socket,
      protocol: PROTOCOL_VERSION,
      ...(running ? {} : { starting: true }),
    };
  }

  /**
   * Registers before connecting, so `tmount events` can follow the connect
   * phases; `status` lists the mount only once it is attached (ready).
   */
  async announce(): Promise<void> {
    await this.listen();
    register(this.registration(), this.options.stateDir);
  }

  /** The mount is up: it becomes visible in status and is watched from now on. */
  attach(running: RunningMount): void {
    this.running = running;
    register(this.registration(), this.options.stateDir);
    this.connection = { ...this.connection, state: 'connected', since: new Date().toISOString() };
    this.publish({ type: 'connection_state', mount: this.options.id, state: 'connected' });
    this.publish({ type: 'mount_state', mount: this.options.id, state: this.state });
    running.link.hooks.onState = (state, detail) => {
      if (this.stopped || running.closing) return;
      switch (state) {
        case 'connected':
          this.setConnection('connected');
          this.signal({ type: 'reconnected' });
          return;
        case 'reconnecting':
          this.setConnection('reconnecting', detail);
          this.signal({ type: 'reconnecting' });
          return;
        case 'disconnected':
          this.setConnection('disconnected', detail);
          this.signal({ type: 'stopped_trying' });
          return;
        case 'failed':
          this.setConnection('disconnected', detail);
          this.signal({ type: 'gave_up', reason: detail.reason ?? 'the connection failed for good' });
          return;
      }
    };
    this.scheduleProbe(0);
  }

  /** The mount never came up: say why to whoever follows it, then go away. */
  async failStart(reason: string): Promise<void> {
    this.publish({ type: 'mount_state', mount: this.options.id, state: { state: 'failed', reason } });
    await this.stop();
  }

  private listen(): Promise<void> {
    const server = createServer((socket) => this.accept(socket));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      // The state dir is already 0700; the umask makes the socket 0600 from
      // its first moment, and chmod states it for filesystems that ignore umask.
      const previous = process.platform === 'win32' ? undefined : process.umask(0o177);
      server.listen(this.options.socket, () => {
        if (previous !== undefined) process.umask(previous);
        if (process.platform !== 'win32') chmodSync(this.options.socket, 0o600);
        server.off('error', reject);
        resolve();
      });
    });
  }

  private accept(socket: Socket): void {
    this.sockets.add(socket);
    socket.setEncoding('utf8');
    const hello: Hello = { type: 'hello', protocol: PROTOCOL_VERSION, version: this.options.version, mount: this.options.id };
    socket.write(encode(hello));
    const decoder = new LineDecoder();
    socket.on('data', (chunk: string) => {
      let messages: unknown[];
      try {
        messages = decoder.push(chunk);
      } catch {
        socket.destroy();
        return;
      }
      for (const message of messages) void this.answer(socket, message as Request);
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      this.subscribers.delete(socket);
      this.sockets.delete(socket);
    });
  }

  private async answer(socket: Socket, request: Request): Promise<void> {
    const reply = (response: { ok: true; result: unknown } | { ok: false; error: string }) => {
      if (!socket.destroyed) socket.write(encode({ type: 'response', id: request.id, ...response }));
    };
    switch (request.method) {
      case 'status':
        reply({ ok: true, result: this.running ? this.status() : null });
        return;
      case 'subscribe':
        this.subscribers.add(socket);
        reply({ ok: true, result: null });
        return;
      case 'reconnect':
        if (!this.running) return reply({ ok: false, error: 'the mount is still starting' });
        this.running.link.reconnectNow();
        reply({ ok: true, result: null });
        return;
      case 'unmount':
        if (!this.running) return reply({ ok: false, error: 'the mount is still starting; try again when it is ready' });
        try {
          await this.running.unmount();
          reply({ ok: true, result: null });
        } catch (err) {
          reply({ ok: false, error: (err as Error).message });
        }
        return;
      default:
        reply({ ok: false, error: `unknown method '${String(request.method)}'` });
    }
  }

  status(): MountStatus {
    if (!this.running) throw new Error('the mount is still starting');
    const stats = this.running.fs.stats;
    const cache = this.running.fs.cacheStats;
    return {
      id: this.options.id,
      remote: this.running.source,
      mountpoint: this.running.mountpoint ?? null,
      backend: this.running.backend,
      pid: process.pid,
      startedAt: this.startedAt,
      state: this.state,
      connection: { ...this.connection },
      stats: {
        ops: stats.ops,
        bytesRead: stats.bytesRead,
        bytesWritten: stats.bytesWritten,
        cacheHits: cache.hits,
        cacheMisses: cache.misses,
        errors: stats.errors,
      },
      ...(this.running.nfs ? { nfs: { ...this.running.nfs } } : {}),
      ...(this.running.syncRoot ? { syncRoot: this.running.syncRoot() } : {}),
      ...(this.running.fileProvider ? { fileProvider: { ...this.running.fileProvider } } : {}),
    };
  }

  private scheduleProbe(delay: number): void {
    if (this.stopped) return;
    this.probeTimer = setTimeout(() => void this.probe(), delay);
    this.probeTimer.unref();
  }

  /**
   * Asks the remote for its root every few seconds. Two unanswered probes in
   * a row while the SSH transport still looks alive (keepalives answered,
   * SFTP stuck) mean a zombie connection: the link drops it and reconnects.
   */
  private async probe(): Promise<void> {
    if (!this.running) return;
    if (this.running.link.linkState === 'connected') {
      try {
        this.connection.latencyMs = Math.round((await this.running.fs.probe(this.options.probeTimeoutMs ?? 5_000)) * 10) / 10;
        this.failedProbes = 0;
        this.signal({ type: 'probe_ok' });
      } catch {
        this.connection.latencyMs = null;
        if (++this.failedProbes >= 2 && this.running.link.linkState === 'connected') {
          this.failedProbes = 0;
          this.running.link.probeFailed();
        }
      }
    }
    this.scheduleProbe(this.options.probeIntervalMs ?? 5_000);
  }

  /** Feeds the state machine and tells subscribers when the state changed. */
  signal(signal: MountSignal): void {
    const next = nextMountState(this.state, signal);
    if (JSON.stringify(next) === JSON.stringify(this.state)) return;
    this.state = next;
    this.publish({ type: 'mount_state', mount: this.options.id, state: next });
  }

  setConnection(state: ConnectionStateName, extra: { attempt?: number; reason?: string } = {}): void {
    // Each new reconnect attempt is news; the same state again otherwise is not.
    if (this.connection.state === state && extra.attempt === undefined) return;
    this.connection = { ...this.connection, state, since: new Date().toISOString() };
    if (state === 'connected') this.connection.reconnects++;
    this.publish({ type: 'connection_state', mount: this.options.id, state, ...extra });
  }

  /** Where a reconnect is (connecting, authenticating, starting SFTP…), for subscribers. */
  phase(phase: string): void {
    if (!this.running || this.connection.state !== 'connected') this.publish({ type: 'connection_state', mount: this.options.id, state: this.connection.state, phase });
  }

  publish(event: ControlEvent): void {
    const line = encode({ type: 'event', at: new Date().toISOString(), event });
    for (const socket of this.subscribers) if (!socket.destroyed) socket.write(line);
  }

  /** Last words to subscribers, then the socket and the registration go. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.probeTimer);
    if (this.running) this.publish({ type: 'mount_state', mount: this.options.id, state: { state: 'unmounted' } });
    for (const socket of this.sockets) socket.end();
    unregister(this.options.id, this.options.stateDir);
    const closed = new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    // A client that never reads must not hold the process open.
    const grace = setTimeout(() => {
      for (const socket of this.sockets) socket.destroy();
    }, 500);
    await closed;
    clearTimeout(grace);
  }
}
