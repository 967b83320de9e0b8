import { spawn } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { ExitCode, UserError } from '../errors.js';
import { LineDecoder } from '../control/protocol.js';
import { SERVER_NODE_FLAGS } from '../platform/server-process.js';

/** What a background mount process tells the `tmount mount` that started it, one JSON line each. */
export type ReadyMessage =
  | { type: 'phase'; phase: string }
  | { type: 'ready'; line: string }
  | { type: 'error'; message: string; exitCode: number };

const CLI = fileURLToPath(new URL('../cli.js', import.meta.url));

/**
 * Starts the same mount command again as a detached process that serves the
 * mount, and waits until it reports the mount ready or failed. On a terminal
 * the child shares it until then, so host-key and passphrase questions reach
 * the user; afterwards it holds nothing the terminal's closing can end.
 */
export function mountInBackground(args: string[], id: string): Promise<number> {
  const interactive = process.stdin.isTTY === true;
  const child = spawn(process.execPath, [...SERVER_NODE_FLAGS, CLI, ...args, '--foreground', '--ready-fd', '3', '--id', id], {
    detached: true,
    stdio: [interactive ? 'inherit' : 'ignore', 'ignore', interactive ? 'inherit' : 'ignore', 'pipe'],
  });
  child.unref();
  const channel = child.stdio[3] as Readable;
  return new Promise<number>((resolve) => {
    let settled = false;
    const finish = (code: number) => {
      if (settled) return;
      settled = true;
      channel.destroy();
      resolve(code);
    };
    const decoder = new LineDecoder();
    channel.setEncoding('utf8');
    channel.on('data', (chunk: string) => {
      for (const message of decoder.push(chunk) as ReadyMessage[]) {
        if (message.type === 'phase' && interactive) process.stderr.write(`tmount: ${message.phase}…\n`);
        if (message.type === 'ready') {
          process.stdout.write(`${message.line}\n`);
          finish(ExitCode.ok);
        }
        if (message.type === 'error') {
          process.stderr.write(`tmount: ${message.message}\n`);
          finish(message.exitCode);
        }
      }
    });
    channel.on('close', () => {
      if (settled) return;
      process.stderr.write(`tmount: the mount process (pid ${child.pid}) exited before the mount was ready\n`);
      finish(ExitCode.internal);
    });
    child.on('error', (err) => {
      process.stderr.write(`tmount: cannot start the mount process: ${err.message}\n`);
      finish(ExitCode.internal);
    });
  });
}

/** The child's end of the ready channel. */
export class ReadyReporter {
  private readonly stream: WriteStream;

  constructor(fd: number) {
    this.stream = createWriteStream('', { fd, autoClose: true });
    this.stream.on('error', () => {});
  }

  private send(message: ReadyMessage): void {
    this.stream.write(`${JSON.stringify(message)}\n`);
  }

  phase(phase: string): void {
    this.send({ type: 'phase', phase });
  }

  ready(line: string): Promise<void> {
    this.send({ type: 'ready', line });
    return new Promise((resolve) => this.stream.end(resolve));
  }

  error(err: unknown): Promise<void> {
    const exitCode = err instanceof UserError ? err.exitCode : ExitCode.internal;
    const message = err instanceof UserError ? err.message : `internal error: ${(err as Error)?.stack ?? String(err)}`;
    this.send({ type: 'error', message, exitCode });
    return new Promise((resolve) => this.stream.end(resolve));
  }
}
