import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, rmSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { BackendName } from '../backends/types.js';
import { isProcessAlive } from '../platform/process.js';
import { controlSocketPath, ensureStateDir } from './state-dir.js';

/** What a mount process writes about itself when its mount is ready. */
export interface Registration {
  id: string;
  pid: number;
  remote: string;
  mountpoint: string | null;
  backend: BackendName;
  startedAt: string;
  socket: string;
  protocol: number;
  /** Still connecting: followable by `events`, not yet listed by `status`. */
  starting?: boolean;
}

export function newMountId(dir = ensureStateDir()): string {
  for (;;) {
    const id = `m-${randomBytes(2).toString('hex')}`;
    if (!readdirSync(dir).some((name) => name.startsWith(`${id}.`))) return id;
  }
}

export function socketFor(id: string, dir = ensureStateDir()): string {
  return controlSocketPath(dir, id);
}

/** Written atomically (rename), so a reader never sees half a record. */
export function register(registration: Registration, dir = ensureStateDir()): void {
  const path = join(dir, `${registration.id}.json`);
  writeFileSync(`${path}.tmp`, JSON.stringify(registration, null, 2), { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}

export function unregister(id: string, dir = ensureStateDir()): void {
  rmSync(join(dir, `${id}.json`), { force: true });
  if (process.platform !== 'win32') rmSync(controlSocketPath(dir, id), { force: true });
}

export interface RegistryRead {
  live: Registration[];
  /** Registrations whose process is gone; already removed from disk when returned. */
  pruned: Registration[];
}

/** Every registration, with those of dead processes pruned on the way. */
export function readRegistry(dir = ensureStateDir()): RegistryRead {
  const live: Registration[] = [];
  const pruned: Registration[] = [];
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.json')) continue;
    let registration: Registration;
    try {
      registration = JSON.parse(readFileSync(join(dir, name), 'utf8')) as Registration;
    } catch {
      continue; // Being written right now, or not ours.
    }
    if (isProcessAlive(registration.pid)) {
      live.push(registration);
    } else {
      unregister(registration.id, dir);
      pruned.push(registration);
    }
  }
  live.sort((a, b) => a.startedAt.localeCompare(b.startedAt));
  return { live, pruned };
}
