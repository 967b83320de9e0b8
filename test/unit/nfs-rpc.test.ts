import { afterEach, describe, expect, it } from 'vitest';
import {
  AcceptStat,
  acceptedHeader,
  AuthStat,
  authErrorReply,
  decodeAuthSys,
  decodeCallBody,
  encodeAuthSys,
  encodeCall,
  frameRecord,
  progMismatchReply,
  recordMark,
  RecordDecoder,
  RecordError,
  rpcMismatchReply,
} from '../../src/backends/nfs/rpc.js';
import { type CallContext, type RpcProgram, RpcServer } from '../../src/backends/nfs/server.js';
import { XdrReader, type XdrWriter } from '../../src/backends/nfs/xdr.js';
import { ROOT_AUTH, RpcTestClient } from '../fixtures/rpc-client.js';

const hex = (buffer: Buffer) => buffer.toString('hex');
const bytes = (text: string) => Buffer.from(text.replace(/\s+/g, ''), 'hex');
const joined = (buffers: Buffer[]) => hex(Buffer.concat(buffers));

describe('RPC messages (RFC 5531), byte for byte', () => {
  it('encodes a NULL call with AUTH_NONE', () => {
    const call = encodeCall({ xid: 0x12345678, prog: 100003, vers: 3, proc: 0 });
    expect(hex(call)).toBe(
      '12345678' + // xid
        '00000000' + // CALL
        '00000002' + // rpcvers
        '000186a3' + // NFS program 100003
        '00000003' + // version 3
        '00000000' + // NULL
        '00000000' + '00000000' + // cred AUTH_NONE, empty
        '00000000' + '00000000', // verf AUTH_NONE, empty
    );
  });

  it('encodes and decodes AUTH_SYS credentials', () => {
    const auth = { stamp: 0, machine: 'host', uid: 1000, gid: 100, gids: [100, 27] };
    const body = encodeAuthSys(auth);
    expect(hex(body)).toBe('00000000' + '00000004' + '686f7374' + '000003e8' + '00000064' + '00000002' + '00000064' + '0000001b');
    expect(decodeAuthSys(new XdrReader(body))).toEqual(auth);
    const call = encodeCall({ xid: 1, prog: 100005, vers: 3, proc: 1, auth });
    const r = new XdrReader(call);
    expect([r.u32(), r.u32()]).toEqual([1, 0]);
    const header = decodeCallBody(1, r);
    expect(header).toMatchObject({ rpcvers: 2, prog: 100005, vers: 3, proc: 1, cred: { flavor: 1 }, verf: { flavor: 0 } });
    expect(header.cred.body.equals(body)).toBe(true);
  });

  it('refuses AUTH_SYS with more than 16 groups', () => {
    const many = encodeAuthSys({ stamp: 0, machine: '', uid: 0, gid: 0, gids: Array.from({ length: 17 }, (_, i) => i) });
    expect(() => decodeAuthSys(new XdrReader(many))).toThrow(/more than 16 groups/);
  });

  it('encodes every kind of reply header', () => {
    expect(joined(acceptedHeader(7, AcceptStat.success).toBuffers())).toBe('00000007 00000001 00000000 00000000 00000000 00000000'.replace(/ /g, ''));
    expect(joined(acceptedHeader(7, AcceptStat.garbageArgs).toBuffers())).toBe('000000070000000100000000000000000000000000000004');
    expect(joined(progMismatchReply(7, 3, 3).toBuffers())).toBe('000000070000000100000000000000000000000000000002' + '00000003' + '00000003');
    expect(joined(rpcMismatchReply(7).toBuffers())).toBe('00000007' + '00000001' + '00000001' + '00000000' + '00000002' + '00000002');
    expect(joined(authErrorReply(7, AuthStat.tooWeak).toBuffers())).toBe('00000007' + '00000001' + '00000001' + '00000001' + '00000005');
  });
});

describe('record marking', () => {
  it('marks a single last fragment', () => {
    expect(hex(recordMark(40))).toBe('80000028');
    expect(hex(frameRecord(bytes('aabbccdd')))).toBe('80000004aabbccdd');
  });

  it('reassembles fragments and records split anywhere in the stream', () => {
    const stream = Buffer.concat([bytes('00000002 aabb'), bytes('80000003 ccddee'), frameRecord(bytes('01020304'))]);
    for (const size of [1, 2, 3, 5, stream.length]) {
      const decoder = new RecordDecoder(1024);
      const records: Buffer[] = [];
      for (let at = 0; at < stream.length; at += size) records.push(...decoder.push(stream.subarray(at, at + size)));
      expect(records.map(hex)).toEqual(['aabbccddee', '01020304']);
      expect(decoder.partial).toBe(false);
    }
  });

  it('accepts a record of exactly the limit and refuses one byte more, before buffering it', () => {
    expect(new RecordDecoder(8).push(frameRecord(Buffer.alloc(8)))).toHaveLength(1);
    expect(() => new RecordDecoder(8).push(bytes('80000009'))).toThrow(RecordError);
    // A hostile length is refused from the header alone.
    expect(() => new RecordDecoder(1024 * 1024).push(bytes('ffffffff'))).toThrow(/at least 2147483647 bytes exceeds the limit of 1048576/);
  });

  it('counts every fragment of a record against the limit', () => {
    const decoder = new RecordDecoder(8);
    expect(decoder.push(bytes('00000006 010203040506'))).toEqual([]);
    expect(() => decoder.push(bytes('80000003'))).toThrow(/at least 9 bytes/);
  });

  it('tells a partial record from a clean boundary', () => {
    const decoder = new RecordDecoder(64);
    decoder.push(bytes('800000'));
    expect(decoder.partial).toBe(true);
  });
});

/** A program that echoes a uint32 argument, so dispatch can be tested without a filesystem. */
class EchoProgram implements RpcProgram {
  readonly prog = 400100;
  readonly name = 'ECHO';
  readonly lowVersion = 2;
  readonly highVersion = 3;
  readonly reservedPort = true;
  calls: CallContext[] = [];
  hasProcedure(vers: number, proc: number): boolean {
    return proc <= 2;
  }
  procedureName(proc: number): string {
    return `proc ${proc}`;
  }
  async call(context: CallContext, args: XdrReader, out: XdrWriter): Promise<void> {
    this.calls.push(context);
    if (context.proc === 1) out.u32(args.u32('echo value'));
    if (context.proc === 2) throw new Error('a bug');
  }
}

describe('RpcServer', () => {
  let server: RpcServer | undefined;
  const clients: RpcTestClient[] = [];
  afterEach(async () => {
    for (const client of clients.splice(0)) client.close();
    await server?.close();
    server = undefined;
  });

  async function start(insecure: boolean, program = new EchoProgram()) {
    server = new RpcServer({ programs: [program], maxRecord: 4096, insecure, onUnexpected: () => undefined });
    const port = await server.listen();
    const client = await RpcTestClient.open(port);
    clients.push(client);
    return { port, client, program };
  }

  it('listens on 127.0.0.1 only', async () => {
    await start(true);
    const address = (server as unknown as { server: import('node:net').Server }).server.address();
    expect(address).toMatchObject({ address: '127.0.0.1' });
  });

  it('answers a call with SUCCESS and the results, and passes the credentials on', async () => {
    const { client, program } = await start(true);
    const reply = await client.call(400100, 3, 1, [bytes('0000002a')], { stamp: 1, machine: 'm', uid: 501, gid: 20, gids: [20] });
    expect(reply).toMatchObject({ replyStat: 0, stat: AcceptStat.success });
    expect(reply.body.u32()).toBe(42);
    expect(program.calls[0]).toMatchObject({ vers: 3, proc: 1, auth: { uid: 501, gid: 20, machine: 'm' } });
  });

  it.each([
    ['an unknown program', 400999, 3, 0, { replyStat: 0, stat: AcceptStat.progUnavail }],
    ['an unknown version', 400100, 4, 0, { replyStat: 0, stat: AcceptStat.progMismatch, detail: [2, 3] }],
    ['an unknown procedure', 400100, 3, 9, { replyStat: 0, stat: AcceptStat.procUnavail }],
    ['truncated arguments', 400100, 3, 1, { replyStat: 0, stat: AcceptStat.garbageArgs }],
    ['a procedure that throws', 400100, 3, 2, { replyStat: 0, stat: AcceptStat.systemErr }],
  ])('answers %s with the RPC error RFC 5531 names', async (_, prog, vers, proc, expected) => {
    const { client } = await start(true);
    expect(await client.call(prog, vers, proc)).toMatchObject(expected);
  });

  it('denies other RPC versions with RPC_MISMATCH 2..2', async () => {
    const { client } = await start(true);
    const call = encodeCall({ xid: 77, prog: 400100, vers: 3, proc: 0 });
    call.writeUInt32BE(3, 8);
    client.send(frameRecord(call));
    expect(await client.reply(77)).toMatchObject({ replyStat: 1, stat: 0, detail: [2, 2] });
  });

  it('takes AUTH_NONE for NULL only: anything else is AUTH_TOOWEAK', async () => {
    const { client } = await start(true);
    expect(await client.call(400100, 3, 0, [], null)).toMatchObject({ replyStat: 0, stat: AcceptStat.success });
    expect(await client.call(400100, 3, 1, [bytes('00000001')], null)).toMatchObject({ replyStat: 1, stat: 1, detail: [AuthStat.tooWeak] });
    const gss = encodeCall({ xid: 90, prog: 400100, vers: 3, proc: 1, args: [bytes('00000001')] });
    gss.writeUInt32BE(6, 24);
    client.send(frameRecord(gss));
    expect(await client.reply(90)).toMatchObject({ replyStat: 1, stat: 1, detail: [AuthStat.tooWeak] });
  });

  it('answers a malformed AUTH_SYS body or an overlong credential with AUTH_BADCRED', async () => {
    const { client } = await start(true);
    const call = encodeCall({ xid: 5, prog: 400100, vers: 3, proc: 1, auth: ROOT_AUTH, args: [bytes('00000001')] });
    // Claim 17 groups in a body that has none.
    const truncatedBody = Buffer.from(call);
    // cred body: stamp @32, machine 'test' @36, uid @44, gid @48, gids length @52.
    truncatedBody.writeUInt32BE(17, 52);
    client.send(frameRecord(truncatedBody));
    expect(await client.reply(5)).toMatchObject({ replyStat: 1, stat: 1, detail: [AuthStat.badCred] });
    const overlong = Buffer.concat([bytes('00000006 00000000 00000002 00061ae4 00000003 00000001 00000001 00000194'), Buffer.alloc(404)]);
    client.send(frameRecord(overlong));
    expect(await client.reply(6)).toMatchObject({ replyStat: 1, stat: 1, detail: [AuthStat.badCred] });
  });

  it('requires a reserved source port for programs that ask for one, unless insecure', async () => {
    const strict = await start(false);
    expect(await strict.client.call(400100, 3, 1, [bytes('00000001')])).toMatchObject({ replyStat: 1, stat: 1, detail: [AuthStat.tooWeak] });
    // NULL stays open: clients ping before they authenticate.
    expect(await strict.client.call(400100, 3, 0)).toMatchObject({ replyStat: 0, stat: AcceptStat.success });
    if (process.getuid?.() === 0) {
      const reserved = await RpcTestClient.open(strict.port, 900 + Math.floor(Math.random() * 100));
      clients.push(reserved);
      expect(await reserved.call(400100, 3, 1, [bytes('00000001')])).toMatchObject({ replyStat: 0, stat: AcceptStat.success });
    }
  });

  it('closes a connection that announces an oversized record, and keeps serving others', async () => {
    const { port, client } = await start(true);
    client.send(bytes('8000ffff'));
    expect(await client.closedWithin(2_000)).toBe(true);
    const next = await RpcTestClient.open(port);
    clients.push(next);
    expect(await next.call(400100, 3, 0)).toMatchObject({ stat: AcceptStat.success });
  });

  it('closes a connection whose record is too short to hold a call header', async () => {
    const { client } = await start(true);
    client.send(frameRecord(bytes('00000001 00000000 00000002')));
    expect(await client.closedWithin(2_000)).toBe(true);
  });

  it('ignores reply messages and keeps the connection', async () => {
    const { client } = await start(true);
    client.send(frameRecord(bytes('00000009 00000001 00000000')));
    expect(await client.call(400100, 3, 0)).toMatchObject({ stat: AcceptStat.success });
  });

  it('answers pipelined calls on one connection', async () => {
    const { client } = await start(true);
    const replies = await Promise.all(Array.from({ length: 200 }, (_, i) => client.call(400100, 3, 1, [Buffer.from([0, 0, 0, i])])));
    expect(replies.map((reply) => reply.body.u32())).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  it('close() ends every connection and settles closed', async () => {
    const { client } = await start(true);
    await server!.close();
    await server!.closed;
    expect(await client.closedWithin(2_000)).toBe(true);
    server = undefined;
  });
});
