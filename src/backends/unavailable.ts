import { UserError } from '../errors.js';
import type { Availability, BackendName } from './types.js';

export function ok(detail: string): Availability {
  return { ok: true, detail };
}

export function no(reason: string): Availability {
  return { ok: false, reason };
}

/** The first failed availability in order, or `ok(detail)` when all pass. */
export function allOf(detail: string, ...checks: Availability[]): Availability {
  return checks.find((check) => !check.ok) ?? ok(detail);
}

export function backendUnavailable(name: BackendName, reason: string): UserError {
  return new UserError('backendUnavailable', `backend '${name}' is not available: ${reason}`);
}
