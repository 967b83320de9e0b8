import type { RemoteStatvfs } from '../../remote/sftp-session.js';

/**
 * Exactly what addons/fuse exports (tmount_fuse.node). Loaded through
 * platform/addon-loader.ts; nothing else imports the addon.
 *
 * Threads: the addon's own thread reads /dev/fuse and hands each request to
 * `handler` on the JS main thread; JS replies later, from any callback, with
 * one reply* call per request id. Every request except `forget` needs exactly
 * one reply.
 */

export interface FuseAttr {
  ino: number;
  mode: number;
  nlink: number;
  uid: number;
  gid: number;
  size: number;
  blocks: number;
  blksize: number;
  atimeMs: number;
  mtimeMs: number;
  ctimeMs: number;
}

export interface FuseEntry {
  ino: number;
  generation: number;
  attr: FuseAttr;
  /** Seconds the kernel may cache the name → ino mapping (fractional allowed). */
  entryTimeout: number;
  /** Seconds the kernel may cache the attributes. */
  attrTimeout: number;
}

export interface FuseDirEntry {
  name: string;
  /** Offset the kernel passes back to continue after this entry. */
  nextOffset: number;
  /** For plain readdir: only ino and mode are used. */
  ino: number;
  mode: number;
  /** For readdirplus; an entry without it is sent with ino 0 (no lookup taken). */
  entry?: FuseEntry;
}

export interface FuseOpenReply {
  fh: number;
  directIo?: boolean;
  keepCache?: boolean;
  nonSeekable?: boolean;
  /** For opendir: the kernel may cache the listing (with keepCache: keep it across opens). */
  cacheDir?: boolean;
}

/** What statfs replies carry: the same fields statvfs@openssh.com answers with. */
export type FuseStatfs = RemoteStatvfs;

/** Bits of `toSet` in a setattr request (FUSE_SET_ATTR_*). */
export const SetAttr = {
  mode: 1 << 0,
  uid: 1 << 1,
  gid: 1 << 2,
  size: 1 << 3,
  atime: 1 << 4,
  mtime: 1 << 5,
  atimeNow: 1 << 7,
  mtimeNow: 1 << 8,
  ctime: 1 << 10,
} as const;

type Req<Op extends string, Fields> = { op: Op; id: number } & Fields;

export type FuseRequest =
  | Req<'lookup', { parent: number; name: string }>
  | Req<'getattr', { ino: number; fh?: number }>
  | Req<'setattr', { ino: number; fh?: number; toSet: number; mode: number; uid: number; gid: number; size: number; atimeMs: number; mtimeMs: number }>
  | Req<'readlink', { ino: number }>
  | Req<'mknod', { parent: number; name: string; mode: number; rdev: number }>
  | Req<'mkdir', { parent: number; name: string; mode: number }>
  | Req<'unlink', { parent: number; name: string }>
  | Req<'rmdir', { parent: number; name: string }>
  | Req<'symlink', { target: string; parent: number; name: string }>
  | Req<'rename', { parent: number; name: string; newParent: number; newName: string; flags: number }>
  | Req<'link', { ino: number; newParent: number; newName: string }>
  | Req<'open', { ino: number; flags: number }>
  | Req<'read', { ino: number; fh: number; size: number; offset: number }>
  | Req<'write', { ino: number; fh: number; data: Buffer; offset: number; flags: number }>
  | Req<'flush', { ino: number; fh: number }>
  | Req<'release', { ino: number; fh: number; flags: number }>
  | Req<'fsync', { ino: number; fh: number; datasync: boolean }>
  | Req<'opendir', { ino: number; flags: number }>
  | Req<'readdir', { ino: number; fh: number; size: number; offset: number; plus: boolean }>
  | Req<'releasedir', { ino: number; fh: number }>
  | Req<'fsyncdir', { ino: number; fh: number; datasync: boolean }>
  | Req<'statfs', { ino: number }>
  | Req<'create', { parent: number; name: string; mode: number; flags: number }>
  /** Already answered by the addon (forget needs no reply); `id` is 0. */
  | Req<'forget', { items: { ino: number; nlookup: number }[] }>;

export interface FuseMountOptions {
  /** Shown as the source in /proc/mounts, e.g. "alice@host:/srv". */
  fsname: string;
  /** Filesystem type suffix: mounts show as fuse.<subtype>. */
  subtype: string;
  readonly?: boolean;
  allowOther?: boolean;
  defaultPermissions?: boolean;
  /** Bytes; the addon raises the kernel's max_write/max_read to this (≥ 1 MiB). */
  maxWrite?: number;
  maxReadahead?: number;
  writebackCache?: boolean;
  /** Worker threads that read /dev/fuse; requests never wait on JS either way. */
  threads?: number;
  /**
   * Read /dev/fuse on the JS thread's event loop instead of worker threads
   * (`threads` is then ignored): a request reaches JS without a second thread
   * waking up. Only where `readsOnEventLoop` says the build can.
   */
  eventLoop?: boolean;
}

export interface FuseSession {
  /** Starts the session thread. Throws an Error naming the syscall and errno on failure. */
  mount(): void;
  /** Ends the session and unmounts; resolves when the thread has exited. Idempotent. */
  unmount(): Promise<void>;
  /** Settles when the session loop ends, by unmount() or from outside (fusermount3 -u, umount). */
  readonly closed: Promise<void>;

  replyErr(id: number, errno: number): void;
  replyNone(id: number): void;
  replyEntry(id: number, entry: FuseEntry): void;
  replyCreate(id: number, entry: FuseEntry, open: FuseOpenReply): void;
  replyAttr(id: number, attr: FuseAttr, timeout: number): void;
  replyReadlink(id: number, target: string): void;
  replyOpen(id: number, open: FuseOpenReply): void;
  replyWrite(id: number, count: number): void;
  replyBuf(id: number, data: Buffer): void;
  replyStatfs(id: number, stat: FuseStatfs): void;
  /** Packs entries until `size` bytes are full; returns how many were packed. */
  replyDirectory(id: number, entries: FuseDirEntry[], size: number, plus: boolean): number;

  /** Tells the kernel to drop cached data/attributes of an inode (len 0 = to the end). */
  notifyInvalInode(ino: number, offset: number, length: number): void;
  /** Tells the kernel to drop a cached name in a directory. */
  notifyInvalEntry(parent: number, name: string): void;
}

export interface FuseAddon {
  /**
   * `handler` hears of each request as an op index plus what is not a number,
   * with the numbers in `slots`; request-decoder.ts makes a FuseRequest of them.
   */
  FuseSession: new (mountpoint: string, options: FuseMountOptions, handler: (op: number, a?: unknown, b?: unknown) => void, slots: Float64Array) => FuseSession;
  /** The order of the numbers in `slots`, and the ops by index (request-decoder.ts checks both). */
  requestSlots: string[];
  opNames: string[];
  /** libfuse's version string, e.g. "3.14.0". */
  libfuseVersion(): string;
  /** Whether this build can read requests on the event loop (built with libuv's headers). */
  readsOnEventLoop: boolean;
}
