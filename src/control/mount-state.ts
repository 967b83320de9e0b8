/** What `status` shows as a mount's `state` (DESIGN.md status schema). */
export type MountState =
  | { state: 'active' }
  | { state: 'reconnecting' }
  | { state: 'disconnected' }
  | { state: 'failed'; reason: string };

/**
 * Everything that can change a mount's state, from the health probe, the
 * connection and the backend. The monitor turns observations into signals;
 * this module only decides.
 */
export type MountSignal =
  | { type: 'probe_ok' }
  | { type: 'connection_lost' }
  | { type: 'reconnecting' }
  | { type: 'reconnected' }
  /** Reconnecting stopped for a reason that retrying cannot fix (auth refused, host key changed, root gone). */
  | { type: 'gave_up'; reason: string }
  /** Reconnecting is off or its time ran out: the mount stays, operations fail until `tmount reconnect`. */
  | { type: 'stopped_trying' }
  /** The OS side died (the FUSE session ended without an unmount). */
  | { type: 'backend_died'; reason: string };

/** The mount state after `signal`. `failed` is terminal: only unmount leaves it. */
export function nextMountState(current: MountState, signal: MountSignal): MountState {
  if (current.state === 'failed') return current;
  switch (signal.type) {
    case 'backend_died':
      return { state: 'failed', reason: signal.reason };
    case 'gave_up':
      return { state: 'failed', reason: signal.reason };
    case 'probe_ok':
    case 'reconnected':
      return { state: 'active' };
    case 'connection_lost':
    case 'reconnecting':
      return current.state === 'disconnected' && signal.type === 'connection_lost' ? current : { state: 'reconnecting' };
    case 'stopped_trying':
      return { state: 'disconnected' };
  }
}
