import { Command } from 'commander';
import { registerBackendsCommand } from './backends-command.js';
import { registerLifecycleCommands } from './lifecycle-commands.js';
import { registerMountCommand } from './mount-command.js';
import { VERSION } from '../version.js';


export function buildProgram(): Command {
  const program = new Command()
    .name('tmount')
    .description("Mount a remote machine's files over SSH as a local folder. No agent on the remote, just SSH.")
    .version(VERSION)
    // Set before the subcommands are added, which copy these settings.
    .exitOverride()
    .configureOutput({
      outputError: (text, write) => write(`tmount: ${text.replace(/^error: /, '').trim()}; see 'tmount --help'\n`),
    });
  registerMountCommand(program);
  registerLifecycleCommands(program);
  registerBackendsCommand(program);
  program.addHelpText(
    'after',
    '\nExit codes: 0 ok, 1 internal error, 2 usage, 3 backend unavailable, 4 mountpoint,\n' +
      '5 connection, 6 authentication, 7 host key, 8 no such mount, 9 remote path,\n' +
      '10 mount runs another tmount version, 130 interrupted.',
  );
  return program;
}
