/** What a user can tune per mount; every field has a default below. */
export interface RemoteFsOptions {
  /** Remote directory the mount shows: absolute, or relative to the remote home ('' = home). */
  root: string;
  readonly: boolean;
  attrTtlMs: number;
  dirTtlMs: number;
  negativeTtlMs: number;
  /** Bound of each metadata cache, in entries. */
  metadataEntries: number;
  /** Bytes of file data kept in memory across handles. */
  dataCacheBytes: number;
  /** Largest read-ahead window of a sequential reader. */
  maxReadAheadBytes: number;
  /** Unflushed bytes per open file before a background write-back starts. */
  writeBackBytes: number;
  /** WRITE requests in flight per open file. */
  writeDepth: number;
  /** Subdirectories of a listed directory whose listings are fetched ahead (0: none). */
  dirPrefetch: number;
}

/**
 * Defaults: metadata is trusted for 20 s, like sshfs's cache_timeout; data is
 * checked against the remote size and mtime at every open (close-to-open, as
 * NFS does).
 */
export const DEFAULT_OPTIONS: RemoteFsOptions = {
  root: '',
  readonly: false,
  attrTtlMs: 20_000,
  dirTtlMs: 20_000,
  negativeTtlMs: 20_000,
  metadataEntries: 200_000,
  dataCacheBytes: 128 * 1024 * 1024,
  maxReadAheadBytes: 8 * 1024 * 1024,
  writeBackBytes: 4 * 1024 * 1024,
  writeDepth: 16,
  dirPrefetch: 128,
};
