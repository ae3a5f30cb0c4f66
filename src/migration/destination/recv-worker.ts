// multifdrecv_N: listens on its own port (Node cannot hand an accepted socket to a worker
// thread, so each channel thread accepts its own connection; the ports travel in HelloReply),
// binds the connection by handshake, then parses packets from a reused read buffer and reads
// their pages straight into guest RAM (readv; TLS: copied from the chunks it decrypts). At each
// SYNC it waits until every channel has reached the same pass.

import type net from 'node:net';
import { listenChannels } from '../transport.js';
import { parentPort } from 'node:worker_threads';
import {
  HANDSHAKE_SIZE,
  MULTIFD_MAGIC,
  PROTOCOL_VERSION,
  decodeHandshake,
  packetHeaderBytes,
} from '../protocol.js';
import { FEED_DONE, PacketParser } from './packet-parser.js';
import { STATIC_READ_BYTES, rewrapForStaticReads } from './static-read.js';
import { socketFd } from '../socket-fd.js';
import type { RecvWorkerData, RecvWorkerMessage } from './worker-data.js';
import { ChannelBarrier, RECV_STAT, channelStats } from './recv-words.js';
import { publishThreadCpu, resetThreadCpu } from '../../util/cpu-slots.js';

// Pre-spawned idle by the destination (worker start-up costs tens of ms, which would
// otherwise be spent inside the migration's setup); bound to a migration by a 'bind' message.
parentPort!.once('message', (m: { type: 'bind'; data: RecvWorkerData }) => start(m.data));

function start(d: RecvWorkerData): void {
  resetThreadCpu();
  const post = (m: RecvWorkerMessage): void => parentPort!.postMessage(m);
  const barrier = new ChannelBarrier(d.barrier, d.index, d.channels);
  const stats = channelStats(d.stats, d.index);
  const session = Buffer.from(d.session);
  const parser = new PacketParser(d.blocks, d.received, d.packetPages);
  /** An idle connection that has not sent its handshake in this time is dropped. */
  const HANDSHAKE_TIMEOUT_MS = 10_000;

  let bound: net.Socket | null = null;
  let failed = false;

  function fail(message: string): void {
    if (failed) return;
    failed = true;
    post({ type: 'error', index: d.index, message: `multifd channel ${d.index}: ${message}` });
    bound?.destroy();
  }

  /** Wait until every channel has applied pass `pass` (or the migration is aborted). */
  function barrierWait(pass: number): Promise<boolean> {
    barrier.reached(pass);
    return barrier.waitAll(pass, performance.now() + d.stallTimeoutMs, (c) =>
      fail(`channel ${c} did not reach the end of pass ${pass} within ${d.stallTimeoutMs} ms`),
    );
  }

  function publish(): void {
    stats[RECV_STAT.bytes] = parser.stats.bytes + HANDSHAKE_SIZE;
    stats[RECV_STAT.normal] = parser.stats.normal;
    stats[RECV_STAT.zero] = parser.stats.zero;
    stats[RECV_STAT.packets] = parser.stats.packets;
  }

  /** Process a chunk, pausing the socket across SYNC barriers; false when it paused. */
  function consume(socket: net.Socket, buf: Buffer, start: number, end: number): boolean {
    let pos: number;
    try {
      pos = parser.feed(buf, start, end);
    } catch (e) {
      fail((e as Error).message);
      return false;
    }
    publish();
    if (pos === FEED_DONE) return true;
    // A SYNC: hold the rest of this chunk (the read buffer is not reused while paused).
    socket.pause();
    paused = true;
    const pass = parser.syncPass;
    barrierWait(pass)
      .then((ok) => {
        publishThreadCpu(d.cpuSlots, d.cpuSlot);
        if (!ok || failed) return;
        paused = false;
        consume(socket, buf, pos, end);
        if (!paused) socket.resume();
      })
      .catch((e: Error) => fail(e.message));
    return false;
  }
  let paused = false;

  function startStreaming(socket: net.Socket, rest: Buffer): void {
    bound = socket;
    server.close();
    post({ type: 'connected', index: d.index });
    socket.on('close', () => {
      if (!barrier.aborted && !done) {
        fail(
          parser.atBoundary
            ? 'connection closed by the source'
            : 'connection closed by the source in the middle of a packet (truncated stream)',
        );
      }
    });
    if (rest.length > 0) {
      const copy = Buffer.from(rest);
      consume(socket, copy, 0, copy.length);
    }
  }
  let done = false;

  let pendingHandshakes = 0;
  const MAX_PENDING_HANDSHAKES = 8;
  const server = listenChannels(
    (socket) => {
      // One connection binds; a few may be in their handshake; any more are dropped.
      if (bound || pendingHandshakes >= MAX_PENDING_HANDSHAKES) {
        socket.destroy();
        return;
      }
      pendingHandshakes++;
      let pending = true;
      const settle = (): void => {
        if (pending) pendingHandshakes--;
        pending = false;
      };
      socket.once('close', settle);
      let head = Buffer.alloc(0);
      const timer = setTimeout(() => socket.destroy(), HANDSHAKE_TIMEOUT_MS);
      const onData = (chunk: Buffer): void => {
        head = Buffer.concat([head, chunk]);
        if (head.length < HANDSHAKE_SIZE) return;
        clearTimeout(timer);
        settle();
        socket.off('data', onData);
        socket.pause();
        const h = decodeHandshake(head.subarray(0, HANDSHAKE_SIZE));
        let reason = '';
        if (h.magic !== MULTIFD_MAGIC) reason = `bad magic ${h.magic}`;
        else if (h.version !== PROTOCOL_VERSION) reason = `unsupported version ${h.version}`;
        else if (!h.session.equals(session))
          reason = `wrong session id ${h.session.toString('hex')}`;
        else if (h.channel !== d.index)
          reason = `channel id ${h.channel} does not belong on channel ${d.index}`;
        else if (bound) reason = 'channel already bound';
        if (reason) {
          // A stray or hostile connection: drop it, keep waiting for the real one.
          post({ type: 'rejected', index: d.index, reason });
          socket.destroy();
          return;
        }
        // From now on, read into one reused buffer where the socket allows (static-read.ts).
        const moved = rewrapForStaticReads(socket, nextReadBuffer, onChunk);
        const s = moved ?? socket;
        if (moved) directFd = socketFd(moved);
        parser.prefault = directFd < 0;
        if (moved) s.on('error', (e) => fail(e.message));
        startStreaming(s, head.subarray(HANDSHAKE_SIZE));
        if (!moved) streamInto(s);
        if (!paused) s.resume();
      };
      socket.on('data', onData);
      socket.on('error', (e) => {
        if (socket === bound) fail(e.message);
      });
    },
    d.transport,
    (r) => post({ type: 'rejected', index: d.index, reason: r.reason }),
  );

  /** Feed what the socket read to the parser; false (paused) keeps `buf` until resume(). */
  function onChunk(socket: net.Socket, n: number, buf: Buffer): boolean {
    // Once the final pass is in, nothing more may reach guest RAM (the guest may be running).
    if (done) {
      fail('data after the final pass');
      return false;
    }
    if (!consume(socket, buf, 0, n)) return false;
    if (directFd >= 0 && !failed && parser.payloadLeft > 0) {
      try {
        parser.readPayload(directFd);
      } catch (e) {
        fail((e as Error).message);
        return false;
      }
      publish();
    }
    return true;
  }

  /** The 'data' path (TLS): every chunk is a new Buffer. */
  function streamInto(socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => onChunk(socket, chunk.length, chunk));
  }

  const readBuf = Buffer.allocUnsafeSlow(STATIC_READ_BYTES);
  // While packets carry normal pages, a read takes no more than a header and its offsets, and
  // the pages are read in place (parser.readPayload); a big read would copy them through here.
  const headerBuf = Buffer.allocUnsafeSlow(packetHeaderBytes(d.packetPages));
  /** the socket's descriptor once it reads into our buffers (-1: the 'data' path, TLS) */
  let directFd = -1;
  function nextReadBuffer(): Buffer {
    return directFd >= 0 && parser.expectPayload ? headerBuf : readBuf;
  }

  server.on('error', (e) => fail(`listener: ${e.message}`));
  server.listen({ host: d.host, port: 0 }, () => {
    const addr = server.address() as net.AddressInfo;
    post({ type: 'listening', index: d.index, port: addr.port });
  });

  parentPort!.on('message', (m: { type: string }) => {
    if (m.type === 'finish') {
      done = true;
      publishThreadCpu(d.cpuSlots, d.cpuSlot);
      // The source closes the channels once it has the acknowledgement; closing first would race it.
      server.close();
    }
  });
}
