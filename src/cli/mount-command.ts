import { Option, type Command } from 'commander';
import { BACKEND_NAMES } from '../backends/types.js';
import { mount, parseBackendChoice } from '../mount.js';
import { connectOptionsFromCli, parsePortOption, parseSshOptionArg } from '../remote/ssh-options.js';
import { formatOption } from './format.js';
import { addTuningOptions, tuningFromFlags } from './mount-flags.js';
import { createTtyPrompter } from './prompter.js';
import { serveUntilUnmounted } from './serve.js';

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
    .option('--accept-new-host-key', 'trust and record an unknown host key without asking (a changed key is still refused)', false);
  addTuningOptions(command)
    .addOption(formatOption())
    .addHelpText(
      'after',
      '\nExamples:\n  tmount mount alice@example.org:/srv ~/srv\n  tmount mount build-box: --backend nfs\n' +
        '  tmount mount alice@10.0.0.5:/data --identity ~/.ssh/work_ed25519 --ssh-option StrictHostKeyChecking=accept-new',
    )
    .action(async (remote: string, mountpoint: string | undefined, options) => {
      const flags = connectOptionsFromCli({
        identity: options.identity,
        port: options.port,
        sshOption: options.sshOption,
        acceptNewHostKey: options.acceptNewHostKey,
      });
      const prompter = createTtyPrompter();
      const { cache, tuning, readonly, nonempty } = tuningFromFlags(options);
      const handle = await mount({
        remote,
        mountpoint,
        backend: options.backend,
        readonly,
        nonempty,
        cache,
        tuning,
        connect: {
          ...flags,
          ...(prompter ? { prompter } : {}),
          notify: (message) => process.stderr.write(`tmount: ${message}\n`),
        },
      });
      process.stdout.write(`mounted ${remote} at ${handle.mountpoint ?? 'Finder'} (${handle.backend})\n`);
      await serveUntilUnmounted(handle);
    });
}
