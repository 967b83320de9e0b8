import { BACKENDS, availabilityOf, selectBackend } from './backends/index.js';
import type { BackendName, HostFacts, MountHandle } from './backends/types.js';
import { BACKEND_NAMES } from './backends/types.js';
import { backendUnavailable } from './backends/unavailable.js';
import { UserError } from './errors.js';
import { prepareMountpoint } from './mountpoint.js';
import { gatherHostFacts } from './platform/host-facts.js';
import type { ConnectOptions } from './remote/connect.js';
import { parseRemoteSpec } from './remote/spec.js';
import { readUserSshConfig, resolveTarget } from './remote/target.js';

export type BackendChoice = BackendName | 'auto';

export interface MountOptions {
  remote: string;
  mountpoint?: string;
  backend?: BackendChoice;
  readonly?: boolean;
  nonempty?: boolean;
  /** For tests and callers that already probed; gathered when absent. */
  facts?: HostFacts;
  sshConfig?: string;
  /**
   * How to connect (flags, prompter). The connection is opened with
   * `openSsh(target, { ...connect, sshConfig })` once the backend is chosen.
   */
  connect?: ConnectOptions;
}

export function parseBackendChoice(value: string): BackendChoice {
  if (value === 'auto' || (BACKEND_NAMES as readonly string[]).includes(value)) return value as BackendChoice;
  throw new UserError('usage', `unknown backend '${value}'; choose one of auto, ${BACKEND_NAMES.join(', ')}`);
}

export function chooseBackend(choice: BackendChoice, facts: HostFacts): BackendName {
  const availability = availabilityOf(facts);
  if (choice === 'auto') {
    const selection = selectBackend(facts.platform, availability);
    if (!selection.ok) {
      throw new UserError('backendUnavailable', `no backend can mount here (${selection.reason}); see 'tmount backends'`);
    }
    return selection.backend;
  }
  const state = availability[choice];
  if (!state.ok) throw backendUnavailable(choice, state.reason);
  return choice;
}

/**
 * The one entry point every front end uses: validates everything that can be
 * validated locally before any process, connection or mount is started, then
 * hands over to the chosen backend.
 */
export async function mount(options: MountOptions): Promise<MountHandle> {
  const spec = parseRemoteSpec(options.remote);
  const portFlag = options.connect?.port;
  if (portFlag !== undefined && spec.port !== undefined && portFlag !== spec.port) {
    throw new UserError('usage', `the remote '${options.remote}' says port ${spec.port} but --port says ${portFlag}; give the port once`);
  }
  const target = resolveTarget(spec, options.sshConfig ?? (await readUserSshConfig()));
  const facts = options.facts ?? gatherHostFacts();
  const backend = BACKENDS[chooseBackend(options.backend ?? 'auto', facts)];
  const mountpoint = await prepareMountpoint(backend.mountpointKind, options.mountpoint, target.alias, {
    nonempty: options.nonempty ?? false,
  });
  try {
    return await backend.mount({ target, mountpoint: mountpoint.path, readonly: options.readonly ?? false });
  } catch (err) {
    await mountpoint.undo();
    throw err;
  }
}
