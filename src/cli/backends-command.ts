import type { Command } from 'commander';
import { reportBackends } from '../backends/index.js';
import { gatherHostFacts } from '../platform/host-facts.js';
import { formatOption, printJson, type OutputFormat } from './format.js';
import { formatTable } from './table.js';

export function registerBackendsCommand(program: Command): void {
  program
    .command('backends')
    .description('list the backends, whether each can mount on this machine now, and which auto picks')
    .addOption(formatOption())
    .action((options: { format: OutputFormat }) => {
      const report = reportBackends(gatherHostFacts());
      if (options.format === 'json') return printJson(report);
      const rows = report.map((entry) => [
        entry.name,
        entry.available ? 'yes' : 'no',
        entry.default ? 'yes' : '',
        entry.reason,
      ]);
      process.stdout.write(`${formatTable(['BACKEND', 'AVAILABLE', 'DEFAULT', 'WHY'], rows)}\n`);
    });
}
