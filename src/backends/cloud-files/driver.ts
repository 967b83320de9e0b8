import { FsError } from '../../vfs/errors.js';
import type { CfPlaceholderResult, CfRequest, CfStatus, SyncRootConnection } from './addon-types.js';
import { callbackPath, relativeToRoot } from './paths.js';
import { type PlaceholderOutcome, type PlaceholderSpec, placeholderOutcome, statusOf, toCfPlaceholder } from './placeholders.js';
import { type CloudFilesProvider, FetchCancelled } from './provider.js';

/** What the driver needs of the provider (tests give it a stand-in). */
export type DriverProvider = Pick<CloudFilesProvider, 'fetchPlaceholders' | 'fetchData' | 'delete' | 'rename' | 'closed'>;
/** What the driver needs of the addon's connection. */
export type DriverConnection = Pick<SyncRootConnection, 'transferData' | 'transferPlaceholders' | 'complete' | 'forget' | 'reportProgress'>;

export interface CloudFilesDriverOptions {
  /** One line per request with its outcome, when --debug is on. */
  log?: (line: string) => void;
  /** Something unexpected (a bug, not an FsError) happened. */
  onUnexpected?: (err: unknown, op: string) => void;
}

interface RunningFetch {
  transferKey: string;
  start: number;
  end: number;
  controller: AbortController;
}

/** Which of `specs` the platform created, from the per-entry results (all failed when the request was gone). */
export function outcomesOf(specs: PlaceholderSpec[], results: CfPlaceholderResult[] | false): Map<string, PlaceholderOutcome> {
  const byName = new Map((results || []).map((result) => [result.name, placeholderOutcome(result.hresult)] as const));
  return new Map(specs.map((spec) => [spec.name, byName.get(spec.name) ?? 'failed'] as const));
}

/** True when a cancel of [offset, offset+length) (length -1: to the end) covers all of a fetch. */
export function cancelCovers(offset: number, length: number, fetch: { start: number; end: number }): boolean {
  return offset <= fetch.start && (length < 0 || offset + length >= fetch.end);
}

/**
 * Answers cfapi callbacks from the provider. Runs on the JS main thread:
 * the addon queues each request here, and every request that needs an
 * answer gets exactly one completion, errors included (the addon's
 * watchdog covers only a driver that never answers).
 */
export class CloudFilesDriver {
  private connection: DriverConnection | undefined;
  private readonly fetches = new Map<number, RunningFetch>();

  constructor(
    private readonly provider: DriverProvider,
    /** The sync root folder, as the platform spells it (long names). */
    private readonly root: string,
    private readonly options: CloudFilesDriverOptions = {},
  ) {}

  attach(connection: DriverConnection): void {
    this.connection = connection;
  }

  readonly handle = (request: CfRequest): void => {
    const started = this.options.log ? process.hrtime.bigint() : 0n;
    void this.dispatch(request).then(
      (outcome) => this.trace(request, started, outcome),
      (err: unknown) => {
        this.options.onUnexpected?.(err, request.op);
        this.trace(request, started, 'internal error');
      },
    );
  };

  private trace(request: CfRequest, started: bigint, outcome: string): void {
    if (!this.options.log) return;
    const micros = Number(process.hrtime.bigint() - started) / 1000;
    const { op, id, volume, path, process: caller, ...args } = request;
    const by = caller ? ` by ${caller.image} (${caller.pid})` : '';
    this.options.log(`cfapi #${id} ${op} ${volume}${path} ${JSON.stringify(args)}${by} -> ${outcome} in ${micros.toFixed(0)} µs`);
  }

  private get conn(): DriverConnection {
    if (!this.connection) throw new Error('the Cloud Files driver got a request before its connection was attached');
    return this.connection;
  }

  private relative(request: CfRequest, path = request.path): string | undefined {
    return relativeToRoot(this.root, callbackPath(request.volume, path));
  }

  /** Completes a request with the status an error stands for; returns that status for the trace. */
  private async fail(request: CfRequest, err: unknown): Promise<string> {
    if (!(err instanceof FsError)) this.options.onUnexpected?.(err, request.op);
    const status = statusOf(err);
    await this.conn.complete(request.id, status).catch((failure: unknown) => this.options.log?.(`cfapi #${request.id}: completing with ${status} failed: ${(failure as Error).message}`));
    return err instanceof FsError ? `${status} (${err.code})` : status;
  }

  private async complete(id: number, status: CfStatus): Promise<CfStatus> {
    await this.conn.complete(id, status);
    return status;
  }

  private async dispatch(r: CfRequest): Promise<string> {
    switch (r.op) {
      case 'fetchPlaceholders': {
        const dir = this.relative(r);
        if (dir === undefined) return this.complete(r.id, 'invalidRequest');
        let answered = false;
        try {
          await this.provider.fetchPlaceholders(dir, async (specs) => {
            const results = await this.conn.transferPlaceholders(r.id, specs.map(toCfPlaceholder), { disableOnDemandPopulation: true });
            answered = true;
            return outcomesOf(specs, results);
          });
        } catch (err) {
          if (!answered) return this.fail(r, err);
          // The answer is out; what failed afterwards was follow-up work.
          if (!(err instanceof FsError)) this.options.onUnexpected?.(err, r.op);
        }
        if (!answered) return this.fail(r, new Error(`the provider listed '${dir}' without answering`));
        return 'success';
      }
      case 'fetchData': {
        const file = this.relative(r);
        if (file === undefined) return this.complete(r.id, 'invalidRequest');
        const controller = new AbortController();
        const end = r.requiredLength < 0 ? r.fileSize : r.requiredOffset + r.requiredLength;
        this.fetches.set(r.id, { transferKey: r.transferKey, start: r.requiredOffset, end, controller });
        try {
          await this.provider.fetchData(
            file,
            r,
            async (offset, data) => {
              if (!(await this.conn.transferData(r.id, offset, data))) throw new FetchCancelled(file);
              this.conn.reportProgress(r.id, r.fileSize, offset + data.length);
            },
            controller.signal,
          );
          return await this.complete(r.id, 'success');
        } catch (err) {
          if (err instanceof FetchCancelled) {
            this.conn.forget(r.id);
            return 'cancelled';
          }
          return this.fail(r, err);
        } finally {
          this.fetches.delete(r.id);
        }
      }
      case 'cancelFetchData': {
        let cancelled = 0;
        for (const fetch of this.fetches.values()) {
          if (fetch.transferKey !== r.transferKey || !cancelCovers(r.offset, r.length, fetch)) continue;
          fetch.controller.abort();
          cancelled++;
        }
        return `cancelled ${cancelled}`;
      }
      case 'notifyDelete': {
        const path = this.relative(r);
        if (path === undefined) return this.complete(r.id, 'invalidRequest');
        // Taking a delete back changes nothing on the remote: the delete itself was refused or never acked.
        if (r.undelete) return this.complete(r.id, 'success');
        try {
          await this.provider.delete(path, r.isDirectory);
        } catch (err) {
          return this.fail(r, err);
        }
        return this.complete(r.id, 'success');
      }
      case 'notifyRename': {
        const from = this.relative(r);
        // Something moved in from elsewhere: nothing of the remote's moves.
        if (from === undefined || !r.sourceInScope) return this.complete(r.id, 'success');
        const to = r.targetInScope ? this.relative(r, r.target) : undefined;
        try {
          await this.provider.rename(from, to, r.isDirectory);
        } catch (err) {
          return this.fail(r, err);
        }
        return this.complete(r.id, 'success');
      }
      case 'notifyFileClose': {
        const path = this.relative(r);
        if (path !== undefined && path !== '') void this.provider.closed(path, r.deleted);
        return 'noted';
      }
    }
  }
}
