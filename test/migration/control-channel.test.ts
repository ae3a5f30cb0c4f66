// The main channel on its own, over a real loopback socket: the handshake, JSON and binary
// frames however the bytes are chunked, heartbeats that keep it alive and silence that does
// not, and a frame that breaks the rules ending it with an error that names the field.

import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { ControlChannel, type Frame } from '../../src/migration/control-channel.js';
import {
  FRAME_HEADER_SIZE,
  FrameType,
  MAIN_MAGIC,
  MAX_FRAME_PAYLOAD,
  PROTOCOL_VERSION,
  encodeBinaryFrameHeader,
  encodeFrame,
  encodeHandshake,
  type Handshake,
} from '../../src/migration/protocol.js';

/** A connected pair: `raw` writes bytes as it likes, `ctl` is the ControlChannel under test. */
async function pair(expectHandshake: boolean): Promise<{ raw: net.Socket; ctl: ControlChannel }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const raw = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  const sock = await accepted;
  server.close();
  sock.setNoDelay(true);
  raw.setNoDelay(true);
  return { raw, ctl: new ControlChannel(sock, expectHandshake) };
}

/** Write `bytes` in pieces of `size`, each its own write and its own packet. */
async function dribble(raw: net.Socket, bytes: Buffer, size: number): Promise<void> {
  for (let i = 0; i < bytes.length; i += size) {
    await new Promise<void>((r) => raw.write(bytes.subarray(i, i + size), () => r()));
    await new Promise((r) => setImmediate(r));
  }
}

function collect(ctl: ControlChannel, n: number): Promise<Frame[]> {
  const frames: Frame[] = [];
  return new Promise((resolve) => {
    ctl.onFrame = (f) => {
      frames.push(f);
      if (frames.length === n) resolve(frames);
    };
  });
}

function failure(ctl: ControlChannel): Promise<Error> {
  return new Promise((resolve) => (ctl.onError = resolve));
}

test('handshake, then JSON and binary frames, byte by byte and all at once', async () => {
  for (const size of [1, 7, 1 << 20]) {
    const { raw, ctl } = await pair(true);
    const session = randomBytes(16);
    const hs: Handshake = {
      magic: MAIN_MAGIC,
      version: PROTOCOL_VERSION,
      session,
      channel: 0xffffffff,
      channels: 2,
    };
    const seenHandshake = new Promise<Handshake>((r) => (ctl.onHandshake = r));
    const frames = collect(ctl, 3);
    const blob = randomBytes(3000);
    const bytes = Buffer.concat([
      encodeHandshake(hs),
      encodeFrame(FrameType.Hello, { a: 1, s: 'x'.repeat(100) }),
      encodeFrame(FrameType.Heartbeat, {}),
      encodeBinaryFrameHeader(FrameType.DeviceState, blob.length),
      blob,
      encodeFrame(FrameType.Complete, { finalPass: 3 }),
    ]);
    await dribble(raw, bytes, size);
    const h = await seenHandshake;
    assert.ok(h.session.equals(session));
    assert.equal(h.channels, 2);
    const [hello, device, complete] = await frames;
    assert.deepEqual(hello, { type: FrameType.Hello, payload: { a: 1, s: 'x'.repeat(100) } });
    assert.equal(device.type, FrameType.DeviceState, 'heartbeats are not frames for the user');
    assert.ok(device.data?.equals(blob));
    assert.deepEqual(complete.payload, { finalPass: 3 });
    raw.destroy();
    ctl.close();
  }
});

test('a frame that breaks the rules ends the channel with an error naming the field', async () => {
  const header = (magic: number, type: number, reserved: number, len: number): Buffer => {
    const b = Buffer.alloc(FRAME_HEADER_SIZE);
    b.writeUInt32LE(magic, 0);
    b.writeUInt16LE(type, 4);
    b.writeUInt16LE(reserved, 6);
    b.writeUInt32LE(len, 8);
    return b;
  };
  const good = encodeFrame(FrameType.Hello, {});
  const cases: [Buffer, RegExp][] = [
    [Buffer.concat([header(0x1234, 1, 0, 2), Buffer.from('{}')]), /frame magic/],
    [Buffer.concat([header(good.readUInt32LE(0), 99, 0, 2), Buffer.from('{}')]), /frame type 99/],
    [Buffer.concat([header(good.readUInt32LE(0), 1, 5, 2), Buffer.from('{}')]), /reserved/],
    [header(good.readUInt32LE(0), 1, 0, MAX_FRAME_PAYLOAD + 1), /frame length/],
    [Buffer.concat([header(good.readUInt32LE(0), 1, 0, 2), Buffer.from('[]')]), /JSON object/],
    [Buffer.concat([header(good.readUInt32LE(0), 1, 0, 3), Buffer.from('{no')]), /not valid JSON/],
  ];
  for (const [bytes, expected] of cases) {
    const { raw, ctl } = await pair(false);
    let frames = 0;
    ctl.onFrame = () => frames++;
    const err = failure(ctl);
    raw.write(Buffer.concat([good, bytes, good]));
    assert.match((await err).message, expected);
    assert.equal(frames, 1, 'the frame before counts, nothing after it');
    raw.destroy();
  }
});

test('heartbeats keep a quiet peer alive; a silent one is reported once', async () => {
  const a = await pair(false);
  // The peer: a ControlChannel too, sending heartbeats.
  const peer = new ControlChannel(a.raw, false);
  let stalls = 0;
  a.ctl.startHeartbeat(300, () => stalls++);
  peer.startHeartbeat(300, () => {});
  await sleep(900);
  assert.equal(stalls, 0, 'three timeouts long, no stall while heartbeats arrive');
  // Now the peer falls silent (its heartbeats stop; the socket stays open).
  peer.stopHeartbeat();
  let reports = 0;
  const silent = await new Promise<number>((resolve) =>
    a.ctl.startHeartbeat(300, (ms) => {
      reports++;
      resolve(ms);
    }),
  );
  assert.ok(silent >= 300, `silence of ${silent} ms reported`);
  await sleep(600);
  assert.equal(reports, 1, 'reported once, then the watchdog is off');
  a.ctl.close();
  peer.close();
});

test('onClose on the peer closing; send after close is a no-op', async () => {
  const { raw, ctl } = await pair(false);
  const closed = new Promise<void>((r) => (ctl.onClose = r));
  raw.end();
  await closed;
  ctl.send(FrameType.Heartbeat, {});
  assert.equal(ctl.sendBinary(FrameType.DeviceState, [Buffer.alloc(4)]), 0);
});
