import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const APPEX_NAME = 'tmount FileProvider.appex';
export const HOST_EXECUTABLE = 'tmount';

export interface DomainInfo {
  identifier: string;
  displayName: string;
}

/**
 * What tmount asks of the app that contains the extension. Only that app
 * (or a program inside its bundle) may add or remove its domains, so tmount
 * runs it for each request.
 */
export interface DomainHost {
  /** The App Group the app and its extension share, and the folder the system gives it. */
  info(): Promise<{ group: string; container: string }>;
  listDomains(): Promise<DomainInfo[]>;
  addDomain(identifier: string, displayName: string): Promise<void>;
  /** Removes a domain that exists; resolves false, without asking the system to remove anything, when it does not. */
  removeDomain(identifier: string): Promise<boolean>;
  /** Tells the system the domain's working set changed, so it asks the extension for changes. */
  signal(identifier: string): Promise<void>;
}

/** The places `tmount backends` looks for the app (src/platform/host-facts.ts), in the same order. */
export function appCandidates(env: NodeJS.ProcessEnv = process.env, home = homedir()): string[] {
  return [env.TMOUNT_APP, '/Applications/tmount.app', join(home, 'Applications', 'tmount.app')].filter((path): path is string => Boolean(path));
}

export function findApp(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return appCandidates(env).find((app) => existsSync(join(app, 'Contents', 'PlugIns', APPEX_NAME)));
}

interface HostAnswer {
  ok: boolean;
  error?: string;
  [field: string]: unknown;
}

/**
 * Runs the app's executable directly (`tmount.app/Contents/MacOS/tmount
 * add-domain …`): it prints one JSON line and exits with its status.
 * `open -a` is not used because it hands arguments only to a new instance
 * and reports neither the app's exit status nor its output.
 */
export class HostAppCli implements DomainHost {
  readonly binary: string;

  constructor(
    readonly app: string,
    private readonly timeoutMs = 30_000,
  ) {
    this.binary = join(app, 'Contents', 'MacOS', HOST_EXECUTABLE);
  }

  private run(args: string[]): Promise<HostAnswer> {
    return new Promise((resolve, reject) => {
      execFile(this.binary, args, { timeout: this.timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
        const line = stdout.split('\n').filter((text) => text.trim() !== '').pop();
        let answer: HostAnswer | undefined;
        try {
          answer = line === undefined ? undefined : (JSON.parse(line) as HostAnswer);
        } catch {
          answer = undefined;
        }
        if (answer?.ok && !err) return resolve(answer);
        const why = answer?.error ?? (stderr.trim() || (err as Error | null)?.message || `no answer on stdout (${stdout.length} bytes)`);
        reject(new Error(`${this.binary} ${args[0]} failed: ${why}`));
      });
    });
  }

  async info(): Promise<{ group: string; container: string }> {
    const answer = await this.run(['info']);
    if (typeof answer.group !== 'string' || typeof answer.container !== 'string') {
      throw new Error(`${this.binary} info answered without group and container: ${JSON.stringify(answer)}`);
    }
    return { group: answer.group, container: answer.container };
  }

  async listDomains(): Promise<DomainInfo[]> {
    const answer = await this.run(['list-domains']);
    return Array.isArray(answer.domains) ? (answer.domains as DomainInfo[]) : [];
  }

  async addDomain(identifier: string, displayName: string): Promise<void> {
    await this.run(['add-domain', identifier, displayName]);
  }

  async removeDomain(identifier: string): Promise<boolean> {
    const answer = await this.run(['remove-domain', identifier]);
    return answer.removed === true;
  }

  async signal(identifier: string): Promise<void> {
    await this.run(['signal', identifier]);
  }
}
