import { describe, expect, it } from 'vitest';
import type { CfPlaceholder, CfRequest, CfStatus } from '../../src/backends/cloud-files/addon-types.js';
import { cancelCovers, CloudFilesDriver, type DriverConnection, type DriverProvider, outcomesOf } from '../../src/backends/cloud-files/driver.js';
import type { FetchRange, PlaceholderSpec } from '../../src/backends/cloud-files/placeholders.js';
import { type DataSink, FetchCancelled, type PlaceholderSink } from '../../src/backends/cloud-files/provider.js';
import { FsError } from '../../src/vfs/errors.js';

const VOLUME = 'C:';
const ROOT = 'C:\\Users\\alice\\tmount\\box';
const at = (rel: string) => `\\Users\\alice\\tmount\\box${rel === '' ? '' : `\\${rel.replace(/\//g, '\\')}`}`;

/** Records every call the driver makes on the addon's connection. */
class FakeConnection implements DriverConnection {
  readonly calls: string[] = [];
  readonly completions = new Map<number, CfStatus[]>();
  /** Ids the addon no longer knows (timed out or cancelled): answers resolve false. */
  readonly gone = new Set<number>();
  failTransfers = false;

  async transferData(id: number, offset: number, data: Buffer): Promise<boolean> {
    this.calls.push(`data #${id} ${offset}+${data.length}`);
    return !this.gone.has(id);
  }
  async transferPlaceholders(id: number, placeholders: CfPlaceholder[]) {
    this.calls.push(`placeholders #${id} ${placeholders.map((p) => p.name).join(',')}`);
    if (this.failTransfers) throw new Error('CfExecute(TRANSFER_PLACEHOLDERS) failed: 0x8007017C');
    if (this.gone.has(id)) return false as const;
    this.completions.set(id, [...(this.completions.get(id) ?? []), 'success']);
    return placeholders.map((p) => ({ name: p.name, hresult: p.name === 'old' ? 0x800700b7 : 0 }));
  }
  async complete(id: number, status: CfStatus): Promise<boolean> {
    this.calls.push(`complete #${id} ${status}`);
    this.completions.set(id, [...(this.completions.get(id) ?? []), status]);
    return !this.gone.has(id);
  }
  forget(id: number): void {
    this.calls.push(`forget #${id}`);
  }
  reportProgress(id: number, total: number, completed: number): void {
    this.calls.push(`progress #${id} ${completed}/${total}`);
  }
}

type Script = Partial<DriverProvider> & { seen?: string[] };

function setup(script: Script = {}) {
  const seen: string[] = [];
  const provider: DriverProvider = {
    fetchPlaceholders: script.fetchPlaceholders ?? (async () => {}),
    fetchData: script.fetchData ?? (async () => {}),
    delete: script.delete ?? (async (path, isDirectory) => void seen.push(`delete ${path} ${isDirectory}`)),
    rename: script.rename ?? (async (from, to, isDirectory) => void seen.push(`rename ${from} ${to} ${isDirectory}`)),
    closed: script.closed ?? (async (path, deleted) => void seen.push(`closed ${path} ${deleted}`)),
  };
  const connection = new FakeConnection();
  const unexpected: string[] = [];
  const driver = new CloudFilesDriver(provider, ROOT, { onUnexpected: (err, op) => unexpected.push(`${op}: ${(err as Error).message}`) });
  driver.attach(connection);
  /** Hands a request to the driver and waits until it is done with it. */
  const send = async (request: CfRequest) => {
    driver.handle(request);
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
  };
  return { driver, connection, seen, unexpected, send };
}

const spec = (name: string): PlaceholderSpec => ({ name, path: name, isDirectory: false, size: 1, mtimeMs: 0, atimeMs: 0, readonly: false });
const fetchRequest = (id: number, rel: string, fields: Partial<Extract<CfRequest, { op: 'fetchData' }>> = {}): CfRequest => ({
  op: 'fetchData',
  id,
  volume: VOLUME,
  path: at(rel),
  transferKey: '77',
  fileSize: 10_000,
  requiredOffset: 0,
  requiredLength: 10_000,
  optionalOffset: 0,
  optionalLength: 0,
  explicit: false,
  ...fields,
});

describe('CloudFilesDriver', () => {
  it('answers FETCH_PLACEHOLDERS with one transfer, and reports what was created', async () => {
    let outcomes: Map<string, string> | undefined;
    const { connection, send } = setup({
      fetchPlaceholders: async (dir: string, sink: PlaceholderSink) => {
        expect(dir).toBe('sub');
        outcomes = await sink([spec('a'), spec('old')]);
      },
    });
    await send({ op: 'fetchPlaceholders', id: 1, volume: VOLUME, path: at('sub'), pattern: '*' });
    expect(connection.calls).toEqual(['placeholders #1 a,old']);
    expect(connection.completions.get(1)).toEqual(['success']);
    expect([...outcomes!]).toEqual([['a', 'created'], ['old', 'exists']]);
  });

  it('fails FETCH_PLACEHOLDERS with the error status when the listing fails, once', async () => {
    const { connection, send } = setup({
      fetchPlaceholders: async () => {
        throw new FsError('ENOTCONN', 'readdir', 'sub');
      },
    });
    await send({ op: 'fetchPlaceholders', id: 2, volume: VOLUME, path: at('sub'), pattern: '*' });
    expect(connection.calls).toEqual(['complete #2 networkUnavailable']);
  });

  it('fails FETCH_PLACEHOLDERS when the transfer itself is refused, and not after an answer went out', async () => {
    const refused = setup({ fetchPlaceholders: async (_dir: string, sink: PlaceholderSink) => void (await sink([spec('a')])) });
    refused.connection.failTransfers = true;
    await refused.send({ op: 'fetchPlaceholders', id: 3, volume: VOLUME, path: at(''), pattern: '*' });
    expect(refused.connection.calls).toEqual(['placeholders #3 a', 'complete #3 unsuccessful']);

    const late = setup({
      fetchPlaceholders: async (_dir: string, sink: PlaceholderSink) => {
        await sink([spec('a')]);
        throw new FsError('EIO', 'update', 'a');
      },
    });
    await late.send({ op: 'fetchPlaceholders', id: 4, volume: VOLUME, path: at(''), pattern: '*' });
    expect(late.connection.completions.get(4)).toEqual(['success']);
  });

  it('answers FETCH_DATA with the provider chunks, progress, then one completion', async () => {
    let asked: FetchRange | undefined;
    const { connection, send } = setup({
      fetchData: async (path: string, range: FetchRange, sink: DataSink) => {
        expect(path).toBe('dir/f.bin');
        asked = range;
        await sink(0, Buffer.alloc(8192));
        await sink(8192, Buffer.alloc(1808));
      },
    });
    await send(fetchRequest(5, 'dir/f.bin'));
    expect(asked).toMatchObject({ fileSize: 10_000, requiredOffset: 0, requiredLength: 10_000 });
    expect(connection.calls).toEqual(['data #5 0+8192', 'progress #5 8192/10000', 'data #5 8192+1808', 'progress #5 10000/10000', 'complete #5 success']);
  });

  it('fails FETCH_DATA with the status of the error', async () => {
    const { connection, send, unexpected } = setup({
      fetchData: async () => {
        throw new FsError('EACCES', 'open', 'f');
      },
    });
    await send(fetchRequest(6, 'f'));
    expect(connection.calls).toEqual(['complete #6 accessDenied']);
    expect(unexpected).toEqual([]);

    const bug = setup({
      fetchData: async () => {
        throw new TypeError('oops');
      },
    });
    await bug.send(fetchRequest(7, 'f'));
    expect(bug.connection.calls).toEqual(['complete #7 unsuccessful']);
    expect(bug.unexpected).toEqual(['fetchData: oops']);
  });

  it('stops a fetch the addon no longer knows, without answering it', async () => {
    const { connection, send } = setup({
      fetchData: async (_path: string, _range: FetchRange, sink: DataSink) => {
        await sink(0, Buffer.alloc(4096));
        await sink(4096, Buffer.alloc(4096));
      },
    });
    connection.gone.add(8);
    await send(fetchRequest(8, 'f'));
    expect(connection.calls).toEqual(['data #8 0+4096', 'forget #8']);
  });

  it('aborts the fetches a CANCEL_FETCH_DATA covers, and only those', async () => {
    const signals: AbortSignal[] = [];
    const release: (() => void)[] = [];
    const { driver, connection, send } = setup({
      fetchData: async (_path: string, range: FetchRange, sink: DataSink, signal?: AbortSignal) => {
        signals.push(signal!);
        await new Promise<void>((resolve) => release.push(resolve));
        if (signal!.aborted) throw new FetchCancelled('f');
        await sink(range.requiredOffset, Buffer.alloc(4096));
      },
    });
    driver.handle(fetchRequest(9, 'f', { requiredOffset: 0, requiredLength: 4096 }));
    driver.handle(fetchRequest(10, 'f', { requiredOffset: 8192, requiredLength: 4096 }));
    driver.handle(fetchRequest(11, 'f', { requiredOffset: 0, requiredLength: 4096, transferKey: '78' }));
    await new Promise((resolve) => setImmediate(resolve));
    await send({ op: 'cancelFetchData', id: 0, volume: VOLUME, path: at('f'), transferKey: '77', offset: 0, length: 4096 });
    // #9 matches key and range; #10 is another range, #11 another transfer key.
    expect(signals.map((signal) => signal.aborted)).toEqual([true, false, false]);
    for (const resolve of release) resolve();
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    expect(connection.calls.filter((call) => call.includes('#9'))).toEqual(['forget #9']);
    expect(connection.completions.get(10)).toEqual(['success']);
    expect(connection.completions.get(11)).toEqual(['success']);
  });

  it('acks deletes and renames after the provider did them, and refuses with the error status otherwise', async () => {
    const { connection, seen, send } = setup();
    await send({ op: 'notifyDelete', id: 12, volume: VOLUME, path: at('a/b.txt'), isDirectory: false, undelete: false });
    await send({ op: 'notifyRename', id: 13, volume: VOLUME, path: at('a/b.txt'), target: at('c.txt'), isDirectory: false, sourceInScope: true, targetInScope: true });
    await send({ op: 'notifyRename', id: 14, volume: VOLUME, path: at('a'), target: '\\Users\\alice\\Desktop\\a', isDirectory: true, sourceInScope: true, targetInScope: false });
    await send({ op: 'notifyDelete', id: 20, volume: VOLUME, path: at('kept.txt'), isDirectory: false, undelete: true });
    expect(seen).toEqual(['delete a/b.txt false', 'rename a/b.txt c.txt false', 'rename a undefined true']);
    expect(connection.calls).toEqual(['complete #12 success', 'complete #13 success', 'complete #14 success', 'complete #20 success']);

    const refusing = setup({
      delete: async () => {
        throw new FsError('ENOTEMPTY', 'rmdir', 'a');
      },
      rename: async () => {
        throw new FsError('EXDEV', 'rename', 'a');
      },
    });
    await refusing.send({ op: 'notifyDelete', id: 15, volume: VOLUME, path: at('a'), isDirectory: true, undelete: false });
    await refusing.send({ op: 'notifyRename', id: 16, volume: VOLUME, path: at('a'), target: 'elsewhere', isDirectory: true, sourceInScope: true, targetInScope: false });
    expect(refusing.connection.calls).toEqual(['complete #15 notEmpty', 'complete #16 notSupported']);
  });

  it('lets something moving in from outside the sync root pass, and refuses paths it cannot place', async () => {
    const { connection, seen, send } = setup();
    await send({ op: 'notifyRename', id: 17, volume: VOLUME, path: '\\Users\\alice\\Desktop\\x', target: at('x'), isDirectory: false, sourceInScope: false, targetInScope: true });
    await send({ op: 'notifyDelete', id: 18, volume: 'D:', path: '\\elsewhere\\x', isDirectory: false, undelete: false });
    await send(fetchRequest(19, 'f', { path: '\\other\\f' }));
    expect(seen).toEqual([]);
    expect(connection.calls).toEqual(['complete #17 success', 'complete #18 invalidRequest', 'complete #19 invalidRequest']);
  });

  it('passes file closes on without answering them', async () => {
    const { connection, seen, send } = setup();
    await send({ op: 'notifyFileClose', id: 0, volume: VOLUME, path: at('doc.txt'), deleted: false });
    await send({ op: 'notifyFileClose', id: 0, volume: VOLUME, path: at(''), deleted: false });
    expect(seen).toEqual(['closed doc.txt false']);
    expect(connection.calls).toEqual([]);
  });

  it('completes every answerable request exactly once, whatever the provider does', async () => {
    const behaviours = [
      async () => {},
      async () => {
        throw new FsError('EIO', 'x', 'y');
      },
      async () => {
        throw new Error('bug');
      },
    ];
    let id = 100;
    for (const behave of behaviours) {
      const { connection, send } = setup({ delete: behave, rename: behave, fetchData: behave, fetchPlaceholders: behave });
      const ids = [++id, ++id, ++id, ++id];
      await send({ op: 'notifyDelete', id: ids[0]!, volume: VOLUME, path: at('a'), isDirectory: false, undelete: false });
      await send({ op: 'notifyRename', id: ids[1]!, volume: VOLUME, path: at('a'), target: at('b'), isDirectory: false, sourceInScope: true, targetInScope: true });
      await send(fetchRequest(ids[2]!, 'a'));
      await send({ op: 'fetchPlaceholders', id: ids[3]!, volume: VOLUME, path: at(''), pattern: '*' });
      // Even a provider that lists nothing to the sink (a bug) gets its request failed, once.
      for (const done of ids) expect(connection.completions.get(done)).toHaveLength(1);
    }
  });

  it('outcomesOf and cancelCovers', () => {
    expect([...outcomesOf([spec('a'), spec('b')], false)]).toEqual([['a', 'failed'], ['b', 'failed']]);
    expect([...outcomesOf([spec('a'), spec('b')], [{ name: 'a', hresult: 0 }])]).toEqual([['a', 'created'], ['b', 'failed']]);
    expect(cancelCovers(0, 4096, { start: 0, end: 4096 })).toBe(true);
    expect(cancelCovers(0, -1, { start: 8192, end: 9000 })).toBe(true);
    expect(cancelCovers(4096, 4096, { start: 0, end: 8192 })).toBe(false);
  });
});
