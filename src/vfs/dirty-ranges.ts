/** Bytes written at `offset`, kept as the chunks they arrived in until needed whole. */
export interface DirtyRange {
  offset: number;
  length: number;
  chunks: Buffer[];
}

function concat(range: DirtyRange): Buffer {
  if (range.chunks.length !== 1) range.chunks = [Buffer.concat(range.chunks, range.length)];
  return range.chunks[0]!;
}

/**
 * Unflushed writes of one handle, coalesced into non-overlapping ranges kept
 * in offset order; a later write wins where it overlaps an earlier one.
 * Appending right after a range (a sequential writer) is O(1): the chunk is
 * pushed, not copied.
 */
export class DirtyRanges {
  private ranges: DirtyRange[] = [];
  private total = 0;

  /** Dirty bytes held. */
  get bytes(): number {
    return this.total;
  }

  get isEmpty(): boolean {
    return this.ranges.length === 0;
  }

  /** One past the last dirty byte, 0 when clean. */
  get end(): number {
    const last = this.ranges[this.ranges.length - 1];
    return last ? last.offset + last.length : 0;
  }

  add(offset: number, data: Buffer): void {
    if (data.length === 0) return;
    const end = offset + data.length;
    const last = this.ranges[this.ranges.length - 1];
    if (last && last.offset + last.length === offset) {
      last.chunks.push(data);
      last.length += data.length;
      this.total += data.length;
      return;
    }
    // Every range that overlaps or touches [offset, end) merges with the new data.
    let first = this.ranges.findIndex((r) => r.offset + r.length >= offset);
    if (first < 0) first = this.ranges.length;
    let stop = first;
    while (stop < this.ranges.length && this.ranges[stop]!.offset <= end) stop++;
    const touched = this.ranges.slice(first, stop);
    if (touched.length === 0) {
      this.ranges.splice(first, 0, { offset, length: data.length, chunks: [data] });
      this.total += data.length;
      return;
    }
    const start = Math.min(offset, touched[0]!.offset);
    const lastTouched = touched[touched.length - 1]!;
    const mergedEnd = Math.max(end, lastTouched.offset + lastTouched.length);
    const merged = Buffer.alloc(mergedEnd - start);
    for (const range of touched) {
      concat(range).copy(merged, range.offset - start);
      this.total -= range.length;
    }
    data.copy(merged, offset - start);
    this.ranges.splice(first, touched.length, { offset: start, length: merged.length, chunks: [merged] });
    this.total += merged.length;
  }

  overlaps(offset: number, length: number): boolean {
    return this.ranges.some((r) => r.offset < offset + length && offset < r.offset + r.length);
  }

  /** Drops dirty bytes at or beyond `size` (a truncate). */
  truncate(size: number): void {
    const kept: DirtyRange[] = [];
    this.total = 0;
    for (const range of this.ranges) {
      if (range.offset >= size) continue;
      if (range.offset + range.length > size) {
        const whole = concat(range).subarray(0, size - range.offset);
        kept.push({ offset: range.offset, length: whole.length, chunks: [whole] });
      } else {
        kept.push(range);
      }
      this.total += kept[kept.length - 1]!.length;
    }
    this.ranges = kept;
  }

  /**
   * Removes and returns up to `max` bytes from the start of the first range:
   * the write-back pump sends a file as a stream of such pieces.
   */
  takeFirst(max: number): { offset: number; data: Buffer } | undefined {
    const range = this.ranges[0];
    if (!range) return undefined;
    const parts: Buffer[] = [];
    let taken = 0;
    while (taken < max && range.chunks.length > 0) {
      const chunk = range.chunks[0]!;
      const want = max - taken;
      if (chunk.length <= want) {
        parts.push(chunk);
        range.chunks.shift();
        taken += chunk.length;
      } else {
        parts.push(chunk.subarray(0, want));
        range.chunks[0] = chunk.subarray(want);
        taken += want;
      }
    }
    const offset = range.offset;
    range.offset += taken;
    range.length -= taken;
    this.total -= taken;
    if (range.length === 0) this.ranges.shift();
    return { offset, data: parts.length === 1 ? parts[0]! : Buffer.concat(parts, taken) };
  }

  /** Hands over every range as one buffer each and leaves this empty. */
  take(): { offset: number; data: Buffer }[] {
    const taken = this.ranges.map((range) => ({ offset: range.offset, data: concat(range) }));
    this.ranges = [];
    this.total = 0;
    return taken;
  }
}
