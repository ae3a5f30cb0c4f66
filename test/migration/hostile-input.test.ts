// A hostile or broken source: a raw client that speaks the wire protocol (docs/protocol.md) to a
// real destination process and sends it malformed input. Every case must fail that incoming
// migration cleanly, with an error-desc that names the field and its value, leave the guest's
// RAM as a fresh all-zero guest's (nothing written outside RAM, nothing of the failed migration
// kept), and keep the destination listening: at the end a real source migrates into the same
// destination process and verifies its RAM.

import { setTimeout as sleep } from 'node:timers/promises';
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { LocalPair, type MigrationResult } from '../../src/harness/local-migration.js';
import { RECEIVED } from '../../src/migration/destination/received-map.js';
import { PacketParser } from '../../src/migration/destination/packet-parser.js';
import { allocateBlocks, pagesOf, segmentViews } from '../../src/ram/layout.js';
import {
  FRAME_HEADER_SIZE,
  FRAME_MAGIC,
  FrameType,
  HANDSHAKE_SIZE,
  MAIN_MAGIC,
  MAX_FRAME_PAYLOAD,
  MULTIFD_MAGIC,
  OFFSET_ENTRY_SIZE,
  ZERO_RANGE_SIZE,
  PACKET_HEADER_SIZE,
  PACKET_MAGIC,
  PAGE_SIZE,
  PROTOCOL_VERSION,
  ProtocolError,
  encodeBinaryFrameHeader,
  encodeFrame,
  encodeHandshake,
} from '../../src/migration/protocol.js';

const RAM = '64M';
const RAM_BYTES = 64 * 1024 * 1024;
const PACKET_PAGES = 128;
/** Guest.digest() skips all-zero 1 MiB chunks, so an all-zero guest hashes nothing. */
const EMPTY_SHA256 = createHash('sha256').digest('hex');

type Info = MigrationResult & {
  'error-desc'?: string;
  ram?: Record<string, number>;
  livemig?: Record<string, unknown>;
  'socket-address'?: { port: string }[];
};

interface Frame {
  type: number;
  payload: Record<string, unknown>;
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, noDelay: true });
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      s.on('error', () => undefined); // the destination may reset us; that is the point
      resolve(s);
    });
  });
}

function closedPromise(s: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (s.destroyed) resolve();
    else s.once('close', () => resolve());
  });
}

/** The source's end of the main channel, at the byte level. */
class RawMain {
  readonly session = randomBytes(16);
  readonly frames: Frame[] = [];
  readonly closed: Promise<void>;
  private buf = Buffer.alloc(0);
  private wake: (() => void) | undefined;
  private ended = false;

  private constructor(readonly socket: Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.buf = Buffer.concat([this.buf, chunk]);
      while (this.buf.length >= FRAME_HEADER_SIZE) {
        const len = this.buf.readUInt32LE(8);
        if (this.buf.length < FRAME_HEADER_SIZE + len) break;
        const type = this.buf.readUInt16LE(4);
        const body = this.buf.subarray(FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + len).toString();
        this.buf = this.buf.subarray(FRAME_HEADER_SIZE + len);
        this.frames.push({ type, payload: JSON.parse(body) as Record<string, unknown> });
      }
      this.wake?.();
    });
    this.closed = closedPromise(socket).then(() => {
      this.ended = true;
      this.wake?.();
    });
  }

  static async connect(port: number): Promise<RawMain> {
    return new RawMain(await open(port));
  }

  handshake(over: Partial<{ magic: number; version: number; channels: number }> = {}): void {
    this.socket.write(
      encodeHandshake({
        magic: over.magic ?? MAIN_MAGIC,
        version: over.version ?? PROTOCOL_VERSION,
        session: this.session,
        channel: 0xffffffff,
        channels: over.channels ?? 1,
      }),
    );
  }

  hello(over: Record<string, unknown> = {}): void {
    this.send(FrameType.Hello, {
      version: PROTOCOL_VERSION,
      session: this.session.toString('hex'),
      channels: 1,
      pageSize: PAGE_SIZE,
      packetPages: PACKET_PAGES,
      verify: false,
      blocks: [{ id: 0, name: 'pc.ram', size: RAM_BYTES }],
      machine: { type: 'synthetic', ramBytes: RAM_BYTES },
      ...over,
    });
  }

  send(type: FrameType, payload: Record<string, unknown>): void {
    this.socket.write(encodeFrame(type, payload));
  }

  /** The next frame of `type` from the destination (earlier frames of other types are skipped). */
  async frame(type: FrameType, timeoutMs = 5000): Promise<Frame> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const i = this.frames.findIndex((f) => f.type === type);
      if (i >= 0) return this.frames.splice(i, 1)[0];
      if (this.ended) throw new Error(`main channel closed before frame type ${type}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no frame type ${type} within ${timeoutMs} ms`);
      await Promise.race([new Promise<void>((r) => (this.wake = r)), sleep(left)]);
    }
  }

  /** Handshake, Hello, HelloReply: the destination is now waiting for the multifd channels. */
  async setup(): Promise<number[]> {
    this.handshake();
    this.hello();
    const reply = await this.frame(FrameType.HelloReply);
    const ports = reply.payload.ports as number[];
    assert.equal(ports.length, 1);
    return ports;
  }

  destroy(): void {
    this.socket.destroy();
  }
}

function multifdHandshake(session: Buffer, channel = 0, magic = MULTIFD_MAGIC): Buffer {
  return encodeHandshake({ magic, version: PROTOCOL_VERSION, session, channel, channels: 1 });
}

interface PacketSpec {
  magic?: number;
  flags?: number;
  block?: number;
  /** byte offsets of normal pages (their payload follows the offset table) */
  normal?: number[];
  /** zero pages, as ranges: [first page, page count] */
  zero?: [number, number][];
  /** header counts, if they should not match the offsets and ranges given */
  normalCount?: number;
  zeroCount?: number;
  ranges?: number;
  pass?: number;
  num?: number;
  /** the byte every normal page is filled with */
  fill?: number;
}

/** A multifd packet exactly as multifdsend_N lays it out (docs/protocol.md). */
function packet(p: PacketSpec): Buffer {
  const normal = p.normal ?? [];
  const zero = p.zero ?? [];
  const table =
    PACKET_HEADER_SIZE + OFFSET_ENTRY_SIZE * normal.length + ZERO_RANGE_SIZE * zero.length;
  const b = Buffer.alloc(table + PAGE_SIZE * normal.length);
  b.writeUInt32LE(p.magic ?? PACKET_MAGIC, 0);
  b.writeUInt16LE(p.flags ?? 0, 4);
  b.writeUInt16LE(p.ranges ?? zero.length, 6);
  b.writeUInt32LE(p.block ?? 0, 8);
  b.writeUInt32LE(p.normalCount ?? normal.length, 12);
  b.writeUInt32LE(p.zeroCount ?? zero.reduce((n, [, count]) => n + count, 0), 16);
  b.writeUInt32LE(p.pass ?? 1, 20);
  b.writeBigUInt64LE(BigInt(p.num ?? 0), 24);
  normal.forEach((o, i) => b.writeBigUInt64LE(BigInt(o), PACKET_HEADER_SIZE + 8 * i));
  zero.forEach(([first, count], i) => {
    const at = PACKET_HEADER_SIZE + OFFSET_ENTRY_SIZE * normal.length + ZERO_RANGE_SIZE * i;
    b.writeUInt32LE(first, at);
    b.writeUInt32LE(count, at + 4);
  });
  b.fill(p.fill ?? 0x5a, table);
  return b;
}

const SYNC = (pass: number): Buffer => packet({ flags: 1, pass });

describe('a destination fed malformed input', () => {
  let pair: LocalPair;
  let port = 0;
  let freshDigest = '';

  const query = (): Promise<Info> => pair.dest.qmp.execute<Info>('query-migrate');
  const digest = async (): Promise<string> =>
    (await pair.dest.qmp.execute<{ digest: string }>('x-query-ram-digest')).digest;

  /** Polls the destination's query-migrate until `pred` holds. */
  async function waitDest(pred: (i: Info) => boolean, what: string): Promise<Info> {
    const deadline = Date.now() + 5000;
    for (;;) {
      const info = await query();
      if (pred(info)) return info;
      if (Date.now() > deadline) throw new Error(`${what}: last ${JSON.stringify(info)}`);
      await sleep(10);
    }
  }

  /**
   * The destination failed this migration: it closed the main channel, reports `failed` with
   * an error-desc matching `desc`, holds the RAM of a fresh guest and still listens.
   */
  async function expectFailed(main: RawMain, desc: RegExp): Promise<void> {
    await main.closed;
    const info = await query();
    assert.equal(info.status, 'failed', JSON.stringify(info));
    assert.match(String(info['error-desc']), desc);
    assert.equal(info['socket-address']?.[0]?.port, String(port), 'still listening');
    assert.equal(await digest(), freshDigest, 'RAM is that of a fresh all-zero guest');
    const status = await pair.dest.qmp.execute<{ status: string }>('query-status');
    assert.equal(status.status, 'inmigrate', 'the destination guest has not run');
  }

  /** Main channel and one bound multifd channel, ready for packets. */
  async function bound(): Promise<{ main: RawMain; chan: Socket }> {
    const main = await RawMain.connect(port);
    const [p] = await main.setup();
    const chan = await open(p);
    chan.write(multifdHandshake(main.session));
    return { main, chan };
  }

  before(async () => {
    pair = await LocalPair.start({ ram: RAM, normalPageRatio: 0.5, workload: 'stress' });
    await pair.dest.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0' });
    const info = await query();
    port = Number(info['socket-address']?.[0]?.port);
    assert.ok(port > 0, `destination reports its port: ${JSON.stringify(info)}`);
    freshDigest = await digest();
    assert.equal(freshDigest, EMPTY_SHA256, 'a fresh destination guest is all zero');
  });

  after(async () => {
    await pair?.close();
  });

  test('bad packet magic', async () => {
    const { main, chan } = await bound();
    chan.write(packet({ magic: 0xdeadbeef, normal: [0] }));
    await expectFailed(main, /multifd channel 0: invalid packet magic 3735928559: expected/);
    chan.destroy();
  });

  test('unknown packet flags, and zero ranges in a packet without zero pages', async () => {
    let { main, chan } = await bound();
    chan.write(packet({ flags: 0x40, normal: [0] }));
    await expectFailed(main, /invalid packet flags 64: known flags are 1/);
    chan.destroy();
    ({ main, chan } = await bound());
    chan.write(packet({ ranges: 7, normal: [0] }));
    await expectFailed(main, /invalid packet zero-range count 7: must be 0 with no zero pages/);
    chan.destroy();
  });

  test('a zero range past the end of the block', async () => {
    const { main, chan } = await bound();
    chan.write(packet({ zero: [[RAM_BYTES / PAGE_SIZE - 2, 3]] }));
    await expectFailed(
      main,
      /invalid zero range page count 3: pages 16382\.\. pass the end of block 0 \(16384 pages\)/,
    );
    chan.destroy();
  });

  test('normal page count above the packet size', async () => {
    const { main, chan } = await bound();
    chan.write(packet({ normalCount: PACKET_PAGES + 1 }));
    await expectFailed(main, /invalid packet normal page count 129: limit is 128/);
    chan.destroy();
  });

  test('zero page count above what the packet has room for', async () => {
    const { main, chan } = await bound();
    chan.write(packet({ normalCount: 100, zeroCount: 29 }));
    await expectFailed(
      main,
      /invalid packet zero page count 29: limit is 28 with 100 normal pages/,
    );
    chan.destroy();
  });

  test('a data packet with no pages, and a SYNC packet that carries pages', async () => {
    let { main, chan } = await bound();
    chan.write(packet({}));
    await expectFailed(
      main,
      /invalid packet page count 0: a data packet carries at least one page/,
    );
    chan.destroy();
    ({ main, chan } = await bound());
    chan.write(packet({ flags: 1, zeroCount: 3 }));
    await expectFailed(main, /invalid SYNC packet page count 3: must be 0/);
    chan.destroy();
  });

  test('a packet of the wrong pass', async () => {
    const { main, chan } = await bound();
    chan.write(Buffer.concat([SYNC(1), packet({ pass: 1, normal: [0] })]));
    await expectFailed(main, /invalid packet pass 1: expected 2/);
    chan.destroy();
  });

  test('the destination tells the source each pass it has applied', async () => {
    const { main, chan } = await bound();
    chan.write(Buffer.concat([packet({ pass: 1, normal: [0] }), SYNC(1)]));
    const first = await main.frame(FrameType.PassApplied);
    assert.deepEqual(first.payload, { pass: 1 });
    chan.write(Buffer.concat([packet({ pass: 2, normal: [4096] }), SYNC(2)]));
    const second = await main.frame(FrameType.PassApplied);
    assert.deepEqual(second.payload, { pass: 2 });
    // A pass number that goes back ends it (and the next test starts from a fresh migration).
    chan.write(SYNC(1));
    await expectFailed(main, /invalid packet pass 1: expected 3/);
    chan.destroy();
  });

  test('unknown RAM block', async () => {
    const { main, chan } = await bound();
    chan.write(packet({ block: 5, normal: [0] }));
    await expectFailed(main, /invalid packet block id 5: known blocks are 0\.\.0/);
    chan.destroy();
  });

  test('offset out of range, after good pages that must not be kept', async () => {
    const { main, chan } = await bound();
    // A good packet first: its pages land in RAM (the digest changes) ...
    chan.write(packet({ normal: [0, 8 * PAGE_SIZE], fill: 0xab }));
    await waitDest((i) => i.ram?.normal === 2, 'two good pages applied');
    assert.notEqual(await digest(), freshDigest, 'the good pages are in RAM');
    // ... then one whose second offset is just past the end of the block.
    chan.write(packet({ normal: [PAGE_SIZE, RAM_BYTES], fill: 0xcd }));
    await expectFailed(main, /invalid page offset 67108864: outside block 0 of 67108864 bytes/);
    chan.destroy();
  });

  test('offset far out of range (high word set)', async () => {
    const { main, chan } = await bound();
    chan.write(packet({ normal: [2 ** 44] }));
    await expectFailed(main, /invalid page offset 17592186044416: outside block 0/);
    chan.destroy();
  });

  test('misaligned offset', async () => {
    const { main, chan } = await bound();
    chan.write(packet({ normal: [0, PAGE_SIZE + 1] }));
    await expectFailed(main, /invalid page offset 4097: not page-aligned/);
    chan.destroy();
  });

  test('truncated stream: the multifd connection closes in the middle of a packet', async () => {
    const { main, chan } = await bound();
    const p = packet({ normal: [0, PAGE_SIZE, 2 * PAGE_SIZE], fill: 0x77 });
    // The header, the offsets and one and a half pages, then FIN.
    chan.end(p.subarray(0, PACKET_HEADER_SIZE + 3 * OFFSET_ENTRY_SIZE + PAGE_SIZE + 2048));
    await expectFailed(main, /multifd channel 0: connection closed by the source/);
  });

  test('truncated stream: the main channel closes in the middle of a frame', async () => {
    const main = await RawMain.connect(port);
    const [p] = await main.setup();
    const chan = await open(p);
    chan.write(multifdHandshake(main.session));
    const frame = encodeFrame(FrameType.Complete, { finalPass: 1 });
    main.socket.end(frame.subarray(0, frame.length - 3));
    await main.closed;
    const info = await waitDest((i) => i.status === 'failed', 'destination fails');
    assert.match(String(info['error-desc']), /main channel closed by the source/);
    assert.equal(await digest(), freshDigest);
    chan.destroy();
  });

  test('unknown frame type on the main channel', async () => {
    const main = await RawMain.connect(port);
    main.handshake();
    const frame = encodeFrame(FrameType.Hello, {});
    frame.writeUInt16LE(99, 4);
    main.socket.write(frame);
    await expectFailed(main, /main channel: invalid frame type 99: expected 1\.\.13/);
  });

  test('a frame of a known type the source must not send', async () => {
    const main = await RawMain.connect(port);
    await main.setup();
    main.send(FrameType.HelloReply, { ports: [1] });
    await expectFailed(main, /unexpected frame type 2 on the main channel/);
  });

  test('oversized frame on the main channel', async () => {
    const main = await RawMain.connect(port);
    main.handshake();
    const header = Buffer.alloc(FRAME_HEADER_SIZE);
    header.writeUInt32LE(FRAME_MAGIC, 0);
    header.writeUInt16LE(FrameType.Hello, 4);
    header.writeUInt32LE(MAX_FRAME_PAYLOAD + 1, 8);
    main.socket.write(header); // the length alone must be refused: no 64 KiB is ever buffered
    await expectFailed(main, /main channel: invalid frame length 65537: limit is 65536/);
  });

  test('bad frame magic, and a frame that is not a JSON object', async () => {
    let main = await RawMain.connect(port);
    main.handshake();
    const frame = encodeFrame(FrameType.Hello, {});
    frame.writeUInt32LE(0x12345678, 0);
    main.socket.write(frame);
    await expectFailed(main, /main channel: invalid frame magic 305419896: expected 1280131910/);
    main = await RawMain.connect(port);
    main.handshake();
    const list = Buffer.from('[1,2]');
    const header = Buffer.alloc(FRAME_HEADER_SIZE);
    header.writeUInt32LE(FRAME_MAGIC, 0);
    header.writeUInt16LE(FrameType.Hello, 4);
    header.writeUInt32LE(list.length, 8);
    main.socket.write(Buffer.concat([header, list]));
    await expectFailed(main, /main channel: invalid frame payload 1: expected a JSON object/);
  });

  test('Hello with a RAM size that does not match the destination', async () => {
    const main = await RawMain.connect(port);
    main.handshake();
    main.hello({ blocks: [{ id: 0, name: 'pc.ram', size: 2 * RAM_BYTES }] });
    await expectFailed(
      main,
      /RAM block 0 mismatch: source pc\.ram of 134217728 bytes, destination pc\.ram of 67108864 bytes/,
    );
  });

  test('Hello with other bad fields', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ blocks: [] }, /RAM layout mismatch: source has 0 blocks, destination 1/],
      [{ packetPages: 1.5 }, /packet size 1.5 pages out of range 1\.\.1024/],
      [{ packetPages: 4096 }, /packet size 4096 pages out of range 1\.\.1024/],
      [{ pageSize: 65536 }, /page size 65536 unsupported: expected 4096/],
      [{ channels: 2 }, /Hello channels 2 does not match the handshake/],
      [{ session: '00'.repeat(16) }, /Hello session id does not match the handshake/],
      [
        { machine: undefined },
        /the source did not describe its machine \(expected a synthetic machine\)/,
      ],
      [
        { machine: { type: 'pc', ramBytes: RAM_BYTES } },
        /machine type mismatch: the source is a pc machine, this destination a synthetic machine/,
      ],
      [
        { machine: { type: 'synthetic', ramBytes: 1 } },
        /synthetic machine mismatch in ramBytes: source 1, destination 67108864/,
      ],
    ];
    for (const [over, desc] of cases) {
      const main = await RawMain.connect(port);
      main.handshake();
      main.hello(over);
      await expectFailed(main, desc);
    }
  });

  test('DeviceState frames that are malformed, or that this machine has no use for', async () => {
    const cases: [Buffer, RegExp][] = [
      [Buffer.from([1, 2]), /main channel: invalid device state 2: truncated/],
      [
        Buffer.concat([u32(1000), Buffer.from('{}')]),
        /main channel: invalid device state description length 1000: limit is 2/,
      ],
      [Buffer.concat([u32(2), Buffer.from('[]')]), /expected a JSON object/],
      [
        Buffer.concat([u32(2), Buffer.from('{}'), Buffer.alloc(16)]),
        /device state refused: invalid vCPU state/,
      ],
    ];
    for (const [payload, desc] of cases) {
      const main = await RawMain.connect(port);
      await main.setup();
      main.socket.write(
        Buffer.concat([encodeBinaryFrameHeader(FrameType.DeviceState, payload.length), payload]),
      );
      await expectFailed(main, desc);
    }
  });

  test('Complete before Hello fails the migration instead of waiting for channels', async () => {
    const main = await RawMain.connect(port);
    main.handshake();
    main.send(FrameType.Complete, {
      finalPass: 1,
      device: {
        vcpu: {
          workload: { kind: 'none', mbps: 0, startPage: 0, pages: 1 },
          position: 0,
          loops: 0,
        },
      },
    });
    const failed = await Promise.race([
      main.closed.then(() => true),
      sleep(1000).then(() => false),
    ]);
    assert.ok(failed, 'a Complete before Hello is a protocol error');
    const info = await query();
    assert.equal(info.status, 'failed');
    assert.equal(await digest(), freshDigest);
  });

  test('Hello whose blocks are not objects fails the migration with a named field', async () => {
    const main = await RawMain.connect(port);
    main.handshake();
    main.hello({ blocks: [null] });
    await main.closed;
    const info = await query();
    assert.equal(info.status, 'failed');
    assert.equal(await digest(), freshDigest);
    assert.match(String(info['error-desc']), /RAM block 0/);
  });

  test('main handshakes that are refused leave the destination as it was', async () => {
    const before = await query();
    for (const [over, reason] of [
      [{ magic: 0x11223344 }, /bad main channel magic 287454020/],
      [{ version: 1 }, /unsupported protocol version 1, this destination speaks 6/],
      [{ channels: 0 }, /invalid channel count 0: expected 1\.\.64/],
      [{ channels: 65 }, /invalid channel count 65: expected 1\.\.64/],
    ] as const) {
      const main = await RawMain.connect(port);
      main.handshake(over);
      const refusal = await main.frame(FrameType.Error);
      assert.match(String(refusal.payload.message), reason);
      await main.closed;
    }
    const afterwards = await query();
    assert.equal(afterwards.status, before.status);
    assert.equal(afterwards['error-desc'], before['error-desc']);
    assert.equal(await digest(), freshDigest);
  });

  test('a multifd connection with a wrong session id is dropped; the right one still binds', async () => {
    const main = await RawMain.connect(port);
    const [p] = await main.setup();
    // Wrong session, wrong channel id, wrong magic: each connection is dropped ...
    for (const hs of [
      multifdHandshake(randomBytes(16)),
      multifdHandshake(main.session, 3),
      multifdHandshake(main.session, 0, MAIN_MAGIC),
    ]) {
      const stray = await open(p);
      stray.write(Buffer.concat([hs, packet({ normal: [0], fill: 0xee })]));
      await closedPromise(stray);
    }
    // ... without failing the migration.
    let info = await query();
    assert.equal(info.status, 'active', JSON.stringify(info));
    assert.equal(info.ram?.normal, 0, 'nothing from the stray connections was applied');
    assert.equal(await digest(), freshDigest);
    // The right handshake still binds the channel: its page lands.
    const chan = await open(p);
    chan.write(Buffer.concat([multifdHandshake(main.session), packet({ normal: [0], fill: 1 })]));
    info = await waitDest((i) => i.ram?.normal === 1, 'the bound channel applies its page');
    assert.equal(info.status, 'active');
    assert.notEqual(await digest(), freshDigest);
    // A second connection with the right handshake is refused: the channel is taken.
    const second = await open(p).catch(() => null);
    if (second) {
      second.write(Buffer.concat([multifdHandshake(main.session), packet({ normal: [0] })]));
      await closedPromise(second);
    }
    assert.equal((await query()).status, 'active');
    // The source cancels: the destination discards what it got.
    main.send(FrameType.Cancel, { reason: 'migrate_cancel' });
    await main.closed;
    info = await query();
    assert.equal(info.status, 'cancelled');
    assert.equal(info['error-desc'], undefined);
    assert.equal(await digest(), freshDigest, 'the cancelled migration left nothing behind');
    chan.destroy();
  });

  test('after all that, a real source migrates into the same destination and verifies', async () => {
    await pair.configure(
      { multifd: true, 'x-verify-ram': true },
      {
        'multifd-channels': 2,
        'downtime-limit': 2000,
      },
    );
    const sourceDigestBefore = await pair.source.qmp.execute<{ digest: string }>(
      'x-query-ram-digest',
    );
    assert.notEqual(sourceDigestBefore.digest, EMPTY_SHA256);
    await pair.source.qmp.execute('migrate', { uri: `tcp:127.0.0.1:${port}` });
    const src = await pair.waitFinished(undefined, 50);
    assert.equal(src.status, 'completed', String(src['error-desc']));
    assert.equal((src as Info).livemig?.verify, 'ok', 'destination RAM digest equals the source');
    const dst = await waitDest((i) => i.status === 'completed', 'destination completes');
    assert.equal(dst['error-desc'], undefined);
    const run = await pair.dest.qmp.execute<{ status: string }>('query-status');
    assert.equal(run.status, 'running');
    // The threads that did the work, as query-migrationthreads lists them, with their CPU time.
    type Threads = { name: string; 'thread-id': number; 'cpu-ms'?: number }[];
    const names = async (side: 'source' | 'dest'): Promise<string[]> => {
      const threads = await pair[side].qmp.execute<Threads>('query-migrationthreads');
      for (const t of threads) {
        assert.ok(Number.isInteger(t['thread-id']), JSON.stringify(t));
        assert.ok(typeof t['cpu-ms'] === 'number' && t['cpu-ms'] >= 0, JSON.stringify(t));
      }
      return threads.map((t) => t.name);
    };
    const srcThreads = await names('source');
    for (const n of ['live_migration', 'multifdsend_0', 'multifdsend_1']) {
      assert.ok(srcThreads.includes(n), `source lists ${n}: ${srcThreads.join(', ')}`);
    }
    const dstThreads = await names('dest');
    for (const n of ['multifdrecv_0', 'multifdrecv_1']) {
      assert.ok(dstThreads.includes(n), `destination lists ${n}: ${dstThreads.join(', ')}`);
    }
  });
});

test('a destination that a source tells "verified" before completion does not complete', async () => {
  const pair = await LocalPair.start({ ram: '16M', workload: 'none' });
  try {
    await pair.dest.qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0' });
    const info = await pair.dest.qmp.execute<Info>('query-migrate');
    const main = await RawMain.connect(Number(info['socket-address']?.[0]?.port));
    main.handshake();
    main.hello({
      blocks: [{ id: 0, name: 'pc.ram', size: 16 * 1024 * 1024 }],
      machine: { type: 'synthetic', ramBytes: 16 * 1024 * 1024 },
    });
    await main.frame(FrameType.HelloReply);
    main.send(FrameType.VerifyResult, { ok: true });
    await sleep(200);
    const after = await pair.dest.qmp.execute<Info>('query-migrate');
    const run = await pair.dest.qmp.execute<{ status: string }>('query-status');
    assert.notEqual(after.status, 'completed', 'no Complete, no Digest: it cannot be complete');
    assert.equal(run.status, 'inmigrate', 'the guest must not run on a half-migrated RAM');
    main.destroy();
  } finally {
    await pair.close();
  }
});

// In process: the parser refuses a packet before any of it touches RAM, wherever the bad field
// is, so even pages listed before the bad offset are not written.
test('PacketParser checks the whole offset table before it writes a page', () => {
  const blocks = allocateBlocks(1024 * 1024);
  const received = blocks.map((b) => new SharedArrayBuffer(pagesOf(b.size)));
  const ram = segmentViews(blocks[0])[0];
  const whole = new Uint8Array(blocks[0].ram);
  const recv = new Uint8Array(received[0]);
  const bad: [PacketSpec, RegExp][] = [
    [{ normal: [0, 1024 * 1024] }, /invalid page offset 1048576: outside block 0/],
    [{ normal: [0, 4 * PAGE_SIZE, PAGE_SIZE + 8] }, /invalid page offset 4104/],
    [{ normal: [0], zero: [[1, 1]], zeroCount: PACKET_PAGES }, /zero page count 128/],
    // Zero ranges, each after a good range and a good normal page that must not be applied:
    // out of the block, past its end, past 2^32, empty, and not the header's zero count.
    [
      {
        normal: [0],
        zero: [
          [1, 2],
          [256, 1],
        ],
      },
      /invalid zero range first page 256: outside block 0 of 256 pages/,
    ],
    [
      {
        normal: [0],
        zero: [
          [1, 2],
          [250, 7],
        ],
      },
      /invalid zero range page count 7: pages 250\.\. pass the end of block 0 \(256 pages\)/,
    ],
    [
      {
        normal: [0],
        zero: [
          [1, 2],
          [255, 0xffffffff],
        ],
        zeroCount: 3,
      },
      /invalid zero range page count 4294967295/,
    ],
    [
      {
        normal: [0],
        zero: [
          [1, 2],
          [5, 0],
        ],
      },
      /invalid zero range page count 0: a range holds at least one page/,
    ],
    [
      {
        normal: [0],
        zero: [
          [1, 2],
          [5, 1],
        ],
        zeroCount: 4,
      },
      /invalid zero range total 3: the header says 4 zero pages/,
    ],
    [
      { normal: [0], zero: [[1, 2]], ranges: 3 },
      /invalid packet zero-range count 3: must be 1\.\.2 for 2 zero pages/,
    ],
    [
      { normal: [0], zero: [], zeroCount: 2 },
      /invalid packet zero-range count 0: must be 1\.\.2 for 2 zero pages/,
    ],
    [{ flags: 1, ranges: 1 }, /invalid SYNC packet zero-range count 1: must be 0/],
  ];
  for (const [spec, desc] of bad) {
    const parser = new PacketParser(blocks, received, PACKET_PAGES);
    const p = packet({ ...spec, fill: 0xff });
    // Byte by byte, the worst chunking a socket can deliver.
    assert.throws(
      () => {
        for (let i = 0; i < p.length; i++) parser.feed(p, i, i + 1);
      },
      (e: unknown) => e instanceof ProtocolError && desc.test(e.message),
    );
    assert.ok(
      whole.every((b) => b === 0),
      'no byte of RAM (or of the padding around it) was written',
    );
    assert.ok(
      recv.every((b) => b === 0),
      'no page was marked received',
    );
  }
  // And a good packet split anywhere lands exactly where it says.
  const parser = new PacketParser(blocks, received, PACKET_PAGES);
  const good = packet({ normal: [3 * PAGE_SIZE], zero: [[5, 1]], fill: 0x42 });
  const mid = PACKET_HEADER_SIZE + 5;
  assert.equal(parser.feed(good, 0, mid), -1);
  assert.equal(parser.feed(good, mid, good.length), -1);
  assert.ok(parser.atBoundary);
  assert.ok(ram.subarray(3 * PAGE_SIZE, 4 * PAGE_SIZE).every((b) => b === 0x42));
  assert.equal(ram.indexOf(0x42), 3 * PAGE_SIZE);
  assert.equal(recv[3], RECEIVED.data, 'a normal page is marked written');
  assert.equal(recv[5], RECEIVED.zero, 'a zero page is marked received without being written');
  assert.equal(HANDSHAKE_SIZE, 64);
  // A zero range over pages 2..6 of which page 3 holds data: page 3 is cleared (and marked
  // written, so that a machine takes the change), the others are only marked.
  assert.equal(parser.feed(packet({ zero: [[2, 5]] }), 0, PACKET_HEADER_SIZE + 8), -1);
  assert.ok(
    ram.subarray(3 * PAGE_SIZE, 4 * PAGE_SIZE).every((b) => b === 0),
    'page 3 cleared',
  );
  assert.deepEqual([...recv.subarray(1, 8)], [0, 1, 2, 1, 1, 1, 0]);
  assert.equal(parser.stats.zero, 6, 'zero pages are counted as pages, not as ranges');
});

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n, 0);
  return b;
}
