// multifdrecv_N: listens on its own port (channel-listener.ts: Node cannot hand an accepted
// socket to a worker thread, so each channel thread accepts its own connection; the ports travel
// in HelloReply), binds the connection by handshake, then parses packets from a reused read buffer and reads
// their pages straight into guest RAM (readv; TLS: copied from the chunks it decrypts). At each
// SYNC it waits until every channel has reached the same pass. Runs on its own thread
// (recv-worker.ts).

import type net from 'node:net';
import { acceptChannel } from '../transport.js';
import { ChannelListener } from './channel-listener.js';
import {
  HANDSHAKE_SIZE,
  MULTIFD_MAGIC,
  PROTOCOL_VERSION,
  decodeHandshake,
  packetHeaderBytes,
  type Handshake,
} from '../protocol.js';
import { FEED_DONE, PacketParser } from './packet-parser.js';
import { STATIC_READ_BYTES, rewrapForStaticReads } from './static-read.js';
import { socketFd } from '../socket-fd.js';
import type { RecvWorkerData, RecvWorkerMessage } from './worker-data.js';
import { ChannelBarrier, RECV_STAT, channelStats } from './recv-words.js';
import { publishThreadCpu } from '../../util/cpu-slots.js';

/** An idle connection that has not sent its handshake in this time is dropped. */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Connections in their handshake at once, at most; more are dropped. */
const MAX_PENDING_HANDSHAKES = 8;

export class RecvChannel {
  private readonly barrier: ChannelBarrier;
  private readonly stats: Float64Array;
  private readonly session: Buffer;
  private readonly parser: PacketParser;
  private readonly listener: ChannelListener;
  private readonly readBuf = Buffer.allocUnsafeSlow(STATIC_READ_BYTES);
  /**
   * While packets carry normal pages, a read takes no more than a header and its offsets, and
   * the pages are read in place (parser.readPayload); a big read would copy them through here.
   */
  private readonly headerBuf: Buffer;
  /** the socket's descriptor once it reads into our buffers (-1: the 'data' path, TLS) */
  private directFd = -1;
  private bound: net.Socket | null = null;
  private failed = false;
  /** waiting at a SYNC barrier: the socket is paused and the read buffer held */
  private paused = false;
  /** the final pass is in: the connection may close, and no data may follow */
  private done = false;
  private pendingHandshakes = 0;

  /**
   * `listening`: the listener this thread opened as it started (a pooled thread), whose port
   * the destination already has; without one (or one on another address) it listens now and
   * says on which port.
   */
  constructor(
    private readonly d: RecvWorkerData,
    private readonly post: (m: RecvWorkerMessage) => void,
    listening: ChannelListener | null = null,
  ) {
    this.barrier = new ChannelBarrier(d.barrier, d.index, d.channels);
    this.stats = channelStats(d.stats, d.index);
    this.session = Buffer.from(d.session);
    this.parser = new PacketParser(d.blocks, d.received, d.packetPages);
    this.headerBuf = Buffer.allocUnsafeSlow(packetHeaderBytes(d.packetPages));
    if (listening && (listening.host !== d.host || listening.error || listening.port === 0)) {
      listening.close();
      listening = null;
    }
    this.listener =
      listening ??
      new ChannelListener(d.host, (port) => this.post({ type: 'listening', index: d.index, port }));
    this.listener.server.on('error', (e) => this.fail(`listener: ${e.message}`));
    this.listener.hand((socket) =>
      acceptChannel(
        socket,
        d.transport,
        (s) => this.accept(s),
        (r) => this.post({ type: 'rejected', index: d.index, reason: r.reason }),
      ),
    );
  }

  /** Every page of the final pass is in: stop listening; the source closes the connection. */
  finish(): void {
    this.done = true;
    publishThreadCpu(this.d.cpuSlots, this.d.cpuSlot);
    // The source closes the channels once it has the acknowledgement; closing first would race it.
    this.listener.close();
  }

  private fail(message: string): void {
    if (this.failed) return;
    this.failed = true;
    const index = this.d.index;
    this.post({ type: 'error', index, message: `multifd channel ${index}: ${message}` });
    this.bound?.destroy();
  }

  /** A new connection: one binds; a few may be in their handshake; any more are dropped. */
  private accept(socket: net.Socket): void {
    if (this.bound || this.pendingHandshakes >= MAX_PENDING_HANDSHAKES) {
      socket.destroy();
      return;
    }
    this.pendingHandshakes++;
    let pending = true;
    const settle = (): void => {
      if (pending) this.pendingHandshakes--;
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
      const reason = this.refusal(decodeHandshake(head.subarray(0, HANDSHAKE_SIZE)));
      if (reason) {
        // A stray or hostile connection: drop it, keep waiting for the real one.
        this.post({ type: 'rejected', index: this.d.index, reason });
        socket.destroy();
        return;
      }
      this.bind(socket, head.subarray(HANDSHAKE_SIZE));
    };
    socket.on('data', onData);
    socket.on('error', (e) => {
      if (socket === this.bound) this.fail(e.message);
    });
  }

  /** Why this handshake does not bind this channel ('' when it does). */
  private refusal(h: Handshake): string {
    if (h.magic !== MULTIFD_MAGIC) return `bad magic ${h.magic}`;
    if (h.version !== PROTOCOL_VERSION) return `unsupported version ${h.version}`;
    if (!h.session.equals(this.session)) return `wrong session id ${h.session.toString('hex')}`;
    if (h.channel !== this.d.index) {
      return `channel id ${h.channel} does not belong on channel ${this.d.index}`;
    }
    if (this.bound) return 'channel already bound';
    return '';
  }

  /** The connection is this channel's: stream its packets into RAM from here on. */
  private bind(socket: net.Socket, rest: Buffer): void {
    // From now on, read into one reused buffer where the socket allows (static-read.ts).
    const moved = rewrapForStaticReads(
      socket,
      () => this.nextReadBuffer(),
      (s, n, buf) => this.onChunk(s, n, buf),
    );
    const s = moved ?? socket;
    if (moved) this.directFd = socketFd(moved);
    this.parser.prefault = this.directFd < 0;
    if (moved) s.on('error', (e) => this.fail(e.message));
    this.bound = s;
    this.listener.close();
    this.post({ type: 'connected', index: this.d.index });
    s.on('close', () => {
      if (!this.barrier.aborted && !this.done) {
        this.fail(
          this.parser.atBoundary
            ? 'connection closed by the source'
            : 'connection closed by the source in the middle of a packet (truncated stream)',
        );
      }
    });
    if (rest.length > 0) {
      const copy = Buffer.from(rest);
      this.consume(s, copy, 0, copy.length);
    }
    // The 'data' path (TLS): every chunk is a new Buffer.
    if (!moved) s.on('data', (chunk: Buffer) => this.onChunk(s, chunk.length, chunk));
    if (!this.paused) s.resume();
  }

  private nextReadBuffer(): Buffer {
    return this.directFd >= 0 && this.parser.expectPayload ? this.headerBuf : this.readBuf;
  }

  /** Feed what the socket read to the parser; false (paused) keeps `buf` until resume(). */
  private onChunk(socket: net.Socket, n: number, buf: Buffer): boolean {
    // Once the final pass is in, nothing more may reach guest RAM (the guest may be running).
    if (this.done) {
      this.fail('data after the final pass');
      return false;
    }
    if (!this.consume(socket, buf, 0, n)) return false;
    if (this.directFd >= 0 && !this.failed && this.parser.payloadLeft > 0) {
      try {
        this.parser.readPayload(this.directFd);
      } catch (e) {
        this.fail((e as Error).message);
        return false;
      }
      this.publish();
    }
    return true;
  }

  /** Process a chunk, pausing the socket across SYNC barriers; false when it paused. */
  private consume(socket: net.Socket, buf: Buffer, start: number, end: number): boolean {
    let pos: number;
    try {
      pos = this.parser.feed(buf, start, end);
    } catch (e) {
      this.fail((e as Error).message);
      return false;
    }
    this.publish();
    if (pos === FEED_DONE) return true;
    // A SYNC: hold the rest of this chunk (the read buffer is not reused while paused).
    socket.pause();
    this.paused = true;
    this.barrierWait(this.parser.syncPass)
      .then((ok) => {
        publishThreadCpu(this.d.cpuSlots, this.d.cpuSlot);
        if (!ok || this.failed) return;
        this.paused = false;
        this.consume(socket, buf, pos, end);
        if (!this.paused) socket.resume();
      })
      .catch((e: Error) => this.fail(e.message));
    return false;
  }

  /** Wait until every channel has applied pass `pass` (or the migration is aborted). */
  private barrierWait(pass: number): Promise<boolean> {
    this.barrier.reached(pass);
    const limit = this.d.stallTimeoutMs;
    return this.barrier.waitAll(pass, performance.now() + limit, (c) =>
      this.fail(`channel ${c} did not reach the end of pass ${pass} within ${limit} ms`),
    );
  }

  private publish(): void {
    const s = this.parser.stats;
    this.stats[RECV_STAT.bytes] = s.bytes + HANDSHAKE_SIZE;
    this.stats[RECV_STAT.normal] = s.normal;
    this.stats[RECV_STAT.zero] = s.zero;
    this.stats[RECV_STAT.packets] = s.packets;
  }
}
