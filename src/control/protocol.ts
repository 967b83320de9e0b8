/**
 * The control protocol between the CLI and a mount process: JSON lines over
 * the mount's socket. The server speaks first with a hello naming its
 * protocol version; a client of another version stops there with an error
 * naming both, instead of misreading what follows.
 */
export const PROTOCOL_VERSION = 1;

export interface Hello {
  type: 'hello';
  protocol: number;
  version: string;
  mount: string;
}

export type Method = 'status' | 'unmount' | 'subscribe' | 'reconnect';

export interface Request {
  type: 'request';
  id: number;
  method: Method;
}

export type Response =
  | { type: 'response'; id: number; ok: true; result: unknown }
  | { type: 'response'; id: number; ok: false; error: string };

export type ControlEvent =
  | { type: 'connection_state'; mount: string; state: string; attempt?: number; phase?: string; reason?: string }
  | { type: 'mount_state'; mount: string; state: { state: string; reason?: string } };

export interface EventEnvelope {
  type: 'event';
  at: string;
  event: ControlEvent;
}

export type ServerMessage = Hello | Response | EventEnvelope;

/** Splits a byte stream into JSON values, one per line; a line that is not JSON is a protocol error. */
export class LineDecoder {
  private buffer = '';
  private static readonly MAX_LINE = 1024 * 1024;

  push(chunk: string): unknown[] {
    this.buffer += chunk;
    const values: unknown[] = [];
    let newline: number;
    while ((newline = this.buffer.indexOf('\n')) >= 0) {
      const line = this.buffer.slice(0, newline);
      this.buffer = this.buffer.slice(newline + 1);
      if (line.trim() === '') continue;
      try {
        values.push(JSON.parse(line));
      } catch {
        throw new Error(`control protocol: a line of ${line.length} bytes is not JSON`);
      }
    }
    if (this.buffer.length > LineDecoder.MAX_LINE) {
      throw new Error(`control protocol: a line longer than ${LineDecoder.MAX_LINE} bytes`);
    }
    return values;
  }
}

export function encode(message: unknown): string {
  return `${JSON.stringify(message)}\n`;
}
