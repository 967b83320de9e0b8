/**
 * When to reconnect, as a pure state machine: events in, one action out. The
 * driver (remote/link.ts) does the I/O and the waiting; everything that
 * decides lives here so that a table of cases can pin it down.
 */

/** How a failed connection attempt failed (remote/connect.ts classifyError). */
export type FailureKind = 'auth' | 'hostKey' | 'fatal' | 'transient';

export interface ReconnectConfig {
  enabled: boolean;
  /** First wait after a drop; each further failure multiplies it, up to maxDelayMs. */
  initialDelayMs: number;
  maxDelayMs: number;
  multiplier: number;
  /** Fraction of the delay added or removed at random, so many clients don't retry in step. */
  jitter: number;
  /** Stop trying this long after the connection dropped (undefined: never stop). */
  giveUpAfterMs: number | undefined;
  /** Wall-clock time running ahead of monotonic time by this much means the machine slept. */
  clockJumpMs: number;
}

export const DEFAULT_RECONNECT: ReconnectConfig = {
  enabled: true,
  initialDelayMs: 500,
  maxDelayMs: 60_000,
  multiplier: 2,
  jitter: 0.2,
  giveUpAfterMs: undefined,
  clockJumpMs: 10_000,
};

export type PolicyState =
  | { phase: 'connected' }
  /** Waiting before attempt `attempt`; `droppedAt` is when the outage began. */
  | { phase: 'waiting'; attempt: number; delayMs: number; droppedAt: number }
  | { phase: 'connecting'; attempt: number; delayMs: number; droppedAt: number }
  /** Not trying: `failed` is for good (credentials, host key); `disconnected` until the user asks. */
  | { phase: 'stopped'; kind: 'failed' | 'disconnected'; reason: string };

export type PolicyEvent =
  | { type: 'connected' }
  | { type: 'dropped'; at: number; reason: string }
  /** Health probes time out while the transport still answers keepalives. */
  | { type: 'probe_failed'; at: number }
  | { type: 'attempt_failed'; at: number; kind: FailureKind; reason: string }
  | { type: 'timer_elapsed'; at: number }
  | { type: 'clock_jump'; at: number; wallElapsedMs: number; monotonicElapsedMs: number }
  | { type: 'user_reconnect'; at: number }
  | { type: 'user_stop' };

export type PolicyAction =
  | { type: 'none' }
  | { type: 'connect'; attempt: number }
  | { type: 'wait'; ms: number; attempt: number }
  /** Tear the current transport down first: it looks alive but does not serve. */
  | { type: 'drop_and_connect'; attempt: number }
  | { type: 'stop'; kind: 'failed' | 'disconnected'; reason: string };

export interface Step {
  state: PolicyState;
  action: PolicyAction;
}

const stay = (state: PolicyState): Step => ({ state, action: { type: 'none' } });

/** `random` is in [0, 1); jitter spreads the delay over ±config.jitter of it. */
function jittered(delayMs: number, config: ReconnectConfig, random: number): number {
  const spread = delayMs * config.jitter * (random * 2 - 1);
  return Math.max(0, Math.round(delayMs + spread));
}

function beginOutage(at: number, config: ReconnectConfig, reason: string, dropFirst: boolean): Step {
  if (!config.enabled) {
    return { state: { phase: 'stopped', kind: 'disconnected', reason }, action: { type: 'stop', kind: 'disconnected', reason } };
  }
  // The first attempt goes at once: most drops are a blip that one reconnect fixes.
  return {
    state: { phase: 'connecting', attempt: 1, delayMs: config.initialDelayMs, droppedAt: at },
    action: dropFirst ? { type: 'drop_and_connect', attempt: 1 } : { type: 'connect', attempt: 1 },
  };
}

export function step(state: PolicyState, event: PolicyEvent, config: ReconnectConfig, random = 0.5): Step {
  if (event.type === 'user_stop') {
    return { state: { phase: 'stopped', kind: 'disconnected', reason: 'stopped by the user' }, action: { type: 'none' } };
  }
  if (state.phase === 'stopped' && state.kind === 'failed') return stay(state);

  switch (event.type) {
    case 'connected':
      return { state: { phase: 'connected' }, action: { type: 'none' } };

    case 'dropped':
      if (state.phase !== 'connected') return stay(state);
      return beginOutage(event.at, config, event.reason, false);

    case 'probe_failed':
      if (state.phase !== 'connected') return stay(state);
      return beginOutage(event.at, config, 'the server stopped answering SFTP requests', true);

    case 'attempt_failed': {
      if (state.phase !== 'connecting') return stay(state);
      if (event.kind !== 'transient') {
        const reason = event.reason;
        return { state: { phase: 'stopped', kind: 'failed', reason }, action: { type: 'stop', kind: 'failed', reason } };
      }
      if (config.giveUpAfterMs !== undefined && event.at - state.droppedAt >= config.giveUpAfterMs) {
        const reason = `gave up reconnecting after ${Math.round((event.at - state.droppedAt) / 1000)} s: ${event.reason}`;
        return { state: { phase: 'stopped', kind: 'disconnected', reason }, action: { type: 'stop', kind: 'disconnected', reason } };
      }
      const ms = jittered(state.delayMs, config, random);
      const next = Math.min(config.maxDelayMs, state.delayMs * config.multiplier);
      return {
        state: { phase: 'waiting', attempt: state.attempt + 1, delayMs: next, droppedAt: state.droppedAt },
        action: { type: 'wait', ms, attempt: state.attempt + 1 },
      };
    }

    case 'timer_elapsed':
      if (state.phase !== 'waiting') return stay(state);
      return { state: { ...state, phase: 'connecting' }, action: { type: 'connect', attempt: state.attempt } };

    case 'clock_jump': {
      // After sleep the network is usually back: try now, with the backoff reset.
      if (event.wallElapsedMs - event.monotonicElapsedMs < config.clockJumpMs) return stay(state);
      if (state.phase !== 'waiting') return stay(state);
      return {
        state: { phase: 'connecting', attempt: state.attempt, delayMs: config.initialDelayMs, droppedAt: event.at },
        action: { type: 'connect', attempt: state.attempt },
      };
    }

    case 'user_reconnect':
      if (state.phase === 'connected' || state.phase === 'connecting') return stay(state);
      return {
        state: { phase: 'connecting', attempt: state.phase === 'waiting' ? state.attempt : 1, delayMs: config.initialDelayMs, droppedAt: event.at },
        action: { type: 'connect', attempt: state.phase === 'waiting' ? state.attempt : 1 },
      };
  }
}
