import type { Command } from 'commander';
import { UserError } from '../errors.js';
import { formatOption, printJson, type OutputFormat } from './format.js';

/**
 * The running-mount registry arrives with background mounts; until then a
 * mount lives only as long as its `tmount mount` process, so no other process
 * can see one and these commands report an empty set truthfully.
 */
const RUNNING_MOUNTS: never[] = [];

export function registerLifecycleCommands(program: Command): void {
  program
    .command('status')
    .description('show running mounts, their connection and statistics')
    .argument('[target]', 'a mountpoint or mount id (default: all)')
    .addOption(formatOption())
    .action((target: string | undefined, options: { format: OutputFormat }) => {
      if (target !== undefined) throw noSuchMount(target);
      if (options.format === 'json') return printJson({ schemaVersion: 1, mounts: RUNNING_MOUNTS });
      process.stdout.write('no mounts\n');
    });

  program
    .command('unmount')
    .alias('umount')
    .description('unmount a mount by mountpoint or id, or every mount with --all')
    .argument('[target]', 'a mountpoint or mount id')
    .option('--all', 'unmount every mount', false)
    .option('--force', 'lazy unmount even if busy or crashed', false)
    .action((target: string | undefined, options: { all: boolean }) => {
      if (target === undefined && !options.all) {
        throw new UserError('usage', 'name what to unmount: tmount unmount <mountpoint|id>, or tmount unmount --all');
      }
      if (target !== undefined) throw noSuchMount(target);
    });

  program
    .command('events')
    .description('stream connection and mount state changes, one line each, until interrupted')
    .argument('[target]', 'a mountpoint or mount id (default: all)')
    .addOption(formatOption())
    .action((target: string | undefined) => {
      throw target === undefined
        ? new UserError('notFound', 'no mount is running; start one with tmount mount, then watch it')
        : noSuchMount(target);
    });
}

function noSuchMount(target: string): UserError {
  return new UserError('notFound', `no mount matches '${target}'; list mounts with tmount status`);
}
