import type { RemoteAttrs } from '../remote/sftp-session.js';
import { BoundedCache } from './bounded-cache.js';
import { childPath, isInside } from './paths.js';
import type { TimesClaim } from './times-order.js';

export const ROOT_INO = 1;

export interface Inode {
  readonly ino: number;
  /** Mount-relative path; stale once `unlinked`. */
  path: string;
  /** How many lookups the kernel (or another backend) holds; forget() gives them back. */
  nlookup: number;
  /** Open handles; an unlinked file lives on until both counts reach zero. */
  openCount: number;
  unlinked: boolean;
  /** Never reused, unlike inos: keys cached data so a recreated file never sees old blocks. */
  readonly contentId: number;
  /** Bumped by every local write or truncate, which makes cached blocks of older data unreachable. */
  dataGen: number;
  /** The remote version (size and mtime) whose data was last read through a handle: the kernel may still hold it. */
  servedVersion?: string;
  /** The latest setattr that set times here (see claimTimes): an earlier one still waiting must not overwrite its times. */
  timesClaim?: TimesClaim;
  /** Setattrs setting times that have not been answered yet. */
  timesInFlight?: number;
  /** A symlink's target, with the cached attributes it was read (or made) under: it holds while those are the ones cached. */
  link?: { attrs: RemoteAttrs; target: string };
}

/**
 * ino ↔ path for the life of a mount. Numbers are handed out once and stay
 * with their path: a forgotten path keeps its number in a bounded memory so
 * a later lookup (git's index compares st_ino) sees the same ino again.
 */
export class InodeTable {
  private readonly byIno = new Map<number, Inode>();
  private readonly byPath = new Map<string, Inode>();
  private readonly retired: BoundedCache<number>;
  private nextIno = ROOT_INO + 1;
  private nextContentId = 1;
  readonly root: Inode;

  constructor(options: { retiredMax?: number } = {}) {
    this.retired = new BoundedCache<number>({ max: options.retiredMax ?? 200_000 }, 0);
    this.root = this.create('', ROOT_INO);
    this.root.nlookup = 1;
  }

  private create(path: string, ino: number): Inode {
    const node: Inode = { ino, path, nlookup: 0, openCount: 0, unlinked: false, contentId: this.nextContentId++, dataGen: 0 };
    this.byIno.set(ino, node);
    this.byPath.set(path, node);
    return node;
  }

  get size(): number {
    return this.byIno.size;
  }

  get(ino: number): Inode | undefined {
    return this.byIno.get(ino);
  }

  find(path: string): Inode | undefined {
    return this.byPath.get(path);
  }

  /** The node for a path, created when new, without taking a lookup. */
  ensure(path: string): Inode {
    const known = this.byPath.get(path);
    if (known) return known;
    const ino = this.retired.get(path) ?? this.nextIno++;
    this.retired.delete(path);
    return this.create(path, ino);
  }

  /** A lookup the caller reports to the kernel: the kernel will forget it later. */
  remember(path: string): Inode {
    const node = this.ensure(path);
    node.nlookup++;
    return node;
  }

  forget(ino: number, count: number): void {
    const node = this.byIno.get(ino);
    if (!node || ino === ROOT_INO) return;
    node.nlookup = Math.max(0, node.nlookup - count);
    this.dropIfUnused(node);
  }

  opened(node: Inode): void {
    node.openCount++;
  }

  closed(node: Inode): void {
    node.openCount = Math.max(0, node.openCount - 1);
    this.dropIfUnused(node);
  }

  /** Drops a node nobody references; a path it had keeps its number for later. */
  dropIfUnused(node: Inode): void {
    if (node.nlookup > 0 || node.openCount > 0 || node.ino === ROOT_INO) return;
    this.byIno.delete(node.ino);
    if (this.byPath.get(node.path) === node) {
      this.byPath.delete(node.path);
      if (!node.unlinked) this.retired.set(node.path, node.ino);
    }
  }

  /** The name is gone; the node lives on for open handles and outstanding lookups. */
  unlink(path: string): void {
    this.retired.delete(path);
    const node = this.byPath.get(path);
    if (!node) return;
    this.byPath.delete(path);
    node.unlinked = true;
    this.dropIfUnused(node);
  }

  /** Moves `from` and everything below it to `to`; whatever was at `to` is unlinked. */
  rename(from: string, to: string): void {
    if (from === to) return;
    this.unlink(to);
    // Remembered numbers of forgotten paths below `from` stay behind: they are
    // not live, so handing one to a new file at the old path is harmless, and
    // sweeping the whole memory on every rename would cost more than it saves.
    this.retired.delete(from);
    const moved: Inode[] = [];
    for (const [path, node] of this.byPath) {
      if (path === from || isInside(path, from)) moved.push(node);
      else if (isInside(path, to)) this.unlinkNode(path, node);
    }
    for (const node of moved) this.byPath.delete(node.path);
    for (const node of moved) {
      node.path = to + node.path.slice(from.length);
      this.byPath.set(node.path, node);
    }
  }

  private unlinkNode(path: string, node: Inode): void {
    this.byPath.delete(path);
    node.unlinked = true;
    this.dropIfUnused(node);
  }

  childPath(parent: Inode, name: string): string {
    return childPath(parent.path, name);
  }
}
