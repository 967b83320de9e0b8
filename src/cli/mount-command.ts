import { Option, type Command } from 'commander';
import { BACKEND_NAMES } from '../backends/types.js';
import { mount, parseBackendChoice } from '../mount.js';
import { formatOption } from './format.js';

export function registerMountCommand(program: Command): void {
  program
    .command('mount')
    .description('mount a remote directory over SSH')
    .argument('<remote>', '[user@]host[:port]:/path, host:relative/path, or ssh://[user@]host[:port]/path')
    .argument('[mountpoint]', 'local directory (default ~/tmount/<host>, created when missing)')
    .addOption(
      new Option('--backend <name>', `auto, or one of ${BACKEND_NAMES.join(', ')}`).default('auto').argParser(parseBackendChoice),
    )
    .option('--readonly', 'refuse every change to the remote', false)
    .option('--nonempty', 'allow mounting over a non-empty directory', false)
    .addOption(formatOption())
    .addHelpText('after', '\nExamples:\n  tmount mount alice@example.org:/srv ~/srv\n  tmount mount build-box: --backend nfs')
    .action(async (remote: string, mountpoint: string | undefined, options) => {
      const handle = await mount({
        remote,
        mountpoint,
        backend: options.backend,
        readonly: options.readonly,
        nonempty: options.nonempty,
      });
      process.stdout.write(`mounted ${remote} at ${handle.mountpoint ?? 'Finder'} (${handle.backend})\n`);
    });
}
