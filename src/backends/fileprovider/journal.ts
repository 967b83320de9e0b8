import { randomBytes } from 'node:crypto';

export interface JournalEntry {
  seq: number;
  kind: 'update' | 'delete';
  id: string;
  /** The item's parent when the change happened. */
  parent: string;
  /** A move: the parent it left. */
  oldParent?: string;
}

export type JournalRead =
  | { ok: true; entries: JournalEntry[]; anchor: string; more: boolean }
  | { ok: false; reason: string };

/**
 * The domain's change journal: every change the extension has not
 * necessarily seen, in order, each at a position (its sequence number).
 * A sync anchor is `<epoch>.<position>`: the epoch is new for every journal,
 * so anchors of an earlier tmount run never match, and only the last
 * `capacity` entries are kept, so an anchor older than them cannot be
 * answered. Both are "expired", and the system then enumerates again.
 */
export class ChangeJournal {
  readonly epoch: string;
  private readonly entries: JournalEntry[] = [];
  private head = 0;

  constructor(
    private readonly capacity = 10_000,
    epoch = randomBytes(6).toString('hex'),
  ) {
    this.epoch = epoch;
  }

  get position(): number {
    return this.head;
  }

  get anchor(): string {
    return this.anchorAt(this.head);
  }

  anchorAt(seq: number): string {
    return `${this.epoch}.${seq}`;
  }

  /** The oldest position an anchor may still name: everything after it is retained. */
  private get oldestAnswerable(): number {
    return this.entries.length === 0 ? this.head : this.entries[0]!.seq - 1;
  }

  record(change: Omit<JournalEntry, 'seq'>): number {
    const entry: JournalEntry = { seq: ++this.head, ...change };
    this.entries.push(entry);
    if (this.entries.length > this.capacity) this.entries.splice(0, this.entries.length - this.capacity);
    return entry.seq;
  }

  /** Up to `limit` entries after `anchor`; `anchor` in the answer is where the next read starts. */
  read(anchor: string, limit: number): JournalRead {
    const match = /^([0-9a-f]+)\.(\d+)$/.exec(anchor);
    if (!match) return { ok: false, reason: `'${anchor.slice(0, 60)}' is not a sync anchor of this server` };
    const [, epoch, seqText] = match;
    if (epoch !== this.epoch) return { ok: false, reason: 'the anchor is from an earlier run of this mount' };
    const seq = Number(seqText);
    if (seq > this.head) return { ok: false, reason: `the anchor names position ${seq}, past the journal's head ${this.head}` };
    if (seq < this.oldestAnswerable) {
      return { ok: false, reason: `the anchor names position ${seq}; the journal keeps only positions after ${this.oldestAnswerable}` };
    }
    const start = this.entries.findIndex((entry) => entry.seq > seq);
    const slice = start < 0 ? [] : this.entries.slice(start, start + Math.max(1, limit));
    const last = slice.length > 0 ? slice[slice.length - 1]!.seq : seq;
    return { ok: true, entries: slice, anchor: this.anchorAt(last), more: last < this.head };
  }
}

/**
 * The net effect of a run of entries: one entry per identifier, the last
 * one, in the order of those last entries. A move's old parent survives
 * later changes of the same item, so a container it left still hears of it.
 */
export function coalesce(entries: JournalEntry[]): JournalEntry[] {
  const latest = new Map<string, JournalEntry>();
  for (const entry of entries) {
    const oldParent = latest.get(entry.id)?.oldParent ?? entry.oldParent;
    const { oldParent: _, ...rest } = entry;
    latest.delete(entry.id);
    latest.set(entry.id, oldParent !== undefined && oldParent !== entry.parent ? { ...rest, oldParent } : rest);
  }
  return [...latest.values()];
}
