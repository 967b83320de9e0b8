import { describe, expect, it } from 'vitest';
import { type MountSignal, type MountState, nextMountState } from '../../src/control/mount-state.js';

const active: MountState = { state: 'active' };
const reconnecting: MountState = { state: 'reconnecting' };
const disconnected: MountState = { state: 'disconnected' };
const failed: MountState = { state: 'failed', reason: 'host key changed' };

const signals: MountSignal[] = [
  { type: 'probe_ok' },
  { type: 'connection_lost' },
  { type: 'reconnecting' },
  { type: 'reconnected' },
  { type: 'gave_up', reason: 'authentication refused' },
  { type: 'stopped_trying' },
  { type: 'backend_died', reason: 'FUSE session ended' },
];

describe('nextMountState', () => {
  const table: [MountState, MountSignal, MountState][] = [
    [active, { type: 'probe_ok' }, active],
    [active, { type: 'connection_lost' }, reconnecting],
    [active, { type: 'reconnecting' }, reconnecting],
    [active, { type: 'reconnected' }, active],
    [active, { type: 'gave_up', reason: 'authentication refused' }, { state: 'failed', reason: 'authentication refused' }],
    [active, { type: 'stopped_trying' }, disconnected],
    [active, { type: 'backend_died', reason: 'FUSE session ended' }, { state: 'failed', reason: 'FUSE session ended' }],
    [reconnecting, { type: 'probe_ok' }, active],
    [reconnecting, { type: 'connection_lost' }, reconnecting],
    [reconnecting, { type: 'reconnecting' }, reconnecting],
    [reconnecting, { type: 'reconnected' }, active],
    [reconnecting, { type: 'gave_up', reason: 'authentication refused' }, { state: 'failed', reason: 'authentication refused' }],
    [reconnecting, { type: 'stopped_trying' }, disconnected],
    [reconnecting, { type: 'backend_died', reason: 'FUSE session ended' }, { state: 'failed', reason: 'FUSE session ended' }],
    [disconnected, { type: 'probe_ok' }, active],
    [disconnected, { type: 'connection_lost' }, disconnected],
    [disconnected, { type: 'reconnecting' }, reconnecting],
    [disconnected, { type: 'reconnected' }, active],
    [disconnected, { type: 'gave_up', reason: 'authentication refused' }, { state: 'failed', reason: 'authentication refused' }],
    [disconnected, { type: 'stopped_trying' }, disconnected],
    [disconnected, { type: 'backend_died', reason: 'FUSE session ended' }, { state: 'failed', reason: 'FUSE session ended' }],
  ];

  it.each(table)('%j + %j -> %j', (from, signal, to) => {
    expect(nextMountState(from, signal)).toEqual(to);
  });

  it.each(signals)('failed is terminal and keeps its first reason (%j)', (signal) => {
    expect(nextMountState(failed, signal)).toBe(failed);
  });

  it('covers every state and signal in the table', () => {
    const states = new Set(table.map(([from]) => from.state));
    expect([...states].sort()).toEqual(['active', 'disconnected', 'reconnecting']);
    for (const state of states) {
      const covered = table.filter(([from]) => from.state === state).map(([, s]) => s.type).sort();
      expect(covered).toEqual(signals.map((s) => s.type).sort());
    }
  });
});
