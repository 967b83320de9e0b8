import { createInterface } from 'node:readline';
import { StringDecoder } from 'node:string_decoder';
import type { ReadStream } from 'node:tty';
import { UserError } from '../errors.js';
import type { Prompter } from '../remote/auth.js';

const CTRL_C = '\u0003';
const CTRL_D = '\u0004';
const CTRL_U = '\u0015';
const BACKSPACE = ['\u007f', '\b'];

function interrupted(): UserError {
  return new UserError('interrupted', 'interrupted while waiting for an answer; nothing was connected');
}

function askLine(input: ReadStream, output: NodeJS.WritableStream, question: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input, output, terminal: true });
    let answered = false;
    rl.on('SIGINT', () => {
      output.write('\n');
      rl.close();
      reject(interrupted());
    });
    rl.on('close', () => {
      if (!answered) reject(interrupted());
    });
    rl.question(question, (answer) => {
      answered = true;
      rl.close();
      resolve(answer.trim());
    });
  });
}

/**
 * Reads a line with echo off. Raw mode rather than a muted readline, so
 * nothing of the secret ever reaches the terminal, not even on redraws.
 */
function askSecret(input: ReadStream, output: NodeJS.WritableStream, prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const decoder = new StringDecoder('utf8');
    const wasRaw = input.isRaw;
    let value = '';
    const finish = (error?: UserError): void => {
      input.off('data', onData);
      input.setRawMode(wasRaw);
      input.pause();
      output.write('\n');
      if (error) reject(error);
      else resolve(value);
    };
    const onData = (chunk: Buffer): void => {
      for (const ch of decoder.write(chunk)) {
        if (ch === '\r' || ch === '\n') return finish();
        if (ch === CTRL_C) return finish(interrupted());
        if (ch === CTRL_D) return value === '' ? finish(interrupted()) : finish();
        if (ch === CTRL_U) value = '';
        else if (BACKSPACE.includes(ch)) value = value.slice(0, -1);
        else if (ch >= ' ') value += ch;
      }
    };
    output.write(prompt);
    input.setRawMode(true);
    input.on('data', onData);
    input.resume();
  });
}

/**
 * Questions on the controlling terminal, as ssh asks them: prompts go to
 * stderr so they never mix with output a script reads. Undefined when stdin
 * is not a terminal: nobody could answer, and the SSH layer then fails
 * with a message saying what to do instead.
 */
export function createTtyPrompter(
  input: NodeJS.ReadStream = process.stdin,
  output: NodeJS.WriteStream = process.stderr,
): Prompter | undefined {
  if (!input.isTTY) return undefined;
  const tty = input as ReadStream;
  return {
    async askYesNo(question: string): Promise<boolean> {
      let text = question;
      for (;;) {
        const answer = (await askLine(tty, output, text)).toLowerCase();
        if (answer === 'yes') return true;
        if (answer === 'no') return false;
        text = "Please type 'yes' or 'no': ";
      }
    },
    askSecret: (prompt: string) => askSecret(tty, output, prompt),
  };
}
