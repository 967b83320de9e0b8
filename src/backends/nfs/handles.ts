import { randomBytes } from 'node:crypto';
import { ROOT_INO, type RemoteFs } from '../../vfs/remote-fs.js';
import { Nfs3Error, Nfs3Status } from './status-map.js';

/** nfs_fh3 is opaque<64> (RFC 1813 section 2.5). */
export const NFS3_FHSIZE = 64;
const HANDLE_BYTES = 16;

/**
 * File handles: opaque to clients, stable for the life of the server, and
 * resolved to RemoteFs inodes.
 *
 * Layout (16 bytes): an 8-byte random id of this server instance, then the
 * RemoteFs ino as a big-endian uint64. A handle of another instance (an
 * earlier tmount of the same mountpoint) is stale rather than aliasing an
 * unrelated file.
 *
 * Lifetime: NFS has no FORGET, so each ino handed out holds exactly one
 * RemoteFs lookup from then on. The lookup is given back when the name is
 * removed here (REMOVE, RMDIR, RENAME over it): the handle is stale from
 * then on, as NFS defines it. Memory thus grows with the number of distinct
 * live files a client has seen during the mount: one inode record each, the
 * same bound a kernel client's own inode cache has.
 */
export class HandleTable {
  readonly instance: Buffer;
  private readonly held = new Set<number>();

  constructor(
    private readonly fs: RemoteFs,
    instance: Buffer = randomBytes(8),
  ) {
    if (instance.length !== 8) throw new RangeError(`server instance id must be 8 bytes, got ${instance.length}`);
    this.instance = instance;
  }

  /** The handle of the export root, whose lookup RemoteFs holds itself. */
  get root(): Buffer {
    return this.encode(ROOT_INO);
  }

  private encode(ino: number): Buffer {
    const fh = Buffer.allocUnsafe(HANDLE_BYTES);
    this.instance.copy(fh, 0);
    fh.writeBigUInt64BE(BigInt(ino), 8);
    return fh;
  }

  /**
   * The handle for an ino RemoteFs has just counted one more lookup for
   * (lookup, create, mkdir, symlink, link, remember): the first one is kept,
   * any further one is given straight back.
   */
  handOut(ino: number): Buffer {
    if (ino !== ROOT_INO) {
      if (this.held.has(ino)) this.fs.forget(ino, 1);
      else this.held.add(ino);
    }
    return this.encode(ino);
  }

  /** The handle of the root or of an ino already handed out. */
  encodeHeld(ino: number): Buffer {
    if (ino !== ROOT_INO && !this.held.has(ino)) throw new Error(`inode ${ino} has no handle yet: it must be handed out after a lookup`);
    return this.encode(ino);
  }

  /** The name of `ino` is gone: its handle goes stale and its lookup is given back. */
  drop(ino: number): void {
    if (!this.held.delete(ino)) return;
    this.fs.forget(ino, 1);
  }

  get heldCount(): number {
    return this.held.size;
  }

  /** The ino of a live handle; NFS3ERR_BADHANDLE for a malformed one, NFS3ERR_STALE for one that no longer names a file. */
  resolve(fh: Buffer): number {
    if (fh.length !== HANDLE_BYTES) throw new Nfs3Error(Nfs3Status.badhandle, `file handle of ${fh.length} bytes, expected ${HANDLE_BYTES}`);
    if (!fh.subarray(0, 8).equals(this.instance)) throw new Nfs3Error(Nfs3Status.stale, 'file handle of an earlier server');
    const big = fh.readBigUInt64BE(8);
    if (big > BigInt(Number.MAX_SAFE_INTEGER)) throw new Nfs3Error(Nfs3Status.badhandle, 'file handle with an impossible inode number');
    const ino = Number(big);
    const node = this.fs.inodes.get(ino);
    if (!node || node.unlinked || (ino !== ROOT_INO && !this.held.has(ino))) {
      throw new Nfs3Error(Nfs3Status.stale, `file handle of inode ${ino}, which no longer exists`);
    }
    return ino;
  }
}
