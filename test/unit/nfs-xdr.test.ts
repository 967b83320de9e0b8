import { describe, expect, it } from 'vitest';
import { encodeSattr3, readSattr3, writeFattr, writeTime, type NfsAttr } from '../../src/backends/nfs/nfs3-xdr.js';
import { XdrError, XdrReader, XdrWriter } from '../../src/backends/nfs/xdr.js';

const hex = (buffer: Buffer) => buffer.toString('hex');
const bytes = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');

function decodeError(work: () => unknown): XdrError {
  try {
    work();
  } catch (err) {
    expect(err).toBeInstanceOf(XdrError);
    return err as XdrError;
  }
  throw new Error('expected an XdrError');
}

describe('XDR encoding (RFC 4506), byte for byte', () => {
  it.each([
    ['uint32 1', (w: XdrWriter) => w.u32(1), '00000001'],
    ['uint32 max', (w: XdrWriter) => w.u32(0xffffffff), 'ffffffff'],
    ['int32 -1', (w: XdrWriter) => w.i32(-1), 'ffffffff'],
    ['int32 -2', (w: XdrWriter) => w.i32(-2), 'fffffffe'],
    ['uint64 from bigint', (w: XdrWriter) => w.u64(0x0102030405060708n), '0102030405060708'],
    ['uint64 from number above 2^32', (w: XdrWriter) => w.u64(2 ** 40 + 5), '0000010000000005'],
    ['bool TRUE', (w: XdrWriter) => w.bool(true), '00000001'],
    ['bool FALSE', (w: XdrWriter) => w.bool(false), '00000000'],
    ['string "abc" (one byte of padding)', (w: XdrWriter) => w.string('abc'), '00000003 61626300'],
    ['string "abcd" (no padding)', (w: XdrWriter) => w.string('abcd'), '00000004 61626364'],
    ['empty string', (w: XdrWriter) => w.string(''), '00000000'],
    ['opaque<> of 5 bytes (three of padding)', (w: XdrWriter) => w.opaque(bytes('0102030405')), '00000005 0102030405000000'],
    ['opaque[6] (fixed: no length)', (w: XdrWriter) => w.fixed(bytes('aabbccddeeff')), 'aabbccddeeff0000'],
    ['UTF-8 string', (w: XdrWriter) => w.string('é'), '00000002 c3a90000'],
  ])('%s', (_, write, expected) => {
    const w = new XdrWriter();
    write(w);
    expect(hex(w.toBuffer())).toBe(expected.replace(/\s+/g, ''));
    expect(w.length).toBe(expected.replace(/\s+/g, '').length / 2);
  });

  it('refuses values its type cannot carry', () => {
    expect(() => new XdrWriter().u32(-1)).toThrow(RangeError);
    expect(() => new XdrWriter().u32(2 ** 32)).toThrow(RangeError);
    expect(() => new XdrWriter().u32(1.5)).toThrow(RangeError);
    expect(() => new XdrWriter().u64(-1n)).toThrow(RangeError);
    expect(() => new XdrWriter().u64(2n ** 64n)).toThrow(RangeError);
  });

  it('keeps large opaque data by reference and pads it separately', () => {
    const payload = Buffer.alloc(5000, 7);
    const w = new XdrWriter().u32(9).opaque(payload).u32(10);
    const buffers = w.toBuffers();
    expect(buffers).toContain(payload);
    const whole = w.toBuffer();
    expect(whole.length).toBe(4 + 4 + 5000 + 0 + 4);
    expect(hex(whole.subarray(0, 8))).toBe('0000000900001388');
    expect(whole.subarray(8, 5008).equals(payload)).toBe(true);
    expect(hex(whole.subarray(5008))).toBe('0000000a');
    const odd = new XdrWriter().opaque(Buffer.alloc(4097, 1)).toBuffer();
    expect(odd.length).toBe(4 + 4100);
    expect(hex(odd.subarray(4 + 4097))).toBe('000000');
  });

  it('grows past its scratch buffer without losing bytes', () => {
    const w = new XdrWriter();
    for (let i = 0; i < 1000; i++) w.u32(i);
    const r = new XdrReader(w.toBuffer());
    for (let i = 0; i < 1000; i++) expect(r.u32()).toBe(i);
    expect(r.remaining).toBe(0);
  });
});

describe('XDR decoding', () => {
  it('reads what the writer wrote, consuming padding', () => {
    const r = new XdrReader(bytes('00000003 61626300 00000005 0102030405000000 ffffffff 0102030405060708 00000001 aabbccdd'));
    expect(r.string(10)).toBe('abc');
    expect(hex(r.opaque(5))).toBe('0102030405');
    expect(r.i32()).toBe(-1);
    expect(r.u64()).toBe(0x0102030405060708n);
    expect(r.bool()).toBe(true);
    expect(hex(r.fixed(4))).toBe('aabbccdd');
    expect(r.remaining).toBe(0);
  });

  it('names the type, the size and the cause of a truncated item', () => {
    const err = decodeError(() => new XdrReader(bytes('000000')).u32('count3'));
    expect(err.reason).toBe('truncated');
    expect(err.message).toBe('cannot decode count3 (4 bytes): truncated, 3 bytes left at offset 0');
  });

  it('refuses an opaque whose length runs past the end, before allocating anything', () => {
    const err = decodeError(() => new XdrReader(bytes('7fffffff 0000')).opaque(0xffffffff, 'WRITE data'));
    expect(err.reason).toBe('truncated');
    expect(err.size).toBe(0x80000000);
  });

  it('refuses an opaque longer than its limit', () => {
    const err = decodeError(() => new XdrReader(bytes('00000041') ).opaque(64, 'nfs_fh3'));
    expect(err.reason).toBe('too long');
    expect(err.message).toMatch(/nfs_fh3 \(65 bytes\): too long, the limit is 64 bytes/);
  });

  it('refuses a bool that is neither TRUE nor FALSE', () => {
    expect(decodeError(() => new XdrReader(bytes('00000002')).bool('set_it')).reason).toBe('invalid');
  });

  it('refuses missing padding', () => {
    expect(decodeError(() => new XdrReader(bytes('00000003 616263')).string(10)).reason).toBe('truncated');
  });
});

describe('NFSv3 structures', () => {
  const attr: NfsAttr = {
    mode: 0o100644,
    nlink: 1,
    uid: 1000,
    gid: 100,
    size: 5,
    used: 512,
    fileid: 42,
    atimeMs: 1_000_500,
    mtimeMs: 2_000_000,
    ctimeMs: 2_000_000,
  };

  it('encodes fattr3 as the 84 bytes RFC 1813 lays out', () => {
    const w = new XdrWriter();
    writeFattr(w, attr, 0x1122334455667788n);
    expect(hex(w.toBuffer())).toBe(
      [
        '00000001', // NF3REG
        '000001a4', // 0644
        '00000001', // nlink
        '000003e8', // uid 1000
        '00000064', // gid 100
        '0000000000000005', // size
        '0000000000000200', // used
        '00000000', '00000000', // rdev
        '1122334455667788', // fsid
        '000000000000002a', // fileid 42
        '000003e8', '1dcd6500', // atime 1000 s + 500 ms
        '000007d0', '00000000', // mtime 2000 s
        '000007d0', '00000000', // ctime
      ].join(''),
    );
  });

  it('clamps times to what nfstime3 can say', () => {
    const w = new XdrWriter();
    writeTime(w, -5000);
    writeTime(w, 2 ** 33 * 1000);
    expect(hex(w.toBuffer())).toBe('00000000' + '00000000' + 'ffffffff' + '00000000');
  });

  it('decodes sattr3 with every field set, and with none', () => {
    const all = bytes(
      [
        '00000001 000001ed', // mode 0755
        '00000001 000003e8', // uid
        '00000001 00000064', // gid
        '00000001 0000000000001000', // size 4096
        '00000001', // atime: SET_TO_SERVER_TIME
        '00000002 00000064 00000000', // mtime: client time 100 s
      ].join(''),
    );
    expect(readSattr3(new XdrReader(all))).toEqual({ mode: 0o755, uid: 1000, gid: 100, size: 4096n, atime: 'now', mtime: 100_000 });
    expect(readSattr3(new XdrReader(bytes('00000000'.repeat(6))))).toEqual({});
    const w = new XdrWriter();
    encodeSattr3(w, { mode: 0o755, uid: 1000, gid: 100, size: 4096n, atime: 'now', mtime: 100_000 });
    expect(w.toBuffer().equals(all)).toBe(true);
  });

  it('refuses an unknown time_how', () => {
    expect(decodeError(() => readSattr3(new XdrReader(bytes('00000000'.repeat(4) + '00000003')))).reason).toBe('invalid');
  });
});
