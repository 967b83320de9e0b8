import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { describe, expect, it } from 'vitest';
import { type MountStatus, statusRow } from '../../src/control/status.js';

const SCHEMA = JSON.parse(readFileSync(fileURLToPath(new URL('../../schema/status.schema.json', import.meta.url)), 'utf8'));

function mount(syncRoot: MountStatus['syncRoot']): MountStatus {
  return {
    id: 'm-3f2a',
    remote: 'alice@example.org:/srv/data',
    mountpoint: 'C:\\Users\\alice\\tmount\\example.org',
    backend: 'cloud-files',
    pid: 4242,
    startedAt: '2026-11-22T20:00:00.000Z',
    state: { state: 'active' },
    connection: { state: 'connected', since: '2026-11-22T20:00:00.000Z', reconnects: 0, latencyMs: 3 },
    stats: { ops: 1, bytesRead: 2, bytesWritten: 3, cacheHits: 4, cacheMisses: 5, errors: 0 },
    ...(syncRoot ? { syncRoot } : {}),
  };
}

const failed = {
  id: 'tmount!S-1-5-21-1-2-3-1001!alice@example.org_srv_data-3f9a1c2b7d4e',
  displayName: 'tmount — example.org:/srv/data',
  shell: true,
  pendingUploads: 1,
  failedUploads: [
    { path: 'notes/todo.txt', error: 'create todo.txt: EACCES', since: '2026-11-22T20:01:00.000Z', attempts: 2, nextRetry: '2026-11-22T20:01:20.000Z' },
    { path: 'ro.txt', error: 'upload ro.txt: EROFS', since: '2026-11-22T20:01:00.000Z', attempts: 1, nextRetry: null },
  ],
};

describe('status of a Cloud Files mount', () => {
  it('validates against schema version 1 with and without a sync root', () => {
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    addFormats.default(ajv);
    for (const document of [{ schemaVersion: 1, mounts: [mount(failed), mount(undefined)] }]) {
      ajv.validate(SCHEMA, document);
      expect(ajv.errors ?? []).toEqual([]);
    }
    ajv.validate(SCHEMA, { schemaVersion: 1, mounts: [mount({ ...failed, failedUploads: [{ path: 'x' } as never] })] });
    expect(ajv.errors?.length).toBeGreaterThan(0);
  });

  it('shows failed uploads in the table state', () => {
    expect(statusRow(mount(failed))[4]).toBe('active, 2 uploads failed');
    expect(statusRow(mount({ ...failed, failedUploads: failed.failedUploads.slice(0, 1) }))[4]).toBe('active, 1 upload failed');
    expect(statusRow(mount({ ...failed, failedUploads: [] }))[4]).toBe('active');
  });
});

describe('status of a FileProvider mount', () => {
  const fileProvider = { domain: 'tmount-3f9a1c2b7d4e', displayName: 'tmount — alice@example.org:/srv/data', socket: '/Users/alice/Library/Group Containers/group.dev.tmount/tmount/3f9a1c2b7d4e.sock' };
  const fpMount: MountStatus = { ...mount(undefined), mountpoint: null, backend: 'fileprovider', fileProvider };

  it('validates against schema version 1 with its domain, and refuses a domain tmount would not name', () => {
    const ajv = new Ajv2020({ allErrors: true, strict: true });
    addFormats.default(ajv);
    ajv.validate(SCHEMA, { schemaVersion: 1, mounts: [fpMount] });
    expect(ajv.errors ?? []).toEqual([]);
    ajv.validate(SCHEMA, { schemaVersion: 1, mounts: [{ ...fpMount, fileProvider: { ...fileProvider, domain: 'other' } }] });
    expect(ajv.errors?.length).toBeGreaterThan(0);
  });

  it('shows the Finder location where a mountpoint would be', () => {
    expect(statusRow(fpMount)[1]).toBe('Finder: tmount — alice@example.org:/srv/data');
  });
});
