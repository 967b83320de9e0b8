import { appendFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { BACKEND_NAMES } from '../backends/types.js';
import { MountService } from '../control/mount-service.js';
import { nfsUrl } from '../control/status.js';
import { newMountId, socketFor } from '../control/registry.js';
import { ensureStateDir } from '../control/state-dir.js';
import { ExitCode, UserError } from '../errors.js';
import { mount, parseBackendChoice, type BackendChoice, type RunningMount } from '../mount.js';
import { parseRemoteSpec } from '../remote/spec.js';
import { VERSION } from '../version.js';
import { mountInBackground, ReadyReporter } from './background.js';
import { connectOptionsFromCli, parsePortOption, parseSshOptionArg } from '../remote/ssh-options.js';
import { formatOption } from './format.js';
import { addTuningOptions, tuningFromFlags, type TuningFlags } from './mount-flags.js';
import { createTtyPrompter } from './prompter.js';
import { serveUntilUnmounted } from './serve.js';

interface MountFlags extends TuningFlags {
  backend: BackendChoice;
  foreground: boolean;
  identity?: string[];
  port?: number;
  sshOption?: string[];
  acceptNewHostKey: boolean;
  /** Commander's name for --no-os-mount: false when given. */
  osMount: boolean;
  nfsInsecure: boolean;
  readyFd?: number;
  id?: string;
}

function collect(value: string, previous: string[] | undefined): string[] {
  return [...(previous ?? []), value];
}

export function registerMountCommand(program: Command): void {
  const command = program
    .command('mount')
    .description('mount a remote directory over SSH')
    .argument('<remote>', '[user@]host[:port]:/path, host:relative/path, or ssh://[user@]host[:port]/path')
    .argument('[mountpoint]', 'local directory (default ~/tmount/<host>, created when missing)')
    .addOption(
      new Option('--backend <name>', `auto, or one of ${BACKEND_NAMES.join(', ')}`).default('auto').argParser(parseBackendChoice),
    )
    .option('--readonly', 'refuse every change to the remote', false)
    .option('--nonempty', 'allow mounting over a non-empty directory', false)
    .option('--foreground', 'stay attached: log to stderr, Ctrl+C unmounts', false)
    .option('--identity <file>', 'private key to try first (repeatable), as ssh -i', collect)
    .addOption(new Option('--port <n>', 'SSH port, over the remote spec and ~/.ssh/config').argParser(parsePortOption))
    .option(
      '--ssh-option <Key=Value>',
      'an ssh_config setting, as ssh -o (repeatable); see the README for the keys tmount understands',
      (value: string, previous: string[] | undefined) => {
        parseSshOptionArg(value);
        return collect(value, previous);
      },
    )
    .option('--accept-new-host-key', 'trust and record an unknown host key without asking (a changed key is still refused)', false)
    .option('--no-os-mount', 'nfs backend: serve the export on 127.0.0.1 without mounting it (for a user-space NFS client; see tmount status)')
    .option('--nfs-insecure', 'nfs backend: accept NFS clients on unprivileged ports (user-space clients such as libnfs)', false);
  addTuningOptions(command)
    .addOption(formatOption())
    .addHelpText(
      'after',
      '\nExamples:\n  tmount mount alice@example.org:/srv ~/srv\n  tmount mount build-box: --backend nfs\n' +
        '  tmount mount alice@10.0.0.5:/data --identity ~/.ssh/work_ed25519 --ssh-option StrictHostKeyChecking=accept-new',
    )
    .addOption(new Option('--ready-fd <fd>', 'internal: report readiness on this fd').hideHelp().argParser(Number))
    .addOption(new Option('--id <id>', 'internal: the mount id chosen by the parent').hideHelp())
    .action(async (remote: string, mountpoint: string | undefined, options: MountFlags) => {
      if (!options.foreground) {
        // Everything checkable without connecting is checked here, so mistakes
        // are reported by this process and no mount process is started for them.
        connectOptionsFromCli({ identity: options.identity, port: options.port, sshOption: options.sshOption, acceptNewHostKey: options.acceptNewHostKey });
        parseRemoteSpec(remote);
        process.exitCode = await mountInBackground(rawArgs(), newMountId(ensureStateDir()));
        return;
      }
      await mountInForeground(remote, mountpoint, options);
    });
}

/** This command line as typed (`mount …`), for the background process to parse again. */
function rawArgs(): string[] {
  return process.argv.slice(2);
}

async function mountInForeground(remote: string, mountpoint: string | undefined, options: MountFlags): Promise<void> {
  const reporter = options.readyFd === undefined ? undefined : new ReadyReporter(options.readyFd);
  const stateDir = ensureStateDir();
  const id = options.id ?? newMountId(stateDir);
  const logFile = reporter ? join(stateDir, `${id}.log`) : undefined;
  const log = logFile ? (line: string) => appendFileSync(logFile, `${line}\n`) : (line: string) => process.stderr.write(`${line}\n`);
  const service = new MountService(
    { id, version: VERSION, stateDir, socket: socketFor(id, stateDir) },
    { remote, mountpoint: mountpoint === undefined ? null : resolve(mountpoint), backend: options.backend === 'auto' ? 'fuse' : options.backend },
  );
  // Phases go to the starting `tmount mount` and to event subscribers of this mount.
  const onPhase = (phase: string) => {
    if (reporter) reporter.phase(phase);
    else if (process.stderr.isTTY) process.stderr.write(`tmount: ${phase}…\n`);
    service.phase(phase);
  };
  let running: RunningMount;
  try {
    await service.announce();
    const flags = connectOptionsFromCli({
      identity: options.identity,
      port: options.port,
      sshOption: options.sshOption,
      acceptNewHostKey: options.acceptNewHostKey,
    });
    const prompter = createTtyPrompter();
    const { cache, tuning, readonly, nonempty, link, keepalive } = tuningFromFlags(options, log);
    running = await mount({
      link,
      onPhase,
      remote,
      mountpoint,
      backend: options.backend,
      readonly,
      nonempty,
      cache,
      tuning,
      nfs: { noOsMount: options.osMount === false, insecure: options.nfsInsecure },
      connect: {
        ...flags,
        ...keepalive,
        ...(prompter ? { prompter } : {}),
        notify: (message) => process.stderr.write(`tmount: ${message}\n`),
      },
    });
  } catch (err) {
    await service.failStart(err instanceof Error ? err.message : String(err));
    if (!reporter) throw err;
    await reporter.error(err);
    process.exitCode = err instanceof UserError ? err.exitCode : ExitCode.internal;
    return;
  }
  service.attach(running);
  const where = running.mountpoint ?? (running.nfs ? nfsUrl(running.nfs) : 'Finder');
  const line = `mounted ${running.source} at ${where} (${running.backend}, id ${id})`;
  if (reporter) await reporter.ready(line);
  else process.stdout.write(`${line}\n`);
  try {
    await serveUntilUnmounted(running, { background: reporter !== undefined });
  } finally {
    await service.stop();
  }
  // Unmounted and cleaned up: a reconnect attempt still waiting on a dead
  // network must not keep the process (and the user's unmount) waiting.
  process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
}
