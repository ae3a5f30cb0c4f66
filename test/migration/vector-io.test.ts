// Scatter-gather I/O on a multifd socket: the source's VectorWriter (writev from guest pages,
// the rest through the stream when the socket is full) and the destination parser's
// readPayload (readv into the pages a packet names). Real loopback sockets; bytes compared.

import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { createHash, randomBytes } from 'node:crypto';
import { VectorWriter } from '../../src/migration/source/vector-writer.js';
import { socketFd } from '../../src/migration/socket-fd.js';
import { PacketParser, FEED_DONE } from '../../src/migration/destination/packet-parser.js';
import { RECEIVED } from '../../src/migration/destination/received-map.js';
import { rewrapForStaticReads } from '../../src/migration/destination/static-read.js';
import { PACKET_MAGIC, PAGE_SIZE, PH, packetHeaderBytes } from '../../src/migration/protocol.js';

/** A connected loopback pair: `client` (ours) and the server's paused end. */
async function pair(): Promise<{ client: net.Socket; server: net.Socket; close: () => void }> {
  let server!: net.Socket;
  const srv = net.createServer({ pauseOnConnect: true }, (s) => (server = s));
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  const client = net.connect(port, '127.0.0.1');
  await new Promise<void>((r) => client.once('connect', r));
  while (!server) await sleep(5);
  return {
    client,
    server,
    close: () => {
      client.destroy();
      server.destroy();
      srv.close();
    },
  };
}

function sha(...parts: Uint8Array[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

/** Read everything `s` receives until `bytes` have arrived; resolves to its hash. */
function drain(s: net.Socket, bytes: number): Promise<string> {
  const h = createHash('sha256');
  let got = 0;
  return new Promise((resolve) => {
    s.on('data', (c: Buffer) => {
      h.update(c);
      got += c.length;
      if (got >= bytes) resolve(h.digest('hex'));
    });
    s.resume();
  });
}

test('VectorWriter: writev from scattered views; a full socket takes the rest through the stream, in order', async () => {
  const { client, server, close } = await pair();
  try {
    const fd = socketFd(client);
    assert.ok(fd >= 0, 'a plain TCP socket has a descriptor');
    const w = new VectorWriter(client, fd);
    // "Guest RAM": 32 MiB of distinct bytes; a batch names every other page, out of order.
    const ram = new SharedArrayBuffer(32 * 1024 * 1024);
    new Uint8Array(ram).set(randomBytes(ram.byteLength));
    const header = randomBytes(1056);
    const views: Uint8Array[] = [header];
    for (let p = ram.byteLength / PAGE_SIZE - 2; p >= 0; p -= 2) {
      views.push(new Uint8Array(ram, p * PAGE_SIZE, PAGE_SIZE));
    }
    for (const v of views) w.push(v);
    assert.equal(w.length, 1056 + 16 * 1024 * 1024);
    // Nobody reads yet: the socket buffers fill and the stream must hold the rest.
    const first = w.flush();
    assert.equal(w.length, 0, 'flush takes what was pushed');
    assert.ok(w.stats.direct > 0, 'the kernel took the start with writev');
    assert.ok(w.stats.streamed > 0, 'the rest waits in the stream');
    assert.equal(w.stats.direct + w.stats.streamed, 1056 + 16 * 1024 * 1024);
    // A second batch while the stream is busy must not overtake it: all of it is streamed.
    const tail = randomBytes(100_000);
    w.push(tail);
    const directBefore = w.stats.direct;
    const second = w.flush();
    assert.equal(w.stats.direct, directBefore, 'no writev while the stream has data queued');
    const total = 1056 + 16 * 1024 * 1024 + tail.length;
    const received = drain(server, total);
    await Promise.all([first, second]);
    assert.equal(await received, sha(...views, tail), 'every byte, in flush order');
    assert.equal(w.stats.partial, 2);
    // With room again, a batch goes out whole in one writev.
    const small = randomBytes(4096);
    w.push(small);
    const d0 = w.stats.direct;
    await w.flush();
    assert.equal(w.stats.direct - d0, 4096);
  } finally {
    close();
  }
});

test('VectorWriter: a closed peer is an error, not a hang', async () => {
  const { client, server, close } = await pair();
  try {
    const w = new VectorWriter(client, socketFd(client));
    client.on('error', () => {});
    server.resetAndDestroy();
    await sleep(50);
    let err: unknown;
    for (let i = 0; i < 50 && !err; i++) {
      w.push(randomBytes(65536));
      await w.flush().catch((e: unknown) => (err = e));
    }
    assert.match(String((err as Error)?.message), /EPIPE|ECONNRESET|closed/);
  } finally {
    close();
  }
});

/** A data packet's header and offset table for `pages` (normal pages only) of block 0. */
function packetHeader(pages: number[]): Buffer {
  const hdr = Buffer.alloc(packetHeaderBytes(pages.length));
  const h32 = new Uint32Array(hdr.buffer, hdr.byteOffset, hdr.length / 4);
  h32[PH.magic] = PACKET_MAGIC;
  h32[PH.pass] = 1;
  h32[PH.normal] = pages.length;
  h32[PH.zero] = 0;
  // u64 byte offsets: pages past 4 GiB / 4 KiB do not occur here
  pages.forEach((p, i) => {
    h32[8 + 2 * i] = (p * PAGE_SIZE) % 2 ** 32;
    h32[9 + 2 * i] = Math.floor((p * PAGE_SIZE) / 2 ** 32);
  });
  return hdr;
}

/** What `receive` saw: bytes readv put in place, and readv calls that stopped inside a packet. */
interface InPlace {
  direct: number;
  partial: number;
}

/**
 * Read `server` as a multifd channel does: the socket's own reads (into `readBuf`) go to the
 * parser, then readv takes what else has arrived of the payload. Resolves once `until` holds
 * after a read.
 */
function receive(
  server: net.Socket,
  parser: PacketParser,
  readBuf: Buffer,
  until: () => boolean,
): { done: Promise<void>; seen: InPlace } {
  const seen: InPlace = { direct: 0, partial: 0 };
  let fd = -1;
  const done = new Promise<void>((resolve, reject) => {
    const s = rewrapForStaticReads(server, readBuf, (_s, n, buf) => {
      try {
        assert.equal(parser.feed(buf, 0, n), FEED_DONE);
        while (parser.payloadLeft > 0) {
          const got = parser.readPayload(fd);
          seen.direct += got;
          if (got === 0) break; // nothing more now: the next read brings it
          if (parser.payloadLeft > 0) seen.partial++;
        }
        if (until()) resolve();
      } catch (e) {
        reject(e as Error);
      }
      return true;
    });
    assert.ok(s);
    fd = socketFd(s);
    s.resume();
  });
  return { done, seen };
}

test('readPayload: the pages of a packet are read in place, also when they arrive in pieces', async () => {
  const { client, server, close } = await pair();
  try {
    const size = 4 * 1024 * 1024;
    const ram = new SharedArrayBuffer(size + PAGE_SIZE);
    const received = new SharedArrayBuffer(size / PAGE_SIZE);
    // Block 0 starts one page into its buffer (as page-aligned blocks do).
    const parser = new PacketParser(
      [{ id: 0, name: 'pc.ram', ram, base: PAGE_SIZE, size, dirty: new SharedArrayBuffer(128) }],
      [received],
      128,
    );
    const pages = [7, 3, 1000, 512, 1, 1023];
    const hdr = packetHeader(pages);
    const payload = randomBytes(pages.length * PAGE_SIZE);
    const { done, seen } = receive(
      server,
      parser,
      Buffer.alloc(hdr.length),
      () => parser.atBoundary,
    );
    // The header, then the payload in three pieces with pauses: partial readv, then EAGAIN.
    client.write(hdr);
    for (const [a, b] of [
      [0, 5000],
      [5000, 13000],
      [13000, payload.length],
    ]) {
      await sleep(30);
      client.write(payload.subarray(a, b));
    }
    await done;
    assert.ok(
      seen.direct > 0.5 * payload.length,
      `${seen.direct} of ${payload.length} bytes read in place`,
    );
    const mem = Buffer.from(ram);
    pages.forEach((p, i) => {
      const at = PAGE_SIZE + p * PAGE_SIZE;
      assert.ok(
        mem
          .subarray(at, at + PAGE_SIZE)
          .equals(payload.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE)),
        `page ${p} holds its payload`,
      );
      assert.equal(new Uint8Array(received)[p], RECEIVED.data);
    });
    assert.equal(parser.stats.bytes, hdr.length + payload.length);
    // Nothing else was written: the untouched pages are still zero.
    assert.equal(
      mem.subarray(PAGE_SIZE + 2 * PAGE_SIZE, PAGE_SIZE + 3 * PAGE_SIZE).some((b) => b !== 0),
      false,
    );
  } finally {
    close();
  }
});

test('readPayload: packets that arrive in pieces of a few hundred to a few thousand bytes, with runs of pages across a segment boundary', async () => {
  const { client, server, close } = await pair();
  try {
    // A block of 1 GiB + 64 KiB: two segments (1 GiB each), so a run can reach past the first.
    // Only the pages written here are ever touched.
    const size = 2 ** 30 + 16 * PAGE_SIZE;
    const ram = new SharedArrayBuffer(size);
    const received = new SharedArrayBuffer(size / PAGE_SIZE);
    const parser = new PacketParser(
      [{ id: 0, name: 'pc.ram', ram, base: 0, size, dirty: new SharedArrayBuffer(128) }],
      [received],
      128,
    );
    const seg = 2 ** 18; // the first page of the second segment
    const packets = [
      [5, 6, 7, 8, 20, 22, 23, 3], // runs of 4, 1, 2, 1
      [seg - 3, seg - 2, seg - 1, seg, seg + 1, 100], // a run cut at the segment boundary
      [9, 10, 11, 12, 13, 14, 15, 16, 17, 18], // one run
      [seg + 9, 40, 42, 44], // no runs
    ];
    const payloads = packets.map((pages) => randomBytes(pages.length * PAGE_SIZE));
    const stream = Buffer.concat(packets.flatMap((pages, i) => [packetHeader(pages), payloads[i]]));
    // The socket's own reads take 64 bytes at a time (headers, and a little of a payload that
    // the parser then copies); readv takes the rest of what has arrived.
    const { done, seen } = receive(
      server,
      parser,
      Buffer.alloc(64),
      () => parser.stats.bytes === stream.length,
    );
    // One piece per turn of the event loop, so that the reader sees each on its own; the sizes
    // cut pages and headers anywhere.
    const sizes = [300, 2900, 5000, 700, 4096, 1500];
    for (let at = 0, i = 0; at < stream.length; i++) {
      const end = Math.min(at + sizes[i % sizes.length], stream.length);
      client.write(stream.subarray(at, end));
      at = end;
      await new Promise((r) => setImmediate(r));
    }
    await done;
    assert.ok(parser.atBoundary, 'the stream ends between packets');
    assert.ok(seen.partial > 10, `readv stopped inside a packet ${seen.partial} times`);
    assert.ok(
      seen.direct > 0.5 * stream.length,
      `${seen.direct} of ${stream.length} bytes read in place`,
    );
    const mem = new Uint8Array(ram);
    const recv = new Uint8Array(received);
    packets.forEach((pages, k) =>
      pages.forEach((p, i) => {
        const got = mem.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
        const want = payloads[k].subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE);
        assert.ok(Buffer.from(got).equals(want), `packet ${k}: page ${p} holds its payload`);
        assert.equal(recv[p], RECEIVED.data, `page ${p} is marked received`);
      }),
    );
    // Nothing else was written: the pages between the runs are still zero and not received.
    for (const p of [4, 19, 21, 24, 41, 43, seg - 4, seg + 2, seg + 8, seg + 10]) {
      const page = mem.subarray(p * PAGE_SIZE, (p + 1) * PAGE_SIZE);
      assert.equal(
        page.some((b) => b !== 0),
        false,
        `page ${p} is untouched`,
      );
      assert.equal(recv[p], 0, `page ${p} is not received`);
    }
  } finally {
    close();
  }
});
