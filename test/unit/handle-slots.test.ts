import { describe, expect, it } from 'vitest';
import { HandleSlots } from '../../src/remote/handle-slots.js';

const handle = (slot: number) => {
  const buffer = Buffer.alloc(4);
  buffer.writeUInt32BE(slot, 0);
  return buffer;
};
const slotOf = (guess: Buffer | undefined) => guess?.readUInt32BE(0);

/** Sends an open and returns the handle that was guessed for it. */
function open(slots: HandleSlots): number | undefined {
  const guess = slotOf(slots.next());
  slots.opening();
  return guess;
}

describe('HandleSlots (the handle numbering of OpenSSH sftp-server)', () => {
  it('guesses new slots at the end, then the slot freed last', () => {
    const slots = new HandleSlots();
    expect(open(slots)).toBe(0);
    expect(open(slots)).toBe(1);
    slots.opened(handle(0));
    slots.opened(handle(1));
    slots.closing(handle(0));
    slots.closing(handle(1));
    // Both closes still in flight: the next open gets the slot freed last.
    expect(open(slots)).toBe(1);
    expect(open(slots)).toBe(0);
    expect(open(slots)).toBe(2);
    slots.closed(true);
    slots.closed(true);
    slots.opened(handle(1));
    slots.opened(handle(0));
    slots.opened(handle(2));
    expect(slotOf(slots.next())).toBe(3);
  });

  it('counts a failed open as taking no slot once its answer is in', () => {
    const slots = new HandleSlots();
    expect(open(slots)).toBe(0); // Will fail: no such file.
    // Sent before the failure is known, so guessed one too far.
    expect(open(slots)).toBe(1);
    slots.opened(undefined);
    slots.opened(handle(0));
    // The answered state is exact again.
    expect(slotOf(slots.next())).toBe(1);
  });

  it('stops guessing when the server numbers handles another way', () => {
    const slots = new HandleSlots();
    open(slots);
    slots.opened(Buffer.from('a-long-server-handle'));
    expect(slots.next()).toBeUndefined();

    const other = new HandleSlots();
    open(other);
    other.opened(handle(7));
    expect(other.next()).toBeUndefined();
  });

  it('stops guessing after a close the server refused', () => {
    const slots = new HandleSlots();
    open(slots);
    slots.opened(handle(0));
    slots.closing(handle(0));
    slots.closed(false);
    expect(slots.next()).toBeUndefined();
  });
});
