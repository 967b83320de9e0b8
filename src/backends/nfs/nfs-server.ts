import type { RemoteFs } from '../../vfs/remote-fs.js';
import { HandleTable } from './handles.js';
import { MountProgram } from './mount-protocol.js';
import { Nfs3Program, type OwnerMapping } from './nfs3.js';
import { OpenFiles } from './open-files.js';
import { RpcServer } from './server.js';

/** READ and WRITE up to 1 MiB (FSINFO rtmax/wtmax): SFTP throughput depends on large requests. */
export const MAX_IO = 1024 * 1024;
/** The largest RPC record accepted: a WRITE of MAX_IO plus its headers, with room to spare. */
export const MAX_RECORD = MAX_IO + 64 * 1024;

export interface NfsServerOptions {
  fs: RemoteFs;
  /** The path clients mount (MNT) and see in EXPORT. */
  exportPath: string;
  /** Accept NFS calls from unprivileged ports (user-space clients such as libnfs). */
  insecure: boolean;
  readonly: boolean;
  allowOther: boolean;
  owners: OwnerMapping;
  /** A handle idle for this long is closed and its writes flushed. */
  idleCloseMs?: number;
  log?: (line: string) => void;
  onUnexpected?: (err: unknown, what: string) => void;
}

export interface NfsServer {
  /** MOUNT and NFS share this port: both programs are served on one listener. */
  port: number;
  mountPort: number;
  exportPath: string;
  nfs: Nfs3Program;
  mount: MountProgram;
  handles: HandleTable;
  /** Stops serving, then flushes and closes every file it had open. */
  close(): Promise<void>;
  /** Settles once close() has finished. */
  closed: Promise<void>;
}

/** Starts MOUNT v3 and NFS v3 on 127.0.0.1, on a port the OS picks. */
export async function startNfsServer(options: NfsServerOptions): Promise<NfsServer> {
  const handles = new HandleTable(options.fs);
  let nfs: Nfs3Program | undefined;
  const files = new OpenFiles(options.fs, {
    idleMs: options.idleCloseMs ?? 5_000,
    max: 64,
    onLostWrites: (err, ino) => {
      nfs?.lostWrites();
      options.onUnexpected?.(err, `flushing writes of inode ${ino} when closing it`);
    },
  });
  nfs = new Nfs3Program(options.fs, handles, files, {
    owners: options.owners,
    readonly: options.readonly,
    allowOther: options.allowOther,
    maxIo: MAX_IO,
    ...(options.onUnexpected ? { onUnexpected: options.onUnexpected } : {}),
  });
  const mount = new MountProgram(options.exportPath, nfs);
  const rpc = new RpcServer({
    programs: [mount, nfs],
    maxRecord: MAX_RECORD,
    insecure: options.insecure,
    ...(options.log ? { log: options.log } : {}),
    ...(options.onUnexpected ? { onUnexpected: options.onUnexpected } : {}),
  });
  let port: number;
  try {
    port = await rpc.listen();
  } catch (err) {
    await files.closeAll();
    throw new Error(`cannot start the NFS server on 127.0.0.1: ${(err as Error).message}`);
  }
  let closing: Promise<void> | undefined;
  let resolveClosed!: () => void;
  const closed = new Promise<void>((resolve) => (resolveClosed = resolve));
  const close = () =>
    (closing ??= (async () => {
      try {
        await rpc.close();
      } finally {
        await files.closeAll();
        resolveClosed();
      }
    })());
  return { port, mountPort: port, exportPath: options.exportPath, nfs, mount, handles, close, closed };
}
