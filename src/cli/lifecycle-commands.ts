import { resolve } from 'node:path';
import type { Command } from 'commander';
import { ask, ControlClient } from '../control/client.js';
import { crashedTmountMounts, findMount, kernelTmountMounts, liveMounts, matches } from '../control/mounts.js';
import type { EventEnvelope } from '../control/protocol.js';
import type { Registration } from '../control/registry.js';
import { STATUS_HEADERS, type MountStatus, type StatusDocument, statusRow } from '../control/status.js';
import { UserError } from '../errors.js';
import { isProcessAlive } from '../platform/process.js';
import { unmountPath } from '../platform/unmount.js';
import { formatOption, printJson, type OutputFormat } from './format.js';
import { formatTable } from './table.js';

const EXIT_WAIT_MS = 10_000;

export function registerLifecycleCommands(program: Command): void {
  program
    .command('status')
    .description('show running mounts, their connection and statistics')
    .argument('[target]', 'a mountpoint or mount id (default: all)')
    .addOption(formatOption())
    .action(async (target: string | undefined, options: { format: OutputFormat }) => {
      const chosen = target === undefined ? await liveMounts() : [await findMount(target)];
      // A mount still connecting has no status yet; `events` follows it meanwhile.
      const mounts = (await Promise.all(chosen.filter((m) => !m.starting).map(statusOf))).filter((m): m is MountStatus => m !== null);
      const document: StatusDocument = { schemaVersion: 1, mounts };
      if (options.format === 'json') return printJson(document);
      if (mounts.length === 0) return void process.stdout.write('no mounts\n');
      process.stdout.write(`${formatTable(STATUS_HEADERS, mounts.map(statusRow))}\n`);
    });

  program
    .command('unmount')
    .alias('umount')
    .description('unmount a mount by mountpoint or id, or every mount with --all')
    .argument('[target]', 'a mountpoint or mount id')
    .option('--all', 'unmount every mount', false)
    .option('--force', 'detach even if busy, unresponsive or crashed (lazy unmount)', false)
    .action(async (target: string | undefined, options: { all: boolean; force: boolean }) => {
      if (target === undefined && !options.all) {
        throw new UserError('usage', 'name what to unmount: tmount unmount <mountpoint|id>, or tmount unmount --all');
      }
      const mounts = await liveMounts();
      if (options.all) {
        for (const registration of mounts) await unmountOne(registration, options.force);
        // Crashed mounts have no registration left; live ones of other users or state dirs are not ours to touch.
        if (options.force) for (const path of await crashedTmountMounts()) await unmountPath(path, true);
        return;
      }
      const registration = mounts.find((candidate) => matches(candidate, target!));
      if (registration) return unmountOne(registration, options.force);
      // No process owns it: a crashed mount the kernel still shows.
      const path = resolve(target!);
      if (kernelTmountMounts().includes(path)) {
        if (!options.force) {
          throw new UserError('mountpoint', `${path} is a tmount mount whose process is gone; clear it with: tmount unmount --force '${path}'`);
        }
        await unmountPath(path, true);
        return;
      }
      throw new UserError('notFound', `no mount matches '${target}'; list mounts with tmount status`);
    });

  program
    .command('reconnect')
    .description('make a mount that is reconnecting or disconnected try to connect now')
    .argument('<target>', 'a mountpoint or mount id')
    .action(async (target: string) => {
      await ask(await findMount(target), 'reconnect');
    });

  program
    .command('events')
    .description('stream connection and mount state changes, one line each, until interrupted')
    .argument('[target]', 'a mountpoint or mount id (default: all, including mounts started later)')
    .addOption(formatOption())
    .action(async (target: string | undefined, options: { format: OutputFormat }) => {
      if (target !== undefined) await findMount(target);
      await streamEvents(target, options.format);
    });
}

/** Asks the mount process; one that does not answer is still listed, from its registration. */
async function statusOf(registration: Registration): Promise<MountStatus | null> {
  try {
    return await ask<MountStatus | null>(registration, 'status');
  } catch (err) {
    if (err instanceof UserError) throw err;
    return {
      id: registration.id,
      remote: registration.remote,
      mountpoint: registration.mountpoint,
      backend: registration.backend,
      pid: registration.pid,
      startedAt: registration.startedAt,
      state: { state: 'failed', reason: `the mount process does not answer: ${(err as Error).message}` },
      connection: { state: 'disconnected', since: registration.startedAt, reconnects: 0, latencyMs: null },
      stats: { ops: 0, bytesRead: 0, bytesWritten: 0, cacheHits: 0, cacheMisses: 0, errors: 0 },
    };
  }
}

async function waitForExit(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (isProcessAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  return !isProcessAlive(pid);
}

/**
 * Asks the mount process to unmount and waits for it to exit. With --force,
 * an unresponsive or busy mount is detached and its process ended.
 */
async function unmountOne(registration: Registration, force: boolean): Promise<void> {
  let refusal: Error | undefined;
  try {
    await ask(registration, 'unmount', EXIT_WAIT_MS);
  } catch (err) {
    if (err instanceof UserError && !force) throw err;
    // A closed connection while unmounting is the process exiting: success.
    if (!/closed its control connection/.test((err as Error).message)) refusal = err as Error;
  }
  if (await waitForExit(registration.pid, refusal ? 0 : EXIT_WAIT_MS)) return;
  if (!force) {
    const why = refusal ? refusal.message : `its process ${registration.pid} did not exit`;
    throw new UserError('mountpoint', `cannot unmount ${registration.mountpoint ?? registration.id}: ${why}; close files using it, or use --force`);
  }
  if (registration.mountpoint) await unmountPath(registration.mountpoint, true).catch(() => {});
  process.kill(registration.pid, 'SIGTERM');
  if (!(await waitForExit(registration.pid, 2_000))) process.kill(registration.pid, 'SIGKILL');
  await liveMounts();
}

function formatEvent(envelope: EventEnvelope, format: OutputFormat): string {
  if (format === 'json') return JSON.stringify(envelope);
  const { event } = envelope;
  if (event.type === 'connection_state') {
    const detail = event.attempt !== undefined ? ` (attempt ${event.attempt})` : event.phase ? ` (${event.phase})` : '';
    return `[tmount] ${event.mount}: ${event.state}${detail}${event.reason ? `: ${event.reason}` : ''}`;
  }
  const state = event.state.reason ? `${event.state.state}: ${event.state.reason}` : event.state.state;
  return `[tmount] ${event.mount}: mount ${state}`;
}

/**
 * Subscribes to every matching mount, and keeps looking for new ones, until
 * interrupted. A mount process that goes away without saying goodbye is
 * reported as failed, since its mount is gone with it.
 */
async function streamEvents(target: string | undefined, format: OutputFormat): Promise<void> {
  const watching = new Map<string, ControlClient>();
  const print = (envelope: EventEnvelope) => process.stdout.write(`${formatEvent(envelope, format)}\n`);
  const subscribe = async (registration: Registration) => {
    if (watching.has(registration.id)) return;
    const client = await ControlClient.open(registration).catch(() => undefined);
    if (!client) return;
    watching.set(registration.id, client);
    let ended = false;
    client.onEvent = (envelope) => {
      if (envelope.event.type === 'mount_state' && envelope.event.state.state === 'unmounted') ended = true;
      print(envelope);
    };
    void client.closed.then(() => {
      if (!ended) {
        print({
          type: 'event',
          at: new Date().toISOString(),
          event: { type: 'mount_state', mount: registration.id, state: { state: 'failed', reason: 'the mount process ended without unmounting' } },
        });
      }
    });
    await client.request('subscribe').catch(() => undefined);
  };
  let stop!: () => void;
  const interrupted = new Promise<void>((resolve) => (stop = resolve));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const poll = async () => {
    for (const registration of await liveMounts()) {
      if (target === undefined || matches(registration, target)) await subscribe(registration);
    }
  };
  await poll();
  const timer = setInterval(() => void poll(), 1_000);
  await interrupted;
  clearInterval(timer);
  for (const client of watching.values()) client.close();
}
