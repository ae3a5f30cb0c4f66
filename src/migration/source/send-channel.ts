// multifdsend_N's work (multifd-send-worker.ts binds it): owns one TCP connection, takes packets
// from its slots, has PacketBuilder lay each out in a reused staging buffer, and writes headers
// and normal pages with one writev straight from guest RAM (plain TCP; TLS copies the pages
// into staging).

import type net from 'node:net';
import { socketFd } from '../socket-fd.js';
import { VectorWriter } from './vector-writer.js';
import { connectChannel, readyEvent } from '../transport.js';
import {
  HANDSHAKE_SIZE,
  MULTIFD_MAGIC,
  PAGE_SIZE,
  PROTOCOL_VERSION,
  encodeHandshake,
  packetHeaderBytes,
} from '../protocol.js';
import { CHAN_STAT, CHAN_WORD, JOB_SYNC, MIG, SLOT, SLOTS_PER_CHANNEL } from './channel-slots.js';
import type { SendWorkerData, SourceWorkerMessage } from './worker-data.js';
import { SlotConsumer } from './slot-ring.js';
import { publishThreadCpu } from '../../util/cpu-slots.js';
import { DsaZeroCheck } from './dsa-check.js';
import { PacketBuilder } from './packet-builder.js';

/** Packets are coalesced into one write while it is smaller than this (see writeBatches). */
const COALESCE_BYTES = 64 * 1024;
/** Coalescing waits for the next packet only this long (ms): data built must not wait long. */
const COALESCE_WAIT_MS = 1;

export class SendChannel {
  private readonly slots: Int32Array;
  private readonly mig: Int32Array;
  private readonly ring: SlotConsumer;
  private readonly stats: Float64Array;
  private readonly words: Int32Array;
  /** zero-page-detection=dsa-accel: the device checks packets ahead of the one being built */
  private readonly dsa: DsaZeroCheck | null;
  private readonly builder: PacketBuilder;
  // Two staging buffers: one is built while the other's write completes. Room for one full
  // packet after COALESCE_BYTES: a batch of small packets is never cut short for fear that the
  // next one could be all normal pages.
  private readonly staging: Buffer[];
  private readonly stagingU32: Uint32Array[];
  /** staging as plain Uint8Arrays: their subarray is native, a Buffer's runs Node's constructor */
  private readonly stagingBytes: Uint8Array[];
  private readonly pending: (Promise<void> | null)[] = [null, null];
  private socket: net.Socket | null = null;
  private finished = false;
  /**
   * Plain TCP: each batch is one vector of staging ranges (headers) and views of guest pages
   * (vector-writer.ts). One view per page, as Buffer.copy makes one inside; the copy itself is
   * gone. TLS copies the pages into staging.
   */
  private vec: VectorWriter | null = null;
  /** staging bytes from here on are not in `vec` yet */
  private stagedFrom = 0;
  /** page bytes in `vec` */
  private vecPageBytes = 0;
  /** the batch being built: its staging bytes (headers; with TLS the pages too) */
  private batchLen = 0;
  /** the pass of a SYNC in the batch, or -1 */
  private batchSyncPass = -1;

  constructor(
    private readonly d: SendWorkerData,
    private readonly post: (m: SourceWorkerMessage) => void,
  ) {
    this.slots = new Int32Array(d.slots);
    this.mig = new Int32Array(d.mig);
    this.ring = new SlotConsumer(d.slots, d.mig, d.index);
    this.stats = new Float64Array(d.chanStats, d.index * CHAN_STAT.size * 8, CHAN_STAT.size);
    this.words = new Int32Array(d.chanWords, d.index * CHAN_WORD.size * 4, CHAN_WORD.size);
    this.dsa = d.accel ? new DsaZeroCheck({ ...d, accel: d.accel }, this.ring) : null;
    this.builder = new PacketBuilder(d, this.mig, this.stats, this.dsa);
    const size = COALESCE_BYTES + packetHeaderBytes(d.packetPages) + d.packetPages * PAGE_SIZE;
    this.staging = [Buffer.allocUnsafeSlow(size), Buffer.allocUnsafeSlow(size)];
    this.stagingU32 = this.staging.map((b) => new Uint32Array(b.buffer, b.byteOffset, size >>> 2));
    this.stagingBytes = this.staging.map((b) => new Uint8Array(b.buffer, b.byteOffset, size));
  }

  /** Connect to the destination's port for this channel (from HelloReply), then send. */
  connect(port: number): void {
    const socket = connectChannel(this.d.host, port, this.d.transport);
    this.socket = socket;
    socket.on('error', (e) => this.fail(e.message));
    socket.on('close', () => {
      if (Atomics.load(this.mig, MIG.abort) === 0 && !this.finished)
        this.fail('connection closed by the destination');
    });
    socket.once(readyEvent(this.d.transport), () => {
      socket.write(this.handshake());
      this.stats[CHAN_STAT.bytes] += HANDSHAKE_SIZE;
      const fd = socketFd(socket);
      if (fd >= 0) this.vec = new VectorWriter(socket, fd);
      this.post({ type: 'connected', index: this.d.index });
      this.run().catch((e: Error) => this.fail(e.message));
    });
  }

  /**
   * The migration is over: stop, end the connection, and say so ('channel-stopped'), so that
   * the source may end this thread and close the accelerator at once rather than after a grace
   * period. Requests in flight on the accelerator end first (within their deadline).
   */
  finish(): void {
    this.finished = true;
    void (this.dsa?.stop() ?? Promise.resolve()).then(() => {
      publishThreadCpu(this.d.cpuSlots, this.d.cpuSlot);
      this.socket?.end();
      this.post({ type: 'channel-stopped', index: this.d.index });
    });
  }

  private fail(message: string): void {
    this.post({ type: 'error', message: `multifd channel ${this.d.index}: ${message}` });
  }

  private handshake(): Buffer {
    return encodeHandshake({
      magic: MULTIFD_MAGIC,
      version: PROTOCOL_VERSION,
      session: Buffer.from(this.d.session),
      channel: this.d.index,
      channels: this.d.channels,
    });
  }

  /** Batches of packets, each one write, alternating between the two staging buffers. */
  private async run(): Promise<void> {
    let slot = 0;
    for (let k = 0; ; k ^= 1) {
      if (!(await this.ring.waitFull(slot))) return;
      if (this.dsa) {
        // The device checks the following packets while this one is built and written.
        this.dsa.submitAhead(slot);
        await this.dsa.pending(slot);
      }
      const p = this.pending[k];
      if (p) await p;
      slot = await this.fillBatch(slot, k);
      await this.writeBatch(k);
    }
  }

  /**
   * Coalesce every packet that is ready and fits into staging[k], from `slot` on: all-zero
   * packets are a few dozen bytes, and a syscall plus stream bookkeeping per packet would cost
   * more than their zero check. Returns the slot after the batch.
   */
  private async fillBatch(slot: number, k: number): Promise<number> {
    const ring = this.ring;
    this.stagedFrom = 0;
    this.vecPageBytes = 0;
    let len = 0;
    let syncPass = -1;
    for (;;) {
      const base = ring.base(slot);
      len = this.addPacket(base, slot, k, len);
      this.dsa?.forget(slot);
      if (this.slots[base + SLOT.flags] & JOB_SYNC) syncPass = this.slots[base + SLOT.pass];
      // The packet is laid out: hand the slot back before the write completes.
      ring.release(slot);
      slot = (slot + 1) % SLOTS_PER_CHANNEL;
      // Staging has room for any packet while the write is under COALESCE_BYTES.
      if (len + this.vecPageBytes >= COALESCE_BYTES) break;
      if (!ring.isFull(slot)) {
        // Caught up with live_migration. A write of a few small (mostly zero-page) packets
        // costs a syscall here and a read on the destination each: wait briefly for more.
        if (syncPass >= 0 || !(await ring.fillsWithin(slot, COALESCE_WAIT_MS))) break;
      }
      // A packet whose verdicts are not in yet ends the batch of writes.
      if (this.dsa?.notReady(slot)) {
        this.dsa.submitAhead(slot);
        break;
      }
    }
    this.batchLen = len;
    this.batchSyncPass = syncPass;
    return slot;
  }

  /** Lay the slot's packet out at staging[k][at]; returns the end of what staging holds. */
  private addPacket(base: number, slot: number, k: number, at: number): number {
    const end = this.builder.build(base, slot, this.stagingU32[k], at);
    if (!this.vec) return this.builder.copyPages(this.staging[k], end);
    if (this.builder.payloadBytes > 0) {
      this.pushStaged(k, end);
      this.builder.pushPages(this.vec);
      this.vecPageBytes += this.builder.payloadBytes;
    }
    return end;
  }

  private pushStaged(k: number, end: number): void {
    if (end > this.stagedFrom) this.vec!.push(this.stagingBytes[k].subarray(this.stagedFrom, end));
    this.stagedFrom = end;
  }

  /**
   * Write the batch. A SYNC's batch is waited for, then the pass is published as flushed;
   * any other write completes in the background while the next batch is built.
   */
  private async writeBatch(k: number): Promise<void> {
    const socket = this.socket!;
    let w: Promise<void>;
    if (this.vec) {
      // While the stream still writes the last batch's rest this one would queue behind it
      // whole: wait, and write it with writev instead.
      if (socket.writableLength > 0 && this.pending[k ^ 1]) await this.pending[k ^ 1];
      this.pushStaged(k, this.batchLen);
      w = this.vec.flush();
    } else {
      w = this.write(k, this.batchLen);
    }
    this.stats[CHAN_STAT.bytes] += this.batchLen + this.vecPageBytes;
    if (this.batchSyncPass >= 0) {
      await w;
      Atomics.store(this.words, CHAN_WORD.flushedPass, this.batchSyncPass);
      Atomics.notify(this.words, CHAN_WORD.flushedPass);
      publishThreadCpu(this.d.cpuSlots, this.d.cpuSlot);
      return;
    }
    const pending = w.then(() => {
      this.pending[k] = null;
    });
    // The next batch in this buffer awaits it and fails the channel if it failed. A write made
    // as the channel finishes (its socket ended under it) has no next batch: not unhandled.
    pending.catch(() => {});
    this.pending[k] = pending;
    if (socket.writableNeedDrain) await this.drained();
  }

  private write(k: number, len: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.socket!.write(this.staging[k].subarray(0, len), (err) =>
        err ? reject(err) : resolve(),
      );
    });
  }

  /** Wait for the socket to take more, or fail once the peer has not read for the timeout. */
  private drained(): Promise<void> {
    const socket = this.socket!;
    const limit = this.d.stallTimeoutMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.off('drain', done);
        reject(new Error(`destination stalled: could not write for ${limit} ms (x-stall-timeout)`));
      }, limit);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      socket.once('drain', done);
    });
  }
}
