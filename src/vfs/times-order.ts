/**
 * A setattr that set a file's times, numbered by arrival. The kernel's
 * write-back stamp and a futimens right after it (cp -p) are both in flight
 * at a close: the one that arrived last must win even when the other's
 * awaits finish later.
 */
export interface TimesClaim {
  readonly ticket: number;
  /** Resolves true once these times were set (or queued behind the data), false if they failed. */
  readonly outcome: Promise<boolean>;
  /** The claim this one replaced, to fall back on if this one fails; dropped once it succeeds. */
  previous: TimesClaim | undefined;
  failed: boolean;
}

export interface TimesHolder {
  timesClaim?: TimesClaim;
}

/**
 * Reports how the times of a claim went: every claim must be settled, or
 * later arrivals wait for it for ever. `undo`, for times that failed, runs
 * only while no later claim was made: it puts back what these times replaced.
 */
export type SettleTimes = (applied: boolean, undo?: () => void) => void;

/**
 * Waits until the times of setattr `ticket` are the latest for `holder`.
 * Resolves undefined when a setattr that arrived later set its times: these
 * are then outdated and must not go out. One that arrived later but failed
 * does not count, so times a caller is told were set are never dropped in
 * favour of times that were refused.
 */
export async function claimTimes(holder: TimesHolder, ticket: number): Promise<SettleTimes | undefined> {
  for (;;) {
    const current = holder.timesClaim;
    if (current && current.ticket > ticket) {
      if (await current.outcome) return undefined;
      continue; // It failed and gave way to the claim before it, maybe this one's.
    }
    let resolve!: (applied: boolean) => void;
    const claim: TimesClaim = { ticket, previous: current, failed: false, outcome: new Promise<boolean>((r) => (resolve = r)) };
    holder.timesClaim = claim;
    return (applied, undo) => {
      if (applied) {
        claim.previous = undefined;
      } else {
        claim.failed = true;
        if (holder.timesClaim === claim) {
          undo?.();
          let before = claim.previous;
          while (before?.failed) before = before.previous;
          holder.timesClaim = before;
        }
      }
      resolve(applied);
    };
  }
}
