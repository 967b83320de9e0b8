#!/usr/bin/env node
// tmount against sshfs on one private sshd: each workload runs as ordinary
// processes on a fresh mount after the kernel caches are dropped, the tools
// alternating sample by sample, and the medians go into one table.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, release, tmpdir, totalmem, type } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { startSshd } from '../test/fixtures/sshd.mjs';
import { prepareData, resetScratch, sizesFor } from './data.mjs';
import { mountSshfs, mountTmount, SERVER_NODE_FLAGS, TMOUNT_CLI } from './mounts.mjs';
import { startStealMeter, stealSummary } from './host-steal.mjs';
import { killGroup, mountpoints, onPath, registry, runTimed, TimeoutError, versionOf } from './proc.mjs';
import { formatValue, markdownTable, median, memorySummary, summarize, textTable } from './report.mjs';
import { workloads } from './workloads.mjs';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const IS_ROOT = process.getuid?.() === 0;

const USAGE = `usage: node bench/run.mjs [options]

  --samples <n>          samples per tool and workload, alternating the tools (default 3)
  --only <names>         comma-separated workloads or metrics (default: all)
  --quick                small sizes, for a smoke run
  --markdown             also print the table as Markdown
  --tools <names>        tmount,sshfs (default: both; sshfs only when on PATH)
  --timeout <s>          limit for each workload command (default 300)
  --max-time <s>         limit for the whole run (default 1800)
  --out <dir>            where the JSON results go (default bench/results)
  --tmount-arg <arg>     extra argument for tmount mount (repeatable)
  --sshfs-option <opt>   extra sshfs -o option (repeatable)
  -h, --help             this text
`;

/** @param {string} message @returns {never} */
function usageError(message) {
  process.stderr.write(`bench: ${message}\n${USAGE}`);
  process.exit(2);
}

/** @param {string} message */
const progress = (message) => process.stderr.write(`bench: ${message}\n`);

function parseOptions() {
  let parsed;
  try {
    parsed = parseArgs({
      options: {
        samples: { type: 'string', default: '3' },
        only: { type: 'string' },
        quick: { type: 'boolean', default: false },
        markdown: { type: 'boolean', default: false },
        tools: { type: 'string', default: 'tmount,sshfs' },
        timeout: { type: 'string', default: '300' },
        'max-time': { type: 'string', default: '1800' },
        out: { type: 'string', default: join(ROOT, 'bench', 'results') },
        'tmount-arg': { type: 'string', multiple: true, default: [] },
        'sshfs-option': { type: 'string', multiple: true, default: [] },
        help: { type: 'boolean', short: 'h', default: false },
      },
      allowPositionals: false,
    }).values;
  } catch (err) {
    return usageError(/** @type {Error} */ (err).message);
  }
  if (parsed.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const positive = (/** @type {string} */ name, /** @type {string} */ text) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < 1) usageError(`--${name} wants a positive whole number, got '${text}'`);
    return n;
  };
  const tools = String(parsed.tools).split(',').map((t) => t.trim()).filter(Boolean);
  for (const tool of tools) if (tool !== 'tmount' && tool !== 'sshfs') usageError(`unknown tool '${tool}' in --tools; use tmount, sshfs`);
  if (!tools.includes('tmount')) usageError('--tools must include tmount');
  return {
    samples: positive('samples', String(parsed.samples)),
    only: parsed.only ? String(parsed.only).split(',').map((s) => s.trim()).filter(Boolean) : undefined,
    quick: Boolean(parsed.quick),
    markdown: Boolean(parsed.markdown),
    tools,
    timeoutMs: positive('timeout', String(parsed.timeout)) * 1000,
    maxTimeMs: positive('max-time', String(parsed['max-time'])) * 1000,
    out: String(parsed.out),
    tmountArgs: /** @type {string[]} */ (parsed['tmount-arg']),
    sshfsOptions: /** @type {string[]} */ (parsed['sshfs-option']),
  };
}

/** @param {ReturnType<typeof workloads>} all @param {string[] | undefined} only */
function selectWorkloads(all, only) {
  if (!only) return all;
  const known = new Set(all.flatMap((w) => [w.id, ...w.metrics.map((m) => m.id)]));
  const unknown = only.filter((name) => !known.has(name));
  if (unknown.length) usageError(`unknown workload or metric: ${unknown.join(', ')}; choose from ${[...known].join(', ')}`);
  return all.filter((w) => only.includes(w.id) || w.metrics.some((m) => only.includes(m.id)));
}

function checkPrerequisites() {
  const problems = [];
  if (!existsSync(TMOUNT_CLI)) problems.push(`${TMOUNT_CLI} is missing: build first (npm run build)`);
  if (!existsSync('/dev/fuse')) problems.push('/dev/fuse is missing: FUSE mounts are not possible here');
  for (const tool of ['python3', 'git', 'tar', 'dd', 'find', 'xargs', 'stat', 'fusermount3']) if (!onPath(tool)) problems.push(`${tool} is not on PATH`);
  if (problems.length) {
    process.stderr.write(`bench: cannot run:\n${problems.map((p) => `  - ${p}`).join('\n')}\n`);
    process.exit(1);
  }
}

function tmountVersion() {
  const version = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).version;
  let commit = '';
  try {
    const head = readFileSync(join(ROOT, '.git', 'HEAD'), 'utf8').trim();
    const ref = /^ref: (.+)$/.exec(head)?.[1];
    if (!ref) commit = head;
    else if (existsSync(join(ROOT, '.git', ref))) commit = readFileSync(join(ROOT, '.git', ref), 'utf8').trim();
    else commit = readFileSync(join(ROOT, '.git', 'packed-refs'), 'utf8').split('\n').find((l) => l.endsWith(` ${ref}`))?.split(' ')[0] ?? '';
  } catch {
    // Not a checkout.
  }
  return commit ? `${version} (${commit.slice(0, 12)})` : version;
}

/** The newest modification time in dist/: a rebuild during the run would mix two builds in one table. */
function distStamp() {
  const dist = join(ROOT, 'dist');
  let newest = 0;
  for (const name of readdirSync(dist, { recursive: true, encoding: 'utf8' })) {
    if (name.endsWith('.js')) newest = Math.max(newest, statSync(join(dist, name)).mtimeMs);
  }
  return newest;
}

/** @param {number} port */
function machineFacts(port) {
  const sshfsLines = spawnSync('sshfs', ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const sshfsText = `${sshfsLines.stdout ?? ''}\n${sshfsLines.stderr ?? ''}`;
  const sshCiphers = spawnSync('ssh', ['-G', '-p', String(port), '127.0.0.1'], { encoding: 'utf8', timeout: 10_000 }).stdout ?? '';
  return {
    date: new Date().toISOString(),
    cpu: cpus()[0]?.model ?? 'unknown',
    nproc: availableParallelism(),
    memoryGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    kernel: `${type()} ${release()}`,
    openssh: versionOf('ssh', ['-V']),
    sshfs: /SSHFS version (\S+)/.exec(sshfsText)?.[1] ?? 'not installed',
    libfuse: /FUSE library version (\S+)/.exec(sshfsText)?.[1] ?? 'unknown',
    node: process.version,
    tmount: tmountVersion(),
    sshCipher: /^ciphers (\S+)/m.exec(sshCiphers)?.[1]?.split(',')[0] ?? 'unknown',
  };
}

/** Drops the page, dentry and inode caches so the next sample starts cold on both ends. */
function dropCaches() {
  if (!IS_ROOT) return false;
  spawnSync('sync', [], { stdio: 'ignore', timeout: 60_000 });
  writeFileSync('/proc/sys/vm/drop_caches', '3');
  return true;
}

/** @param {string} path */
function warmLocalFile(path) {
  spawnSync('sh', ['-c', 'cat "$1" > /dev/null', 'sh', path], { stdio: 'ignore', timeout: 60_000 });
}

/** @param {unknown} err */
const messageOf = (err) => (err instanceof Error ? err.message : String(err)).replace(/\s+/g, ' ').slice(0, 600);

async function main() {
  const options = parseOptions();
  checkPrerequisites();
  const sizes = sizesFor(options.quick);
  const chosen = selectWorkloads(workloads(sizes), options.only);
  const tools = [...options.tools];
  let sshfsNote = '';
  if (tools.includes('sshfs') && !onPath('sshfs')) {
    tools.splice(tools.indexOf('sshfs'), 1);
    sshfsNote = 'sshfs is not on PATH: the comparison is skipped, tmount alone is reported (apt-get install sshfs to compare)';
    progress(sshfsNote);
  } else if (!tools.includes('sshfs')) sshfsNote = 'sshfs left out (--tools): tmount alone is reported';

  const builtAt = distStamp();
  const tmp = mkdtempSync(join(tmpdir(), 'tmount-bench-'));
  registry.attach(join(tmp, 'state.json'));
  registry.addDir(tmp);
  const watchdog = spawn(process.execPath, [fileURLToPath(new URL('./watchdog.mjs', import.meta.url)), String(process.pid), join(tmp, 'state.json')], {
    detached: true,
    stdio: 'ignore',
  });
  watchdog.unref();

  /** @type {import('../test/fixtures/sshd.mjs').SshServer | undefined} */
  let server;
  /** @type {Set<import('./mounts.mjs').Mount>} */
  const active = new Set();
  /** @type {import('./report.mjs').MetricResult[]} */
  const results = chosen.flatMap((w) => w.metrics.map((metric) => ({ metric, tools: Object.fromEntries(tools.map((t) => [t, { values: [], errors: [], steal: [] }])) })));
  /** @type {Record<string, Record<string, number[]>>} */
  const extras = {};
  /** Peak resident memory of each tool's processes per workload, KiB, one entry per sample. @type {Record<string, Record<string, number[]>>} */
  const memory = {};
  /** @type {ReturnType<typeof machineFacts> | undefined} */
  let machine;
  let finished = false;
  let stopping = false;

  /** @type {Promise<void> | undefined} */
  let cleaning;
  const cleanup = () => {
    cleaning ??= (async () => {
      const daemons = new Set([...active].map((m) => m.pid));
      for (const pid of registry.groups) if (!daemons.has(pid)) killGroup(pid, 'SIGKILL');
      for (const mount of active) await mount.unmount().catch(() => mount.kill());
      active.clear();
      await server?.stop().catch((err) => progress(`stopping sshd: ${messageOf(err)}`));
      const stillMounted = mountpoints().filter((m) => m.startsWith(`${tmp}/`));
      if (stillMounted.length) progress(`left ${tmp} in place: still mounted at ${stillMounted.join(', ')}`);
      else {
        rmSync(tmp, { recursive: true, force: true });
        registry.detach();
      }
      if (watchdog.pid) killGroup(watchdog.pid, 'SIGKILL');
    })();
    return cleaning;
  };

  const report = () => {
    if (!machine) return;
    const rows = summarize(results, tools);
    const rebuilt = distStamp() !== builtAt;
    const lines = [
      `tmount vs sshfs — ${machine.date}${finished ? '' : ' (INCOMPLETE: the run was stopped early)'}`,
      `machine: ${machine.nproc} CPUs (${machine.cpu}), ${machine.memoryGiB} GiB RAM, ${machine.kernel}, ${machine.openssh}, sshfs ${machine.sshfs} (libfuse ${machine.libfuse}), Node ${machine.node}`,
      `tmount ${machine.tmount}: node ${SERVER_NODE_FLAGS.join(' ')} dist/cli.js mount --foreground --identity <key> --ssh-option UserKnownHostsFile=<file>${options.tmountArgs.length ? ` ${options.tmountArgs.join(' ')}` : ''} (defaults otherwise)`,
      tools.includes('sshfs')
        ? `sshfs: sshfs -f -o IdentityFile=<key>,UserKnownHostsFile=<file>,port=<port>,StrictHostKeyChecking=yes${options.sshfsOptions.length ? `,${options.sshfsOptions.join(',')}` : ''} (sshfs defaults otherwise; ssh's first cipher: ${machine.sshCipher})`
        : `sshfs: ${sshfsNote}`,
      `server: one private OpenSSH sshd on 127.0.0.1 for both; ${options.samples} sample(s) per tool, tools alternating, median shown; every sample on a fresh mount${IS_ROOT ? ' after dropping the kernel caches' : ' (not root: kernel caches NOT dropped, the server side may be warm)'}${options.quick ? '; --quick sizes' : ''}`,
      ...(rebuilt ? ['WARNING: dist/ was rebuilt during the run, so the samples may come from different builds of tmount'] : []),
      '',
      textTable(rows, tools),
    ];
    const extraLabels = { 'git-status-first': 'git status, first run after mount (also rewrites the index)' };
    for (const [key, byTool] of Object.entries(extras)) {
      const shown = tools.map((tool) => {
        const m = median(byTool[tool] ?? []);
        return `${tool} ${m === null ? '—' : `${formatValue(m, 's')} s`}`;
      });
      lines.push(`also measured: ${extraLabels[/** @type {keyof typeof extraLabels} */ (key)] ?? key}: ${shown.join(', ')} (median)`);
    }
    const steals = stealSummary(rows);
    if (steals) lines.push(steals);
    const peaks = memorySummary(memory, tools);
    if (peaks) lines.push(peaks);
    process.stdout.write(`${lines.join('\n')}\n`);
    if (options.markdown) process.stdout.write(`\n${markdownTable(rows, tools)}\n`);
    const failures = rows.flatMap((row) => Object.entries(row.tools).flatMap(([tool, t]) => t.errors.map((e) => `${row.id} (${tool}): ${e}`)));
    if (failures.length) process.stdout.write(`\nfailed samples:\n${[...new Set(failures)].map((f) => `  ${f}`).join('\n')}\n`);
    mkdirSync(options.out, { recursive: true });
    const file = join(options.out, `${machine.date.replace(/[:.]/g, '-')}.json`);
    const json = {
      schemaVersion: 1,
      complete: finished,
      distRebuiltDuringRun: rebuilt,
      machine,
      options: { samples: options.samples, quick: options.quick, only: options.only ?? null, tools, sizes, timeoutSeconds: options.timeoutMs / 1000, tmountArgs: options.tmountArgs, sshfsOptions: options.sshfsOptions, cachesDropped: IS_ROOT },
      metrics: rows,
      extras,
      peakRssKiB: memory,
    };
    writeFileSync(file, `${JSON.stringify(json, null, 2)}\n`);
    process.stdout.write(`\nresults: ${file}\n`);
  };

  const stop = async (/** @type {string} */ why, /** @type {number} */ code) => {
    if (stopping) return;
    stopping = true;
    progress(why);
    try {
      report();
    } catch (err) {
      progress(`cannot write the report: ${messageOf(err)}`);
    }
    await cleanup();
    process.exit(code);
  };
  for (const [signal, code] of /** @type {const} */ ([['SIGINT', 130], ['SIGTERM', 143], ['SIGHUP', 129]])) {
    process.once(signal, () => void stop(`${signal}: stopping and cleaning up`, code));
  }
  process.once('uncaughtException', (err) => void stop(`internal error: ${err.stack ?? err.message}`, 1));
  process.once('unhandledRejection', (err) => void stop(`internal error: ${err instanceof Error ? err.stack : String(err)}`, 1));
  setTimeout(() => void stop(`the whole run exceeded --max-time ${options.maxTimeMs / 1000} s: stopping`, 1), options.maxTimeMs);

  try {
    server = await startSshd();
    machine = machineFacts(server.port);
    progress(`sshd on 127.0.0.1:${server.port}; preparing data (${options.quick ? 'quick' : 'full'} sizes)`);
    const localDir = join(tmp, 'local');
    mkdirSync(localDir);
    const started = Date.now();
    const local = prepareData(server.remoteRoot, localDir, sizes);
    progress(`data ready in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    if (!IS_ROOT) progress('not root: kernel caches cannot be dropped; cold numbers only have cold mounts');

    const mountDirs = Object.fromEntries(tools.map((tool) => {
      const dir = join(tmp, `mnt-${tool}`);
      mkdirSync(dir);
      return [tool, dir];
    }));
    const srv = server;
    for (const workload of chosen) {
      for (let sample = 0; sample < options.samples; sample++) {
        for (const tool of tools) {
          if (stopping) return;
          const scratch = resetScratch(srv.remoteRoot);
          dropCaches();
          for (const key of workload.warm ?? []) warmLocalFile(local[/** @type {'source' | 'tar'} */ (key)]);
          const dir = /** @type {string} */ (mountDirs[tool]);
          const record = (/** @type {Record<string, number>} */ values, /** @type {string | undefined} */ error = undefined, /** @type {number | null} */ steal = null) => {
            for (const result of results) {
              if (!workload.metrics.includes(result.metric)) continue;
              const slot = /** @type {import('./report.mjs').ToolSamples} */ (result.tools[tool]);
              const value = values[result.metric.id];
              if (error !== undefined) slot.errors.push(error);
              else if (value !== undefined) {
                slot.values.push(value);
                slot.steal.push(steal);
              }
            }
          };
          const tag = `[${workload.id} ${sample + 1}/${options.samples}] ${tool}`;
          /** @type {import('./mounts.mjs').Mount} */
          let mount;
          try {
            mount = tool === 'tmount' ? await mountTmount(srv, dir, join(tmp, 'tmount-state'), options.tmountArgs) : await mountSshfs(srv, dir, options.sshfsOptions);
          } catch (err) {
            record({}, `mount failed: ${messageOf(err)}`);
            progress(`${tag}: mount failed: ${messageOf(err)}`);
            continue;
          }
          active.add(mount);
          /** @type {Awaited<ReturnType<typeof workload.run>> | undefined} */
          let outcome;
          /** @type {unknown} */
          let failure;
          const ctx = {
            mnt: dir,
            remote: srv.remoteRoot,
            scratch,
            local,
            sizes,
            sample,
            sh: (/** @type {string} */ command, /** @type {string} */ what) => runTimed('sh', ['-c', command], { timeoutMs: options.timeoutMs, what }),
          };
          const stolen = startStealMeter();
          try {
            outcome = await workload.run(ctx);
          } catch (err) {
            failure = err;
          }
          const steal = stolen();
          const peak = mount.peakRssKiB();
          if (failure instanceof TimeoutError) await mount.kill();
          else await mount.unmount();
          active.delete(mount);
          if (stopping) return;
          if (failure === undefined && workload.verify) {
            try {
              workload.verify(ctx);
            } catch (err) {
              failure = new Error(`wrong result: ${messageOf(err)}`);
            }
          }
          if (failure !== undefined || !outcome) {
            const message = messageOf(failure);
            record({}, message);
            const log = mount.log().trim().split('\n').slice(-5).join('\n    ');
            progress(`${tag}: FAILED: ${message}${log ? `\n    ${tool} said: ${log}` : ''}`);
            continue;
          }
          record(outcome.values, undefined, steal);
          if (peak !== null) ((memory[workload.id] ??= {})[tool] ??= []).push(peak);
          for (const [key, value] of Object.entries(outcome.extra ?? {})) ((extras[key] ??= {})[tool] ??= []).push(value);
          const shown = Object.entries(outcome.values).map(([id, v]) => `${id} ${v.toFixed(v < 10 ? 3 : 1)}`).join(', ');
          progress(`${tag}: ${shown}${steal === null ? '' : `, host steal ${(steal * 100).toFixed(0)} %`}`);
        }
      }
    }
    finished = true;
  } catch (err) {
    await stop(`cannot run the benchmark: ${messageOf(err)}`, 1);
    return;
  }
  report();
  await cleanup();
  const tmountFailed = results.some((r) => (r.tools.tmount?.errors.length ?? 0) > 0);
  process.exit(tmountFailed ? 1 : 0);
}

await main();
