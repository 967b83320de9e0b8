import { readdir, rmdir, stat, unlink } from 'node:fs/promises';
import type { CfPinState, CloudFilesAddon } from './addon-types.js';
import { outcomesOf } from './driver.js';
import { joinPath, windowsPath } from './paths.js';
import { decodeLocalState, identityOf, type LocalState, metadataOf, type PlaceholderOutcome, type PlaceholderSpec, toCfPlaceholder } from './placeholders.js';
import type { SyncRootPort } from './provider.js';

/**
 * The SyncRootPort of a real sync root: cfapi through the addon, plain
 * node:fs for listing and deleting. Everything here is asynchronous (the
 * thread pool does the work): the provider answering for these files runs
 * on the JS main thread, which must stay free.
 */
export class AddonSyncRootPort implements SyncRootPort {
  constructor(
    private readonly addon: CloudFilesAddon,
    private readonly root: string,
  ) {}

  localFile(path: string): string {
    return windowsPath(this.root, path);
  }

  async createPlaceholders(dir: string, specs: PlaceholderSpec[]): Promise<Map<string, PlaceholderOutcome>> {
    return outcomesOf(specs, await this.addon.createPlaceholders(this.localFile(dir), specs.map(toCfPlaceholder)));
  }

  async updatePlaceholder(path: string, spec: PlaceholderSpec): Promise<void> {
    await this.addon.updatePlaceholder(this.localFile(path), {
      metadata: metadataOf(spec),
      verifyInSync: true,
      markInSync: true,
      dehydrate: !spec.isDirectory,
    });
  }

  async markStale(dir: string): Promise<void> {
    await this.addon.updatePlaceholder(this.localFile(dir), { onDemandPopulation: true });
  }

  async localState(path: string): Promise<LocalState | undefined> {
    const raw = await this.addon.placeholderState(this.localFile(path));
    return raw ? decodeLocalState(raw) : undefined;
  }

  async markInSync(path: string, usn: bigint | undefined): Promise<boolean> {
    try {
      await this.addon.setInSyncState(this.localFile(path), true, usn);
      return true;
    } catch (err) {
      // Refused because the file has a new USN: it changed after the upload read it.
      const now = usn === undefined ? undefined : await this.localState(path).catch(() => undefined);
      if (now?.usn !== undefined && now.usn !== usn) return false;
      throw err;
    }
  }

  async convertToPlaceholder(path: string): Promise<void> {
    // A new local directory holds its children already: nothing to populate on demand.
    await this.addon.convertToPlaceholder(this.localFile(path), identityOf(path), { markInSync: false, onDemandPopulation: false });
  }

  hydrate(path: string): Promise<void> {
    return this.addon.hydrate(this.localFile(path));
  }

  dehydrate(path: string): Promise<void> {
    return this.addon.dehydrate(this.localFile(path));
  }

  setPinState(path: string, state: CfPinState, recurse: boolean): Promise<void> {
    return this.addon.setPinState(this.localFile(path), state, recurse);
  }

  /**
   * Deletes depth first by hand: fs.rm's recursion takes a placeholder
   * directory (a reparse point) for a link and would not descend into it.
   */
  async remove(path: string, isDirectory: boolean): Promise<void> {
    if (!isDirectory) {
      await unlink(this.localFile(path));
      return;
    }
    for (const entry of await this.list(path)) await this.remove(joinPath(path, entry.name), entry.isDirectory);
    await rmdir(this.localFile(path));
  }

  async list(dir: string): Promise<{ name: string; isDirectory: boolean }[]> {
    const entries = await readdir(this.localFile(dir), { withFileTypes: true });
    return Promise.all(
      entries.map(async (entry) => ({
        name: entry.name,
        // libuv reports reparse points (placeholders, when the platform shows them as such) as links.
        isDirectory: entry.isDirectory() || (entry.isSymbolicLink() && (await stat(this.localFile(joinPath(dir, entry.name)))).isDirectory()),
      })),
    );
  }
}
