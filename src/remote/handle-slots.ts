/**
 * The handle the server will give the next open, known before its answer.
 *
 * OpenSSH's sftp-server numbers handles by slot in one table of open files
 * and directories, sent as the slot's 4-byte big-endian index: an open takes
 * the slot freed last, or a new one at the end, and a close frees its slot.
 * It handles requests one at a time, in the order they arrive, so following
 * every open and close of a session in the order they were sent gives the
 * handle of the next open. A read can then go out together with the open
 * instead of one round trip after it.
 *
 * A guess is only a guess: whoever uses one checks it against the open's
 * answer, and drops what the read returned if they differ (the read may have
 * hit another open file, or none). An answer this model cannot explain (a
 * server that numbers differently) switches guessing off for the session.
 */
export class HandleSlots {
  /** Slots free once every answered request is applied; the last one is taken next. */
  private readonly free: number[] = [];
  private slots = 0;
  /** Opens and closes sent and not answered yet, oldest first (the server answers in order). */
  private readonly inFlight: (number | 'open')[] = [];
  private broken = false;

  /** The handle the next open sent will most likely get; undefined once guessing is off. */
  next(): Buffer | undefined {
    return this.broken ? undefined : slotHandle(this.nextSlot());
  }

  /** Records an open (of a file or a directory) being sent now. */
  opening(): void {
    this.inFlight.push('open');
  }

  /** Records a close of `handle` being sent now. */
  closing(handle: Buffer): void {
    const slot = slotOf(handle);
    if (slot === undefined) this.broken = true;
    this.inFlight.push(slot ?? -1);
  }

  /** The answer to the oldest open in flight: its handle, or undefined when it failed (no slot taken). */
  opened(handle: Buffer | undefined): void {
    if (this.inFlight.shift() !== 'open') this.broken = true;
    if (handle === undefined || this.broken) return;
    if (slotOf(handle) !== this.take(this.free, this.slots)) {
      this.broken = true;
      return;
    }
    if (this.free.length > 0) this.free.pop();
    else this.slots++;
  }

  /** The answer to the oldest close in flight: whether the server freed its slot (it knew the handle). */
  closed(freed: boolean): void {
    const slot = this.inFlight.shift();
    if (typeof slot !== 'number' || slot < 0 || !freed) {
      // A handle the server did not know: this model was wrong about its table.
      this.broken = true;
      return;
    }
    this.free.push(slot);
  }

  /** Replays what is in flight over the answered state. */
  private nextSlot(): number {
    const free = [...this.free];
    let slots = this.slots;
    for (const entry of this.inFlight) {
      if (entry !== 'open') free.push(entry);
      else if (free.length > 0) free.pop();
      else slots++;
    }
    return this.take(free, slots);
  }

  private take(free: readonly number[], slots: number): number {
    return free.length > 0 ? free[free.length - 1]! : slots;
  }
}

function slotOf(handle: Buffer): number | undefined {
  return handle.length === 4 ? handle.readUInt32BE(0) : undefined;
}

function slotHandle(slot: number): Buffer {
  const handle = Buffer.allocUnsafe(4);
  handle.writeUInt32BE(slot, 0);
  return handle;
}
