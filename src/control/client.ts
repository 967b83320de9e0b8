import { connect, type Socket } from 'node:net';
import { UserError } from '../errors.js';
import { type EventEnvelope, encode, type Hello, LineDecoder, type Method, PROTOCOL_VERSION, type Response, type ServerMessage } from './protocol.js';
import type { Registration } from './registry.js';

const REQUEST_TIMEOUT_MS = 5_000;

/**
 * One connection to a mount process's control socket. Rejects every pending
 * request when the socket closes or speaks another protocol version.
 */
export class ControlClient {
  private readonly pending = new Map<number, { resolve: (value: unknown) => void; reject: (err: Error) => void }>();
  private nextId = 1;
  private failure: Error | undefined;
  private readonly decoder = new LineDecoder();
  private helloSeen!: (hello: Hello) => void;
  private helloFailed!: (err: Error) => void;
  private readonly hello = new Promise<Hello>((resolve, reject) => {
    this.helloSeen = resolve;
    this.helloFailed = reject;
  });
  onEvent: ((event: EventEnvelope) => void) | undefined;
  readonly closed: Promise<void>;

  private constructor(
    private readonly socket: Socket,
    private readonly registration: Registration,
  ) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      try {
        for (const message of this.decoder.push(chunk)) this.receive(message as ServerMessage);
      } catch (err) {
        this.fail(err as Error);
      }
    });
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.once('close', () => this.fail(new Error(`mount ${registration.id} closed its control connection`)));
    socket.on('error', (err) => this.fail(err));
  }

  static async open(registration: Registration, timeoutMs = REQUEST_TIMEOUT_MS): Promise<ControlClient> {
    const socket = connect(registration.socket);
    const client = new ControlClient(socket, registration);
    const timer = setTimeout(() => client.fail(new Error(`mount ${registration.id} did not answer within ${timeoutMs} ms`)), timeoutMs);
    try {
      const hello = await client.hello;
      if (hello.protocol !== PROTOCOL_VERSION) {
        const error = new UserError(
          'version',
          `mount ${registration.id} runs tmount ${hello.version} (control protocol ${hello.protocol}) but this is protocol ${PROTOCOL_VERSION}; manage it with the tmount that started it, or clear it with tmount unmount --force ${registration.id}`,
        );
        client.fail(error);
        throw error;
      }
      return client;
    } finally {
      clearTimeout(timer);
    }
  }

  private receive(message: ServerMessage): void {
    if (message.type === 'hello') return this.helloSeen(message);
    if (message.type === 'event') return this.onEvent?.(message);
    if (message.type === 'response') {
      const waiting = this.pending.get(message.id);
      if (!waiting) return;
      this.pending.delete(message.id);
      if (message.ok) waiting.resolve(message.result);
      else waiting.reject(new Error(message.error));
    }
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.helloFailed(err);
    for (const waiting of this.pending.values()) waiting.reject(err);
    this.pending.clear();
    this.socket.destroy();
  }

  request<T>(method: Method, timeoutMs = REQUEST_TIMEOUT_MS): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`mount ${this.registration.id} did not answer '${method}' within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(id, {
        resolve: (value) => {
          clearTimeout(timer);
          resolve(value as T);
        },
        reject: (err) => {
          clearTimeout(timer);
          reject(err);
        },
      });
      this.socket.write(encode({ type: 'request', id, method }));
    });
  }

  close(): void {
    this.socket.end();
  }
}

/** Opens, asks one thing, closes. */
export async function ask<T>(registration: Registration, method: Method, timeoutMs?: number): Promise<T> {
  const client = await ControlClient.open(registration);
  try {
    return await client.request<T>(method, timeoutMs);
  } finally {
    client.close();
  }
}

export type { Response };
