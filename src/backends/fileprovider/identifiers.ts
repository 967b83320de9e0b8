import { isInside } from '../../vfs/paths.js';

export const ROOT_ID = 'root';
export const WORKING_SET = 'workingSet';
export const TRASH = 'trash';

const DERIVED = /^p(\d*):(.+)$/s;

/**
 * Item identifiers ↔ mount-relative paths. An item's identifier is derived
 * from the path it had when first seen (`p:<path>`), so identifiers of
 * unchanged items survive a restart of tmount, and it stays with the item
 * when the extension renames or moves it (FileProvider requires that), so
 * a path may later belong to another identifier (`p2:<path>`…). Remote
 * renames are seen as a deletion and a new item.
 */
export class IdTable {
  private readonly byId = new Map<string, string>();
  private readonly byPath = new Map<string, string>();
  /** Identifiers whose item is gone: never handed out again in this run. */
  private readonly dead = new Set<string>();

  idFor(path: string): string {
    if (path === '') return ROOT_ID;
    const known = this.byPath.get(path);
    if (known) return known;
    for (let n = 1; ; n++) {
      const candidate = n === 1 ? `p:${path}` : `p${n}:${path}`;
      if (this.byId.has(candidate) || this.dead.has(candidate)) continue;
      this.bind(candidate, path);
      return candidate;
    }
  }

  /**
   * The path of an identifier, or undefined when no item has it. An
   * identifier this run never handed out (one from before a restart) is
   * taken at its word when its path is free.
   */
  pathOf(id: string): string | undefined {
    if (id === ROOT_ID) return '';
    const known = this.byId.get(id);
    if (known !== undefined) return known;
    if (this.dead.has(id)) return undefined;
    const match = DERIVED.exec(id);
    if (!match || match[1] !== '') return undefined;
    const path = match[2]!;
    if (this.byPath.has(path) || path.startsWith('/') || path.split('/').some((part) => part === '' || part === '.' || part === '..')) return undefined;
    this.bind(id, path);
    return path;
  }

  private bind(id: string, path: string): void {
    this.byId.set(id, path);
    this.byPath.set(path, id);
  }

  /** The identifiers of `path` and everything known below it. */
  subtree(path: string): string[] {
    const ids: string[] = [];
    for (const [known, id] of this.byPath) if (known === path || isInside(known, path)) ids.push(id);
    return ids;
  }

  /** A rename through the extension: the item and everything below it keep their identifiers. */
  move(from: string, to: string): void {
    const moved: [string, string][] = [];
    for (const [path, id] of this.byPath) {
      if (path === from || isInside(path, from)) moved.push([path, id]);
    }
    for (const [path] of moved) this.byPath.delete(path);
    // Whatever was known at the target was replaced by the move.
    for (const [path, id] of [...this.byPath]) {
      if (path === to || isInside(path, to)) this.retire(path, id);
    }
    for (const [path, id] of moved) this.bind(id, to + path.slice(from.length));
  }

  /** The item at `path` (and everything below it) is gone; its identifiers die with it. */
  remove(path: string): string[] {
    const ids: string[] = [];
    for (const [known, id] of [...this.byPath]) {
      if (known === path || isInside(known, path)) {
        this.retire(known, id);
        ids.push(id);
      }
    }
    return ids;
  }

  private retire(path: string, id: string): void {
    this.byPath.delete(path);
    this.byId.delete(id);
    this.dead.add(id);
  }
}
