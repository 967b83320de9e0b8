/**
 * Exit codes are part of the CLI contract (documented in the README); scripts
 * branch on them, so a code never changes meaning once released.
 */
export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  backendUnavailable: 3,
  mountpoint: 4,
  connection: 5,
  auth: 6,
  hostKey: 7,
  notFound: 8,
  remotePath: 9,
  version: 10,
  interrupted: 130,
} as const;

export type ExitCodeName = keyof typeof ExitCode;

/**
 * A mistake the user can fix. `message` is the single line printed to stderr:
 * it names the problem and the fix. The CLI turns it into `exitCode`.
 */
export class UserError extends Error {
  readonly exitCode: number;
  constructor(kind: Exclude<ExitCodeName, 'ok' | 'internal'>, message: string) {
    super(message);
    this.name = 'UserError';
    this.exitCode = ExitCode[kind];
  }
}

export function describeCause(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message;
  }
  return String(err);
}
