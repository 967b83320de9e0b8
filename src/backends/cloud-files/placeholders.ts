import { createHash } from 'node:crypto';
import { type ErrnoCode, FsError } from '../../vfs/errors.js';
import { type DirEntry, FileType } from '../../vfs/remote-fs.js';
import type { CfPinState, CfPlaceholder, CfStatus, RawLocalState } from './addon-types.js';
import { joinPath, windowsNameProblem } from './paths.js';

/**
 * The pure rules of the Cloud Files provider: which remote entries become
 * placeholders and with what metadata, which byte ranges a fetch transfers,
 * which status an error becomes, how the addon's raw local state reads.
 */

/** FILE_ATTRIBUTE_* (winnt.h). */
export const FileAttribute = {
  readonly: 0x1,
  directory: 0x10,
  normal: 0x80,
  pinned: 0x80000,
  unpinned: 0x100000,
  recallOnDataAccess: 0x400000,
} as const;

/** cfapi transfers whole 4 KiB blocks, except a last one that ends at the end of the file. */
export const CF_BLOCK = 4096;
/** CF_PLACEHOLDER_MAX_FILE_IDENTITY_LENGTH. */
const MAX_IDENTITY = 4096;

/** One remote entry as the provider shows it locally. */
export interface PlaceholderSpec {
  name: string;
  /** Mount-relative path. */
  path: string;
  isDirectory: boolean;
  size: number;
  mtimeMs: number;
  atimeMs: number;
  /** Shown read-only: a read-only mount, or a file its owner may not write. */
  readonly: boolean;
}

/** Why a remote entry has no placeholder. */
export interface Skipped {
  name: string;
  reason: string;
}

/**
 * The placeholders of one remote directory listing. Only regular files and
 * directories have placeholders (Cloud Files has no symlinks or devices);
 * names Windows cannot hold are left out, and of names equal but for case
 * (one NTFS name) the first in code-unit order wins.
 */
export function placeholdersOf(dir: string, entries: DirEntry[], mountReadonly: boolean): { specs: PlaceholderSpec[]; skipped: Skipped[] } {
  const specs: PlaceholderSpec[] = [];
  const skipped: Skipped[] = [];
  const taken = new Map<string, string>();
  for (const { name, attr } of [...entries].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    const type = attr.mode & FileType.S_IFMT;
    if (type === FileType.S_IFLNK) {
      skipped.push({ name, reason: 'is a symbolic link, which Cloud Files placeholders cannot represent' });
      continue;
    }
    if (type !== FileType.S_IFREG && type !== FileType.S_IFDIR) {
      skipped.push({ name, reason: 'is neither a file nor a directory' });
      continue;
    }
    const problem = windowsNameProblem(name);
    if (problem) {
      skipped.push({ name, reason: problem });
      continue;
    }
    const key = name.toLowerCase();
    const other = taken.get(key);
    if (other !== undefined) {
      skipped.push({ name, reason: `differs from '${other}' only in case, and Windows names ignore case` });
      continue;
    }
    taken.set(key, name);
    const isDirectory = type === FileType.S_IFDIR;
    specs.push({
      name,
      path: joinPath(dir, name),
      isDirectory,
      size: isDirectory ? 0 : attr.size,
      mtimeMs: attr.mtimeMs,
      atimeMs: attr.atimeMs,
      readonly: !isDirectory && (mountReadonly || (attr.mode & 0o200) === 0),
    });
  }
  return { specs, skipped };
}

/** True when the remote entry changed in a way the placeholder must follow. */
export function specChanged(before: PlaceholderSpec, after: PlaceholderSpec): boolean {
  return before.isDirectory !== after.isDirectory || before.size !== after.size || before.mtimeMs !== after.mtimeMs || before.readonly !== after.readonly;
}

/** The FileIdentity of a placeholder: its path when it was made (cfapi hands it back; tmount only logs it). */
export function identityOf(path: string): Buffer {
  const bytes = Buffer.from(path, 'utf8');
  return bytes.length <= MAX_IDENTITY ? bytes : Buffer.from(createHash('sha256').update(bytes).digest('hex'));
}

export function metadataOf(spec: PlaceholderSpec): CfPlaceholder['metadata'] {
  return {
    size: spec.size,
    attributes: spec.isDirectory ? FileAttribute.directory : spec.readonly ? FileAttribute.readonly : FileAttribute.normal,
    // SFTP v3 has no creation time; the modification time is the closest truth.
    createdMs: spec.mtimeMs,
    modifiedMs: spec.mtimeMs,
    accessedMs: spec.atimeMs,
    changedMs: spec.mtimeMs,
  };
}

/**
 * A placeholder as cfapi creates it: in sync (it is the remote's state), and
 * for directories not populated, so the platform asks for their children
 * when someone first looks inside.
 */
export function toCfPlaceholder(spec: PlaceholderSpec): CfPlaceholder {
  return { name: spec.name, metadata: metadataOf(spec), identity: identityOf(spec.path), markInSync: true, populated: false };
}

export interface FetchRange {
  fileSize: number;
  requiredOffset: number;
  /** -1 (CF_EOF): to the end of the file. */
  requiredLength: number;
  optionalOffset: number;
  optionalLength: number;
}

export interface TransferChunk {
  offset: number;
  length: number;
}

/**
 * The TRANSFER_DATA calls that answer a FETCH_DATA: the required range,
 * stretched to 4 KiB blocks, and extended into the optional range (the
 * platform's hint of what else is missing) up to `readAheadBytes` past the
 * required start, so a sequential reader needs fewer round trips; cut into
 * `chunkBytes` pieces. Every offset is block-aligned and every length too,
 * except a last one that ends exactly at the end of the file.
 */
export function planTransfer(range: FetchRange, options: { chunkBytes: number; readAheadBytes: number }): TransferChunk[] {
  const size = range.fileSize;
  if (options.chunkBytes <= 0 || options.chunkBytes % CF_BLOCK !== 0) throw new RangeError(`chunk size ${options.chunkBytes} is not a positive multiple of ${CF_BLOCK}`);
  if (size <= 0) return [];
  const requiredStart = Math.min(Math.max(0, range.requiredOffset), size);
  const requiredEnd = range.requiredLength < 0 ? size : Math.min(size, range.requiredOffset + range.requiredLength);
  if (requiredEnd <= requiredStart) return [];
  let end = requiredEnd;
  const optionalEnd = range.optionalLength < 0 ? size : Math.min(size, range.optionalOffset + range.optionalLength);
  if (range.optionalOffset <= end && optionalEnd > end) end = Math.min(optionalEnd, Math.max(end, requiredStart + options.readAheadBytes));
  const start = Math.floor(requiredStart / CF_BLOCK) * CF_BLOCK;
  end = Math.min(size, Math.ceil(end / CF_BLOCK) * CF_BLOCK);
  const chunks: TransferChunk[] = [];
  for (let offset = start; offset < end; offset += options.chunkBytes) chunks.push({ offset, length: Math.min(options.chunkBytes, end - offset) });
  return chunks;
}

const STATUS_BY_ERRNO: Partial<Record<ErrnoCode, CfStatus>> = {
  ENOENT: 'notFound',
  EACCES: 'accessDenied',
  EPERM: 'accessDenied',
  EROFS: 'accessDenied',
  ENOTEMPTY: 'notEmpty',
  EEXIST: 'exists',
  ETIMEDOUT: 'timeout',
  ENOTCONN: 'networkUnavailable',
  ENOSPC: 'diskFull',
  EFBIG: 'diskFull',
  EINVAL: 'notSupported',
  ENOSYS: 'notSupported',
  ENOTSUP: 'notSupported',
  EXDEV: 'notSupported',
  EISDIR: 'invalidRequest',
  ENOTDIR: 'invalidRequest',
  ENAMETOOLONG: 'invalidRequest',
};

/** The one errno → cfapi status table: what a failed callback tells Windows. */
export function statusOf(err: unknown): CfStatus {
  return err instanceof FsError ? (STATUS_BY_ERRNO[err.code] ?? 'unsuccessful') : 'unsuccessful';
}

/** HRESULTs a placeholder result can carry (unsigned, as the addon reports them). */
export const HResult = {
  ok: 0,
  pending: 0x8000000a,
  fileExists: 0x80070050,
  alreadyExists: 0x800700b7,
} as const;

export type PlaceholderOutcome = 'created' | 'exists' | 'failed';

export function placeholderOutcome(hresult: number): PlaceholderOutcome {
  const unsigned = hresult >>> 0;
  if (unsigned === HResult.fileExists || unsigned === HResult.alreadyExists) return 'exists';
  return unsigned < 0x80000000 ? 'created' : 'failed';
}

/** A local file or directory in the sync root, as the provider reasons about it. */
export interface LocalState {
  isDirectory: boolean;
  size: number;
  modifiedMs: number;
  /** A Cloud Files placeholder (everything tmount made, and local files it has taken over). */
  placeholder: boolean;
  /** The platform's in-sync bit: cleared by any local change since tmount last set it. */
  inSync: boolean;
  pin: CfPinState;
  /** All of a file's data is on the local disk. */
  hydrated: boolean;
  /** Changes with every local change; lets "mark in sync" refuse a file that changed meanwhile. */
  usn?: bigint;
}

const PIN_STATES: CfPinState[] = ['unspecified', 'pinned', 'unpinned', 'excluded', 'inherit'];

export function decodeLocalState(raw: RawLocalState): LocalState {
  let pin: CfPinState = PIN_STATES[raw.pinState] ?? 'unspecified';
  if (!raw.placeholder) {
    pin = raw.attributes & FileAttribute.pinned ? 'pinned' : raw.attributes & FileAttribute.unpinned ? 'unpinned' : 'unspecified';
  }
  const hydrated = raw.isDirectory || !raw.placeholder || raw.onDiskDataSize >= raw.size;
  return {
    isDirectory: raw.isDirectory,
    size: raw.size,
    modifiedMs: raw.modifiedMs,
    placeholder: raw.placeholder,
    inSync: raw.placeholder && raw.inSyncState === 1,
    pin,
    hydrated,
    ...(raw.usn !== undefined && raw.usn !== 0n ? { usn: raw.usn } : {}),
  };
}
