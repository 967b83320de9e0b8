import { posix } from 'node:path';
import { isDir } from '../../vfs/file-type.js';
import type { Nfs3Program } from './nfs3.js';
import { AuthFlavor } from './rpc.js';
import type { CallContext, RpcProgram } from './server.js';
import { MountStatus, mountStatusOf, Nfs3Error, Nfs3Status } from './status-map.js';
import type { XdrReader, XdrWriter } from './xdr.js';

export const MOUNT_PROGRAM = 100005;
export const MOUNT_V3 = 3;

export const MountProc = { null: 0, mnt: 1, dump: 2, umnt: 3, umntall: 4, export: 5 } as const;
const PROC_NAMES = ['NULL', 'MNT', 'DUMP', 'UMNT', 'UMNTALL', 'EXPORT'];

/** dirpath is string<MNTPATHLEN>, name is string<MNTNAMLEN> (RFC 1813 appendix I). */
const MNTPATHLEN = 1024;

/**
 * The MOUNT v3 protocol (RFC 1813 appendix I) for the one export: MNT hands
 * out the handle of the export root or of a directory below it, and nothing
 * outside it; EXPORT lists it; DUMP/UMNT/UMNTALL keep the list of who
 * mounted it, which is informational only (NFS itself is stateless).
 */
export class MountProgram implements RpcProgram {
  readonly prog = MOUNT_PROGRAM;
  readonly name = 'MOUNT3';
  readonly lowVersion = MOUNT_V3;
  readonly highVersion = MOUNT_V3;
  // MNT only hands out a handle, which is useless without a reserved port on
  // the NFS program; macOS's mount_nfs asks for it as the user, from an
  // unprivileged port.
  readonly reservedPort = false;
  private readonly mounts = new Set<string>();

  constructor(
    readonly exportPath: string,
    private readonly nfs: Nfs3Program,
  ) {}

  hasProcedure(vers: number, proc: number): boolean {
    return vers === MOUNT_V3 && Number.isInteger(proc) && proc >= 0 && proc <= MountProc.export;
  }

  procedureName(proc: number): string {
    return PROC_NAMES[proc] ?? `proc ${proc}`;
  }

  async call(context: CallContext, args: XdrReader, out: XdrWriter): Promise<void> {
    switch (context.proc) {
      case MountProc.null:
        return;
      case MountProc.mnt:
        return this.mnt(context, args.string(MNTPATHLEN, 'dirpath'), out);
      case MountProc.dump:
        return this.dump(out);
      case MountProc.umnt:
        this.mounts.delete(this.mountEntry(context, args.string(MNTPATHLEN, 'dirpath')));
        return;
      case MountProc.umntall:
        for (const entry of [...this.mounts]) if (entry.startsWith(`${context.auth?.machine ?? ''}\0`)) this.mounts.delete(entry);
        return;
      case MountProc.export:
        return this.export(out);
      default:
        throw new Error(`MOUNT3 procedure ${context.proc} has no handler`);
    }
  }

  private mountEntry(context: CallContext, path: string): string {
    return `${context.auth?.machine ?? ''}\0${path}`;
  }

  /**
   * The mount-relative path of `dirpath`, or undefined when it is outside
   * the export. ".." cannot climb out: the path is normalized first and
   * must then lie at or below the export path.
   */
  relativePath(dirpath: string): string | undefined {
    if (!dirpath.startsWith('/')) return undefined;
    const normalized = posix.normalize(dirpath).replace(/(.)\/+$/, '$1');
    if (normalized === this.exportPath) return '';
    const prefix = this.exportPath === '/' ? '/' : `${this.exportPath}/`;
    return normalized.startsWith(prefix) ? normalized.slice(prefix.length) : undefined;
  }

  /**
   * MNT: dirpath → mountres3, `union switch (mountstat3 fhs_status) {
   *   case MNT3_OK: mountres3_ok { fhandle3 fhandle; int auth_flavors<>; };
   *   default: void; }`
   */
  private async mnt(context: CallContext, dirpath: string, out: XdrWriter): Promise<void> {
    const relative = this.relativePath(dirpath);
    if (relative === undefined) {
      out.u32(MountStatus.acces);
      return;
    }
    try {
      const found = await this.nfs.walk(relative);
      if (!isDir(found.attr)) {
        throw new Nfs3Error(Nfs3Status.notdir, `${dirpath} is not a directory`);
      }
      this.mounts.add(this.mountEntry(context, dirpath));
      out.u32(MountStatus.ok).opaque(found.fh).u32(1).u32(AuthFlavor.sys);
    } catch (err) {
      out.u32(mountStatusOf(err));
    }
  }

  /** DUMP → mountlist: `struct mountbody { name ml_hostname; dirpath ml_directory; mountlist ml_next; }` as an optional list. */
  private dump(out: XdrWriter): void {
    for (const entry of this.mounts) {
      const [host, path] = entry.split('\0');
      out.bool(true).string(host ?? '').string(path ?? '');
    }
    out.bool(false);
  }

  /**
   * EXPORT → exports: `struct exportnode { dirpath ex_dir; groups ex_groups; exports ex_next; }`
   * with `struct groupnode { name gr_name; groups gr_next; }`, both optional lists.
   */
  private export(out: XdrWriter): void {
    out.bool(true).string(this.exportPath);
    out.bool(true).string('127.0.0.1').bool(false);
    out.bool(false);
  }
}
