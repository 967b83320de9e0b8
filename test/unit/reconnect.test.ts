import { describe, expect, it } from 'vitest';
import { DEFAULT_RECONNECT, type PolicyAction, type PolicyEvent, type PolicyState, type ReconnectConfig, step } from '../../src/remote/reconnect.js';

const config: ReconnectConfig = { ...DEFAULT_RECONNECT, initialDelayMs: 1000, maxDelayMs: 8000, jitter: 0.2, giveUpAfterMs: 60_000 };
const connected: PolicyState = { phase: 'connected' };
const connecting = (attempt: number, delayMs = 1000, droppedAt = 0): PolicyState => ({ phase: 'connecting', attempt, delayMs, droppedAt });
const waiting = (attempt: number, delayMs = 1000, droppedAt = 0): PolicyState => ({ phase: 'waiting', attempt, delayMs, droppedAt });
const failedState: PolicyState = { phase: 'stopped', kind: 'failed', reason: 'authentication refused' };
const disconnected: PolicyState = { phase: 'stopped', kind: 'disconnected', reason: 'stopped by the user' };

const transient = (at: number): PolicyEvent => ({ type: 'attempt_failed', at, kind: 'transient', reason: 'ECONNREFUSED' });

describe('reconnect policy', () => {
  const table: [string, PolicyState, PolicyEvent, PolicyState, PolicyAction][] = [
    ['a drop starts an immediate first attempt', connected, { type: 'dropped', at: 5, reason: 'reset' }, connecting(1, 1000, 5), { type: 'connect', attempt: 1 }],
    ['a failed probe on a live transport drops it and reconnects', connected, { type: 'probe_failed', at: 5 }, connecting(1, 1000, 5), { type: 'drop_and_connect', attempt: 1 }],
    ['a transient failure waits the current delay (jitter at its middle)', connecting(1), transient(10), waiting(2, 2000), { type: 'wait', ms: 1000, attempt: 2 }],
    ['the delay doubles', connecting(2, 2000), transient(20), waiting(3, 4000), { type: 'wait', ms: 2000, attempt: 3 }],
    ['the delay is capped', connecting(5, 8000), transient(30), waiting(6, 8000), { type: 'wait', ms: 8000, attempt: 6 }],
    ['the wait ends in an attempt', waiting(3, 4000), { type: 'timer_elapsed', at: 40 }, connecting(3, 4000), { type: 'connect', attempt: 3 }],
    ['refused credentials fail for good', connecting(2), { type: 'attempt_failed', at: 10, kind: 'auth', reason: 'authentication refused' }, failedState, { type: 'stop', kind: 'failed', reason: 'authentication refused' }],
    ['a changed host key fails for good', connecting(1), { type: 'attempt_failed', at: 10, kind: 'hostKey', reason: 'host key changed' }, { phase: 'stopped', kind: 'failed', reason: 'host key changed' }, { type: 'stop', kind: 'failed', reason: 'host key changed' }],
    ['a vanished remote root fails for good', connecting(1), { type: 'attempt_failed', at: 10, kind: 'fatal', reason: 'remote root gone' }, { phase: 'stopped', kind: 'failed', reason: 'remote root gone' }, { type: 'stop', kind: 'failed', reason: 'remote root gone' }],
    ['success resets everything', connecting(4, 8000), { type: 'connected' }, connected, { type: 'none' }],
    ['past the reconnect timeout it stops trying', connecting(9, 8000, 0), transient(60_000), { phase: 'stopped', kind: 'disconnected', reason: 'gave up reconnecting after 60 s: ECONNREFUSED' }, { type: 'stop', kind: 'disconnected', reason: 'gave up reconnecting after 60 s: ECONNREFUSED' }],
    ['a clock jump while waiting resets the backoff and tries now', waiting(5, 8000), { type: 'clock_jump', at: 100, wallElapsedMs: 3_600_000, monotonicElapsedMs: 1000 }, connecting(5, 1000, 100), { type: 'connect', attempt: 5 }],
    ['a small clock drift is ignored', waiting(5, 8000), { type: 'clock_jump', at: 100, wallElapsedMs: 3000, monotonicElapsedMs: 1000 }, waiting(5, 8000), { type: 'none' }],
    ['a clock jump while connected changes nothing', connected, { type: 'clock_jump', at: 100, wallElapsedMs: 3_600_000, monotonicElapsedMs: 1000 }, connected, { type: 'none' }],
    ['the user can force an attempt while waiting', waiting(4, 8000), { type: 'user_reconnect', at: 50 }, connecting(4, 1000, 50), { type: 'connect', attempt: 4 }],
    ['the user can restart a mount that stopped trying', { phase: 'stopped', kind: 'disconnected', reason: 'x' }, { type: 'user_reconnect', at: 50 }, connecting(1, 1000, 50), { type: 'connect', attempt: 1 }],
    ['a forced attempt while connected does nothing', connected, { type: 'user_reconnect', at: 50 }, connected, { type: 'none' }],
    ['a second drop during an attempt changes nothing', connecting(2), { type: 'dropped', at: 9, reason: 'x' }, connecting(2), { type: 'none' }],
    ['a stale timer while connected changes nothing', connected, { type: 'timer_elapsed', at: 9 }, connected, { type: 'none' }],
    ['the user stops it', waiting(2), { type: 'user_stop' }, disconnected, { type: 'none' }],
    ['failed stays failed, even for the user', failedState, { type: 'user_reconnect', at: 9 }, failedState, { type: 'none' }],
    ['failed ignores drops', failedState, { type: 'dropped', at: 9, reason: 'x' }, failedState, { type: 'none' }],
  ];

  it.each(table)('%s', (_, from, event, to, action) => {
    expect(step(from, event, config, 0.5)).toEqual({ state: to, action });
  });

  it('with reconnecting off, a drop stops at disconnected', () => {
    const off = { ...config, enabled: false };
    expect(step(connected, { type: 'dropped', at: 0, reason: 'connection reset' }, off)).toEqual({
      state: { phase: 'stopped', kind: 'disconnected', reason: 'connection reset' },
      action: { type: 'stop', kind: 'disconnected', reason: 'connection reset' },
    });
  });

  it('spreads waits over ±jitter and never below zero', () => {
    expect(step(connecting(1), transient(1), config, 0).action).toEqual({ type: 'wait', ms: 800, attempt: 2 });
    expect(step(connecting(1), transient(1), config, 0.999999).action).toEqual({ type: 'wait', ms: 1200, attempt: 2 });
    expect(step(connecting(1), transient(1), { ...config, jitter: 5 }, 0).action).toEqual({ type: 'wait', ms: 0, attempt: 2 });
  });

  it('keeps the first retry within a second by default', () => {
    const first = step(step(connected, { type: 'dropped', at: 0, reason: 'x' }, DEFAULT_RECONNECT).state, transient(1), DEFAULT_RECONNECT, 0.999999);
    expect(first.action.type).toBe('wait');
    expect((first.action as { ms: number }).ms).toBeLessThanOrEqual(1000);
  });

  it('never waits longer than the cap, whatever the number of failures', () => {
    let state: PolicyState = connecting(1);
    for (let i = 0; i < 50; i++) {
      const waited = step(state, transient(i), { ...DEFAULT_RECONNECT }, 0.999999);
      expect((waited.action as { ms: number }).ms).toBeLessThanOrEqual(DEFAULT_RECONNECT.maxDelayMs * (1 + DEFAULT_RECONNECT.jitter));
      state = step(waited.state, { type: 'timer_elapsed', at: i }, DEFAULT_RECONNECT).state;
    }
  });
});
