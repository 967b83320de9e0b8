import { LRUCache } from 'lru-cache';

/**
 * File data in fixed-size blocks, bounded by bytes. A key names the file's
 * content as one version — the inode's contentId, its local write generation
 * and the remote size+mtime seen at open — so any change on either side makes
 * old blocks unreachable instead of wrong; they age out by LRU.
 */
export class BlockCache {
  private readonly blocks: LRUCache<string, Buffer>;
  private readonly inflight = new Map<string, Promise<Buffer>>();

  constructor(maxBytes: number) {
    this.blocks = new LRUCache<string, Buffer>({
      maxSize: Math.max(1, maxBytes),
      sizeCalculation: (block) => Math.max(1, block.length),
    });
  }

  static key(version: string, index: number): string {
    return `${version}#${index}`;
  }

  peek(key: string): Buffer | undefined {
    return this.blocks.get(key);
  }

  /**
   * The cached block, or the one being fetched, or a new fetch. Concurrent
   * readers of one block share a single remote request.
   */
  get(key: string, fetch: () => Promise<Buffer>): { block: Promise<Buffer>; hit: boolean } {
    const cached = this.blocks.get(key);
    if (cached) return { block: Promise.resolve(cached), hit: true };
    const pending = this.inflight.get(key);
    if (pending) return { block: pending, hit: true };
    const block = fetch().then(
      (data) => {
        this.inflight.delete(key);
        this.blocks.set(key, data);
        return data;
      },
      (err: unknown) => {
        this.inflight.delete(key);
        throw err;
      },
    );
    this.inflight.set(key, block);
    return { block, hit: false };
  }

  /** Forgets a block (one being fetched still lands). */
  delete(key: string): void {
    this.blocks.delete(key);
  }

  has(key: string): boolean {
    return this.blocks.has(key) || this.inflight.has(key);
  }

  get bytes(): number {
    return this.blocks.calculatedSize;
  }
}
