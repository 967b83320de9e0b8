/**
 * XDR (RFC 4506): every item is big-endian and a multiple of 4 bytes long;
 * variable-length opaque data and strings carry a 4-byte length and are
 * zero-padded to the next multiple of 4.
 */

/** A decode failure: the RPC layer answers it with GARBAGE_ARGS (or drops the connection). */
export class XdrError extends Error {
  constructor(
    readonly type: string,
    readonly size: number,
    readonly reason: 'truncated' | 'too long' | 'invalid',
    cause: string,
  ) {
    super(`cannot decode ${type} (${size} bytes): ${reason}, ${cause}`);
    this.name = 'XdrError';
  }
}

/** Arithmetic, not bitwise: lengths up to 2^32 - 1 must not wrap to negative 32-bit values. */
export const pad4 = (length: number): number => length + ((4 - (length % 4)) % 4);

export class XdrReader {
  private offset = 0;

  constructor(private readonly buf: Buffer) {}

  get position(): number {
    return this.offset;
  }

  get remaining(): number {
    return this.buf.length - this.offset;
  }

  private need(type: string, bytes: number): void {
    if (bytes > this.remaining) {
      throw new XdrError(type, bytes, 'truncated', `${this.remaining} bytes left at offset ${this.offset}`);
    }
  }

  u32(type = 'uint32'): number {
    this.need(type, 4);
    const value = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  i32(type = 'int32'): number {
    this.need(type, 4);
    const value = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return value;
  }

  u64(type = 'uint64'): bigint {
    this.need(type, 8);
    const value = this.buf.readBigUInt64BE(this.offset);
    this.offset += 8;
    return value;
  }

  /** bool is an enum of exactly FALSE (0) and TRUE (1). */
  bool(type = 'bool'): boolean {
    const value = this.u32(type);
    if (value > 1) throw new XdrError(type, 4, 'invalid', `${value} is neither TRUE nor FALSE`);
    return value === 1;
  }

  /** opaque[n]: exactly n bytes plus padding. The result is a view into the record. */
  fixed(length: number, type = 'opaque'): Buffer {
    this.need(type, pad4(length));
    const value = this.buf.subarray(this.offset, this.offset + length);
    this.offset += pad4(length);
    return value;
  }

  /** opaque<max>: a length, then that many bytes plus padding. */
  opaque(max: number, type = 'opaque'): Buffer {
    const length = this.u32(`${type} length`);
    if (length > max) throw new XdrError(type, length, 'too long', `the limit is ${max} bytes`);
    return this.fixed(length, type);
  }

  string(max: number, type = 'string'): string {
    return this.opaque(max, type).toString('utf8');
  }
}

const SCRATCH = 512;
/** Opaque data at least this long is referenced, not copied (READ replies carry up to 1 MiB). */
const BY_REFERENCE = 4096;
const ZEROS = Buffer.alloc(4);

/**
 * Builds an XDR message as a list of buffers: small items go into a scratch
 * buffer, large opaque payloads are kept by reference so a READ reply's data
 * is copied once, into the socket.
 */
export class XdrWriter {
  private readonly chunks: Buffer[] = [];
  private scratch = Buffer.allocUnsafe(SCRATCH);
  private used = 0;
  private flushed = 0;

  get length(): number {
    return this.flushed + this.used;
  }

  private room(bytes: number): void {
    if (this.used + bytes <= this.scratch.length) return;
    this.flush();
    if (bytes > this.scratch.length) this.scratch = Buffer.allocUnsafe(Math.max(bytes, SCRATCH));
  }

  private flush(): void {
    if (this.used === 0) return;
    this.chunks.push(this.scratch.subarray(0, this.used));
    this.flushed += this.used;
    this.scratch = Buffer.allocUnsafe(SCRATCH);
    this.used = 0;
  }

  u32(value: number): this {
    if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) throw new RangeError(`uint32 out of range: ${value}`);
    this.room(4);
    this.scratch.writeUInt32BE(value, this.used);
    this.used += 4;
    return this;
  }

  i32(value: number): this {
    this.room(4);
    this.scratch.writeInt32BE(value, this.used);
    this.used += 4;
    return this;
  }

  u64(value: bigint | number): this {
    const big = typeof value === 'bigint' ? value : BigInt(value);
    if (big < 0n || big > 0xffffffffffffffffn) throw new RangeError(`uint64 out of range: ${value}`);
    this.room(8);
    this.scratch.writeBigUInt64BE(big, this.used);
    this.used += 8;
    return this;
  }

  bool(value: boolean): this {
    return this.u32(value ? 1 : 0);
  }

  /** opaque[n]: the bytes and their padding, no length. */
  fixed(data: Buffer): this {
    const padding = pad4(data.length) - data.length;
    if (data.length >= BY_REFERENCE) {
      this.flush();
      this.chunks.push(data);
      this.flushed += data.length;
    } else {
      this.room(data.length);
      data.copy(this.scratch, this.used);
      this.used += data.length;
    }
    if (padding > 0) {
      this.room(padding);
      ZEROS.copy(this.scratch, this.used, 0, padding);
      this.used += padding;
    }
    return this;
  }

  opaque(data: Buffer): this {
    this.u32(data.length);
    return this.fixed(data);
  }

  string(value: string): this {
    return this.opaque(Buffer.from(value, 'utf8'));
  }

  /** Appends another message's buffers as they are. */
  append(buffers: readonly Buffer[]): this {
    this.flush();
    for (const buffer of buffers) {
      this.chunks.push(buffer);
      this.flushed += buffer.length;
    }
    return this;
  }

  toBuffers(): Buffer[] {
    this.flush();
    return [...this.chunks];
  }

  toBuffer(): Buffer {
    const buffers = this.toBuffers();
    return buffers.length === 1 ? buffers[0]! : Buffer.concat(buffers, this.length);
  }
}
