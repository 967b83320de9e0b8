import { describe, expect, it } from 'vitest';
import { claimTimes, type TimesHolder } from '../../src/vfs/times-order.js';

/** Whether a claim is still waiting after everything already queued has run. */
async function pending(claim: Promise<unknown>): Promise<boolean> {
  const marker = Symbol('pending');
  const result = await Promise.race([claim, new Promise((resolve) => setTimeout(resolve, 0, marker))]);
  return result === marker;
}

describe('claimTimes (setattrs that set times, ordered by arrival)', () => {
  it('lets times through when nothing later claimed them', async () => {
    const file: TimesHolder = {};
    const first = await claimTimes(file, 1);
    expect(first).toBeDefined();
    first!(true);
    const second = await claimTimes(file, 2);
    expect(second).toBeDefined();
    second!(true);
  });

  it('drops the times of an earlier arrival once a later one set its own', async () => {
    const file: TimesHolder = {};
    const later = await claimTimes(file, 2);
    const earlier = claimTimes(file, 1);
    // It waits while the later times are on their way...
    expect(await pending(earlier)).toBe(true);
    later!(true);
    // ...and then has nothing to do: its times are outdated.
    expect(await earlier).toBeUndefined();
  });

  it('sets the times of an earlier arrival when the later one failed', async () => {
    const file: TimesHolder = {};
    const later = await claimTimes(file, 2);
    const earlier = claimTimes(file, 1);
    later!(false);
    const settle = await earlier;
    expect(settle).toBeDefined();
    settle!(true);
    // It is now the latest: an arrival before it yields to it at once.
    expect(await claimTimes(file, 0)).toBeUndefined();
  });

  it('goes back past every failed claim to the last one standing', async () => {
    const file: TimesHolder = {};
    const first = await claimTimes(file, 1);
    first!(true);
    const second = await claimTimes(file, 3);
    const third = await claimTimes(file, 4);
    second!(false);
    // The failure of a claim that is not the latest changes nothing yet.
    const waiting = claimTimes(file, 2);
    expect(await pending(waiting)).toBe(true);
    third!(false);
    // Both later ones failed: ticket 2 is the latest that can still set times.
    const settle = await waiting;
    expect(settle).toBeDefined();
    settle!(true);
  });

  it('keeps waiting for the next later claim when one of several failed', async () => {
    const file: TimesHolder = {};
    const middle = await claimTimes(file, 2);
    const last = await claimTimes(file, 3);
    const earliest = claimTimes(file, 1);
    middle!(false);
    expect(await pending(earliest)).toBe(true);
    last!(true);
    expect(await earliest).toBeUndefined();
  });

  it('puts back what failed times replaced only while no later claim was made', async () => {
    const file: TimesHolder = {};
    const undone: number[] = [];
    const alone = await claimTimes(file, 1);
    alone!(false, () => undone.push(1));
    expect(undone).toEqual([1]);

    const overtaken = await claimTimes(file, 2);
    const later = await claimTimes(file, 3);
    // A later claim now holds: what the failed one replaced is the later one's to replace.
    overtaken!(false, () => undone.push(2));
    expect(undone).toEqual([1]);
    later!(true, () => undone.push(3));
    expect(undone).toEqual([1]);
  });
});
