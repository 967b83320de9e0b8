import { UserError, type ExitCodeName } from '../errors.js';

/**
 * How a failed connection attempt should be treated by a reconnect policy:
 * `auth` and `hostKey` need the user and must not be retried; `transient`
 * (network, timeouts, a server restarting) may succeed later; `fatal` will
 * not (a setting the server can never satisfy).
 */
export type FailureClass = 'auth' | 'hostKey' | 'transient' | 'fatal';

/** A UserError from the SSH layer that also says whether retrying can help. */
export class SshError extends UserError {
  readonly failure: FailureClass;
  constructor(kind: Exclude<ExitCodeName, 'ok' | 'internal'>, message: string, failure: FailureClass, cause?: unknown) {
    super(kind, message);
    this.failure = failure;
    if (cause !== undefined) this.cause = cause;
  }
}
