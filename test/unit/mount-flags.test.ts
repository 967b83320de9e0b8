import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { addTuningOptions, type TuningFlags, tuningFromFlags } from '../../src/cli/mount-flags.js';
import { UserError } from '../../src/errors.js';

function parse(args: string[]): ReturnType<typeof tuningFromFlags> {
  const command = addTuningOptions(new Command().exitOverride());
  command.parse(args, { from: 'user' });
  return tuningFromFlags(command.opts<TuningFlags>(), () => {});
}

describe('mount tuning flags', () => {
  it('passes --dir-prefetch to the filesystem, 128 by default and 0 to turn it off', () => {
    expect(parse([]).cache.dirPrefetch).toBe(128);
    expect(parse(['--dir-prefetch', '0']).cache.dirPrefetch).toBe(0);
    expect(parse(['--dir-prefetch', '16']).cache.dirPrefetch).toBe(16);
  });

  it('refuses a --dir-prefetch that is not a whole number, naming the fix', () => {
    let error: unknown;
    try {
      parse(['--dir-prefetch', 'lots']);
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(UserError);
    expect((error as UserError).message).toBe("invalid --dir-prefetch 'lots'; give a whole number, e.g. 128 (0 turns it off)");
  });
});
