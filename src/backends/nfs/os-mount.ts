import { execFile } from 'node:child_process';
import { isMountPoint } from '../../platform/mounts.js';
import { MOUNT_PROGRAM, MOUNT_V3 } from './mount-protocol.js';
import { NFS_PROGRAM, NFS_V3 } from './nfs3.js';
import { type Mapping, PmapProc, portmapCall, type PortmapOptions } from './portmap.js';

export interface Command {
  file: string;
  args: string[];
}

export interface OsMountSpec {
  platform: NodeJS.Platform;
  port: number;
  mountPort: number;
  exportPath: string;
  mountpoint: string;
  readonly: boolean;
  /** The server accepts unprivileged client ports; the client need not use a reserved one. */
  insecure: boolean;
}

export interface OsMountPlan {
  command: Command;
  /**
   * Programs to register with the host's portmapper while the mount command
   * runs: the BSDs' mount_nfs has no option for the MOUNT port and asks the
   * portmapper for it.
   */
  register: Mapping[];
}

const SERVER = '127.0.0.1';

/**
 * The command that mounts the loopback export, per OS. Pure: what it
 * builds is unit-tested for every OS; only Linux's can run on this machine
 * class, and only where the kernel has an NFS client.
 *
 * Every mount is NFSv3 over TCP, soft (a dead tmount process gives EIO
 * instead of hanging its callers forever) and without the NLM lock
 * protocol, which the server does not speak (locks stay local).
 */
export function osMountCommand(spec: OsMountSpec): OsMountPlan {
  const source = `${SERVER}:${spec.exportPath}`;
  const mountProgram = { prog: MOUNT_PROGRAM, vers: MOUNT_V3, port: spec.mountPort };
  switch (spec.platform) {
    case 'linux': {
      // nfs(5): port= and mountport= skip rpcbind entirely; noacl skips the NFSACL side protocol.
      const options = [
        'vers=3',
        'proto=tcp',
        `port=${spec.port}`,
        'mountvers=3',
        'mountproto=tcp',
        `mountport=${spec.mountPort}`,
        'nolock',
        'noacl',
        'soft',
        'sec=sys',
        spec.readonly ? 'ro' : 'rw',
      ];
      return { command: { file: 'mount', args: ['-t', 'nfs', '-o', options.join(','), source, spec.mountpoint] }, register: [] };
    }
    case 'darwin': {
      // mount_nfs(8) on macOS: port= and mountport= name both ports; locallocks
      // keeps flock/fcntl working without lockd; nobrowse keeps Finder from
      // listing it as a removable volume; resvport makes the kernel use a
      // reserved port, which the server requires unless --nfs-insecure.
      const options = [
        'vers=3',
        'tcp',
        `port=${spec.port}`,
        `mountport=${spec.mountPort}`,
        'locallocks',
        'nobrowse',
        'soft',
        'intr',
        ...(spec.insecure ? [] : ['resvport']),
        ...(spec.readonly ? ['rdonly'] : []),
      ];
      return { command: { file: '/sbin/mount_nfs', args: ['-o', options.join(','), source, spec.mountpoint] }, register: [] };
    }
    case 'freebsd': {
      // FreeBSD mount_nfs(8): port= sets the NFS port (no rpcbind lookup for
      // it), but MOUNT is always looked up through rpcbind. retrycnt=1: fail
      // at once instead of retrying forever; nolockd: no NLM.
      const options = ['nfsv3', 'tcp', `port=${spec.port}`, 'nolockd', 'soft', 'intr', 'retrycnt=1', ...(spec.readonly ? ['ro'] : [])];
      return { command: { file: '/sbin/mount_nfs', args: ['-o', options.join(','), source, spec.mountpoint] }, register: [mountProgram] };
    }
    case 'openbsd': {
      // OpenBSD mount_nfs(8): -o port= for NFS, MOUNT through portmap(8);
      // -R 1: one attempt (the default is 10000, a minute apart).
      const options = ['nfsv3', 'tcp', `port=${spec.port}`, 'soft', 'intr', ...(spec.readonly ? ['rdonly'] : [])];
      return { command: { file: '/sbin/mount_nfs', args: ['-R', '1', '-o', options.join(','), source, spec.mountpoint] }, register: [mountProgram] };
    }
    case 'netbsd': {
      // NetBSD's mount_nfs asks rpcbind for the NFS program first and only
      // then applies port=, so both programs are registered and port= is
      // not needed.
      const options = ['nfsv3', 'tcp', 'soft', 'intr', ...(spec.readonly ? ['rdonly'] : [])];
      return {
        command: { file: '/sbin/mount_nfs', args: ['-R', '1', '-o', options.join(','), source, spec.mountpoint] },
        register: [{ prog: NFS_PROGRAM, vers: NFS_V3, port: spec.port }, mountProgram],
      };
    }
    default:
      throw new Error(`tmount cannot mount NFS on ${spec.platform}`);
  }
}

/** The command that unmounts it again; `force` detaches a busy or dead mount. */
export function osUnmountCommand(platform: NodeJS.Platform, mountpoint: string, force: boolean): Command {
  switch (platform) {
    case 'linux':
      return { file: 'umount', args: force ? ['-f', '-l', mountpoint] : [mountpoint] };
    case 'darwin':
      return { file: '/usr/sbin/diskutil', args: force ? ['unmount', 'force', mountpoint] : ['unmount', mountpoint] };
    default:
      return { file: '/sbin/umount', args: force ? ['-f', mountpoint] : [mountpoint] };
  }
}

export interface CommandResult {
  /** The exit code; null when the command could not start or was killed. */
  code: number | null;
  how: string;
  stdout: string;
  stderr: string;
}

export function runCommand(command: Command, timeoutMs: number): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(command.file, command.args, { timeout: timeoutMs, killSignal: 'SIGKILL', encoding: 'utf8' }, (error, stdout, stderr) => {
      const failure = error as (Error & { code?: number | string; killed?: boolean }) | null;
      if (!failure) return resolve({ code: 0, how: 'succeeded', stdout, stderr });
      if (typeof failure.code === 'number') return resolve({ code: failure.code, how: `exited ${failure.code}`, stdout, stderr });
      const how = failure.killed ? `did not finish within ${timeoutMs / 1000} s` : `could not run (${failure.code ?? failure.message})`;
      resolve({ code: null, how, stdout, stderr });
    });
  });
}

function describe(command: Command, result: CommandResult): string {
  const output = (result.stderr.trim() || result.stdout.trim()).split('\n').join(' ');
  return `${command.file} ${command.args.join(' ')} ${result.how}${output ? `: ${output}` : ''}`;
}

/**
 * Runs the OS mount: registers with the portmapper where the OS needs it,
 * runs the command, and takes the registrations back whatever happened
 * (MOUNT is only asked once, while mounting). Throws with the command line
 * and its output when the mount fails.
 */
export async function runOsMount(spec: OsMountSpec, portmap: PortmapOptions = {}): Promise<void> {
  const plan = osMountCommand(spec);
  const registered: Mapping[] = [];
  try {
    for (const mapping of plan.register) {
      let done: boolean;
      try {
        done = await portmapCall(PmapProc.set, mapping, portmap);
      } catch (err) {
        throw new Error(
          `mount_nfs on ${spec.platform} finds the MOUNT service through the portmapper, which cannot be reached (${(err as Error).message}); start rpcbind (or portmap) and mount again`,
        );
      }
      if (!done) {
        throw new Error(
          `the portmapper already has program ${mapping.prog} version ${mapping.vers} registered (an NFS server runs on this host, or another tmount is mounting right now); try again, or use --no-os-mount with a user-space client`,
        );
      }
      registered.push(mapping);
    }
    const result = await runCommand(plan.command, 60_000);
    if (result.code !== 0) throw new Error(describe(plan.command, result));
  } finally {
    for (const mapping of registered) await portmapCall(PmapProc.unset, mapping, portmap).catch(() => false);
  }
}

/**
 * Unmounts. Some umount(8)s also tell the MOUNT service by RPC and exit
 * non-zero when that fails although the unmount itself worked, so success
 * is judged by the mount table, not the exit code.
 */
export async function runOsUnmount(platform: NodeJS.Platform, mountpoint: string, force: boolean): Promise<void> {
  const command = osUnmountCommand(platform, mountpoint, force);
  const result = await runCommand(command, 30_000);
  if (result.code === 0) return;
  const stillMounted = await isMountPoint(mountpoint).catch(() => true);
  if (stillMounted) throw new Error(describe(command, result));
}
