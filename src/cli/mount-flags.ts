import { Option, type Command } from 'commander';
import type { MountTuning } from '../backends/types.js';
import { UserError } from '../errors.js';
import type { LinkOptions } from '../remote/link.js';
import { DEFAULT_RECONNECT } from '../remote/reconnect.js';
import type { RemoteFsOptions } from '../vfs/options.js';

export function parseSeconds(flag: string) {
  return (text: string): number => {
    if (!/^\d+(\.\d+)?$/.test(text)) throw new UserError('usage', `invalid ${flag} '${text}'; give seconds, e.g. 20 or 0.5`);
    return Number(text);
  };
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 };

export function parseSize(flag: string) {
  return (text: string): number => {
    const match = /^(\d+)\s*([kmg]?)(i?b)?$/i.exec(text.trim());
    if (!match) throw new UserError('usage', `invalid ${flag} '${text}'; give bytes with an optional K, M or G, e.g. 8M`);
    return Number(match[1]) * SIZE_UNITS[match[2]!.toLowerCase()]!;
  };
}

function parseCount(flag: string) {
  return (text: string): number => {
    if (!/^\d+$/.test(text)) throw new UserError('usage', `invalid ${flag} '${text}'; give a whole number, e.g. 128 (0 turns it off)`);
    return Number(text);
  };
}

function parseId(flag: string) {
  return (text: string): number => {
    if (!/^\d+$/.test(text)) throw new UserError('usage', `invalid ${flag} '${text}'; give a numeric id`);
    return Number(text);
  };
}

/** The mount options of mount(8) and sshfs that tmount accepts after -o. */
const O_OPTIONS = ['allow_other', 'default_permissions', 'ro', 'rw', 'nonempty', 'debug'] as const;

export function parseMountOptions(text: string, previous: string[] = []): string[] {
  const options = text.split(',').map((option) => option.trim()).filter(Boolean);
  for (const option of options) {
    if (!(O_OPTIONS as readonly string[]).includes(option)) {
      throw new UserError('usage', `unsupported -o option '${option}'; tmount understands ${O_OPTIONS.join(', ')} (see tmount mount --help)`);
    }
  }
  return [...previous, ...options];
}

export function addTuningOptions(command: Command): Command {
  return command
    .option('-o <options>', `mount options, comma-separated: ${O_OPTIONS.join(', ')}`, parseMountOptions)
    .option('--allow-other', 'let other local users see the mount (needs user_allow_other in /etc/fuse.conf)', false)
    .option('--default-permissions', 'let the kernel check permissions against the shown modes', false)
    .addOption(new Option('--uid <uid>', 'show every file as owned by this user id').argParser(parseId('--uid')))
    .addOption(new Option('--gid <gid>', 'show every file as owned by this group id').argParser(parseId('--gid')))
    .addOption(new Option('--idmap <mode>', 'user: show the remote account\'s files as yours; none: show remote ids').choices(['user', 'none']).default('user'))
    .addOption(new Option('--attr-timeout <s>', 'seconds attributes and names are trusted').default(20).argParser(parseSeconds('--attr-timeout')))
    .addOption(new Option('--dir-timeout <s>', 'seconds directory listings are trusted').default(20).argParser(parseSeconds('--dir-timeout')))
    .addOption(new Option('--negative-timeout <s>', 'seconds "no such file" is trusted').default(20).argParser(parseSeconds('--negative-timeout')))
    .addOption(new Option('--cache-size <bytes>', 'memory for file data, e.g. 128M').default(128 * 1024 ** 2, '128M').argParser(parseSize('--cache-size')))
    .addOption(new Option('--max-read-ahead <bytes>', 'largest read-ahead of a sequential reader, e.g. 8M').default(8 * 1024 ** 2, '8M').argParser(parseSize('--max-read-ahead')))
    .addOption(new Option('--dir-prefetch <n>', 'after listing a directory, fetch the listings of up to n of its subdirectories in the background (0: off)').default(128).argParser(parseCount('--dir-prefetch')))
    .option('--debug', 'log every filesystem request with its latency to stderr', false)
    .option('--no-reconnect', 'do not reconnect after the connection drops: the mount goes disconnected at once')
    .addOption(new Option('--reconnect-timeout <s>', 'stop reconnecting after this many seconds (default: never)').argParser(parseSeconds('--reconnect-timeout')))
    .addOption(new Option('--op-timeout <s>', 'longest an operation waits for the remote, reconnects included, before failing with EIO').default(30).argParser(parseSeconds('--op-timeout')))
    .addOption(new Option('--keepalive <s[,count]>', 'SSH keepalive interval and how many may go unanswered').default({ intervalMs: 5000, count: 3 }, '5,3').argParser(parseKeepalive));
}

export function parseKeepalive(text: string): { intervalMs: number; count: number } {
  const match = /^(\d+(?:\.\d+)?)(?:,(\d+))?$/.exec(text.trim());
  if (!match || Number(match[1]) <= 0) throw new UserError('usage', `invalid --keepalive '${text}'; give seconds and optionally a count, e.g. 5,3`);
  return { intervalMs: Number(match[1]) * 1000, count: match[2] === undefined ? 3 : Math.max(1, Number(match[2])) };
}

export interface TuningFlags {
  o?: string[];
  allowOther: boolean;
  defaultPermissions: boolean;
  uid?: number;
  gid?: number;
  idmap: 'user' | 'none';
  attrTimeout: number;
  dirTimeout: number;
  negativeTimeout: number;
  cacheSize: number;
  maxReadAhead: number;
  dirPrefetch: number;
  debug: boolean;
  readonly: boolean;
  nonempty: boolean;
  reconnect: boolean;
  reconnectTimeout?: number;
  opTimeout: number;
  keepalive: { intervalMs: number; count: number };
}

export function tuningFromFlags(flags: TuningFlags, log: (line: string) => void): {
  link: Partial<LinkOptions>;
  keepalive: { keepaliveIntervalMs: number; keepaliveCountMax: number };
  cache: Partial<RemoteFsOptions>;
  tuning: Partial<MountTuning>;
  readonly: boolean;
  nonempty: boolean;
} {
  const o = new Set(flags.o ?? []);
  const debug = flags.debug || o.has('debug');
  return {
    link: {
      opTimeoutMs: flags.opTimeout * 1000,
      reconnect: {
        ...DEFAULT_RECONNECT,
        enabled: flags.reconnect,
        giveUpAfterMs: flags.reconnectTimeout === undefined ? undefined : flags.reconnectTimeout * 1000,
      },
    },
    keepalive: { keepaliveIntervalMs: flags.keepalive.intervalMs, keepaliveCountMax: flags.keepalive.count },
    cache: {
      attrTtlMs: flags.attrTimeout * 1000,
      dirTtlMs: flags.dirTimeout * 1000,
      negativeTtlMs: flags.negativeTimeout * 1000,
      dataCacheBytes: flags.cacheSize,
      maxReadAheadBytes: flags.maxReadAhead,
      dirPrefetch: flags.dirPrefetch,
    },
    tuning: {
      allowOther: flags.allowOther || o.has('allow_other'),
      defaultPermissions: flags.defaultPermissions || o.has('default_permissions'),
      idmapUser: flags.idmap === 'user',
      ...(flags.uid !== undefined ? { uid: flags.uid } : {}),
      ...(flags.gid !== undefined ? { gid: flags.gid } : {}),
      ...(debug ? { debug: log } : {}),
    },
    readonly: (flags.readonly || o.has('ro')) && !o.has('rw'),
    nonempty: flags.nonempty || o.has('nonempty'),
  };
}
