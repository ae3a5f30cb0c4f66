// multifdsend_N: owns one TCP connection. Takes packets from its slots, finds zero pages
// (mode multifd), builds the header in a reused staging buffer, and writes header and normal
// pages with one writev straight from guest RAM (plain TCP; TLS copies the pages into staging).

import type net from 'node:net';
import { socketFd } from '../socket-fd.js';
import { VectorWriter } from './vector-writer.js';
import { connectChannel, readyEvent } from '../transport.js';
import { parentPort } from 'node:worker_threads';
import {
  FLAG_SYNC,
  HANDSHAKE_SIZE,
  MULTIFD_MAGIC,
  PACKET_HEADER_SIZE,
  PACKET_MAGIC,
  PAGE_SIZE,
  PROTOCOL_VERSION,
  PH,
  encodeHandshake,
  offsetHi,
  offsetLo,
  packetHeaderBytes,
} from '../protocol.js';
import {
  offsetInSegment,
  segmentBytes,
  segmentOf,
  segmentViews,
  segmentWords,
} from '../../ram/layout.js';
import { classifyPages } from '../../zero/zero-check.js';
import {
  CHAN_STAT,
  CHAN_WORD,
  JOB_CLASSIFIED,
  JOB_SYNC,
  MIG,
  SLOT,
  SLOTS_PER_CHANNEL,
} from './channel-slots.js';
import type { SendWorkerCommand, SendWorkerData, SourceWorkerMessage } from './worker-data.js';
import { SlotConsumer } from './slot-ring.js';
import { publishThreadCpu, resetThreadCpu } from '../../util/cpu-slots.js';
import { setThreadNice } from '../../util/thread-priority.js';
import { DsaZeroCheck } from './dsa-check.js';

// Pooled (src/util/worker-pool.ts): bound to a migration by a 'bind' message; then 'connect'
// (the destination's port for this channel, from HelloReply) and 'finish' (SendWorkerCommand).
parentPort!.once('message', (m: SendWorkerCommand) => {
  if (m?.type === 'bind' && typeof m.data === 'object' && m.data !== null) return start(m.data);
  const error: SourceWorkerMessage = {
    type: 'error',
    message: `multifdsend: unexpected message ${JSON.stringify(m)} before 'bind'`,
  };
  parentPort!.postMessage(error);
});

function start(d: SendWorkerData): void {
  resetThreadCpu();
  // x-migration-nice: yield the CPU to the guest's vCPU on a host with no core to spare.
  if (d.threadNice > 0) setThreadNice(d.threadNice);
  const post = (m: SourceWorkerMessage): void => parentPort!.postMessage(m);
  const slots = new Int32Array(d.slots);
  const mig = new Int32Array(d.mig);
  const ring = new SlotConsumer(d.slots, d.mig, d.index);
  const stats = new Float64Array(d.chanStats, d.index * CHAN_STAT.size * 8, CHAN_STAT.size);
  const words = new Int32Array(d.chanWords, d.index * CHAN_WORD.size * 4, CHAN_WORD.size);
  const segs = d.blocks.map((b) => segmentViews(b));
  const segWords = d.blocks.map((b) => segmentWords(b));
  const segBytes = d.blocks.map((b) => segmentBytes(b));
  const pagesView = new Uint32Array(d.slots);
  const classified = new Uint32Array(d.packetPages);

  // zero-page-detection=dsa-accel: the device checks packets ahead of the one being built.
  const dsa = d.accel ? new DsaZeroCheck({ ...d, accel: d.accel }, ring) : null;

  /** Packets are coalesced into one write while it is smaller than this (see run()). */
  const COALESCE_BYTES = 64 * 1024;
  // Room for one full packet after COALESCE_BYTES: a batch of small packets is never cut short
  // for fear that the next one could be all normal pages.
  const stagingSize = COALESCE_BYTES + packetHeaderBytes(d.packetPages) + d.packetPages * PAGE_SIZE;
  const staging = [Buffer.allocUnsafeSlow(stagingSize), Buffer.allocUnsafeSlow(stagingSize)];
  const stagingU32 = staging.map((b) => new Uint32Array(b.buffer, b.byteOffset, b.length >>> 2));
  const pending: (Promise<void> | null)[] = [null, null];

  function fail(message: string): void {
    post({ type: 'error', message: `multifd channel ${d.index}: ${message}` });
  }

  // Spawned while the main channel is still being set up; connects once the port is known.
  let socket: net.Socket;
  let connecting = false;
  let finished = false;

  function connect(port: number): void {
    socket = connectChannel(d.host, port, d.transport);
    socket.on('error', (e) => fail(e.message));
    socket.on('close', () => {
      if (Atomics.load(mig, MIG.abort) === 0 && !finished)
        fail('connection closed by the destination');
    });
    socket.once(readyEvent(d.transport), () => {
      socket.write(
        encodeHandshake({
          magic: MULTIFD_MAGIC,
          version: PROTOCOL_VERSION,
          session: Buffer.from(d.session),
          channel: d.index,
          channels: d.channels,
        }),
      );
      stats[CHAN_STAT.bytes] += HANDSHAKE_SIZE;
      const fd = socketFd(socket);
      if (fd >= 0) vec = new VectorWriter(socket, fd);
      post({ type: 'connected', index: d.index });
      run().catch((e: Error) => fail(e.message));
    });
  }

  // Plain TCP: each batch is one vector of staging ranges (headers) and views of guest pages
  // (src/migration/source/vector-writer.ts). One view per page, as Buffer.copy makes one
  // inside; the copy itself is gone. TLS copies the pages into staging.
  let vec: VectorWriter | null = null;
  /** staging bytes from here on are not in `vec` yet */
  let stagedFrom = 0;
  /** page bytes in `vec` */
  let vecPageBytes = 0;

  function pushStaged(k: number, end: number): void {
    if (end > stagedFrom) vec!.push(staging[k].subarray(stagedFrom, end));
    stagedFrom = end;
  }

  function write(k: number, len: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      socket.write(staging[k].subarray(0, len), (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Coalescing waits for the next packet only this long (ms): data built must not wait long. */
  const COALESCE_WAIT_MS = 1;

  /** Wait for the socket to take more, or fail once the peer has not read for the timeout. */
  function drained(): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        socket.off('drain', done);
        reject(
          new Error(
            `destination stalled: could not write for ${d.stallTimeoutMs} ms (x-stall-timeout)`,
          ),
        );
      }, d.stallTimeoutMs);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      socket.once('drain', done);
    });
  }

  async function run(): Promise<void> {
    let slot = 0;
    let k = 0;
    for (;;) {
      let base = ring.base(slot);
      if (!(await ring.waitFull(slot))) return;
      if (dsa) {
        // The device checks the following packets while this one is built and written.
        dsa.submitAhead(slot);
        await dsa.pending(slot);
      }
      const p = pending[k];
      if (p) await p;
      stagedFrom = 0;
      vecPageBytes = 0;
      // Coalesce every packet that is ready and fits into one write: all-zero packets are ~1 KiB,
      // and a syscall plus stream bookkeeping per packet would cost more than the zero check.
      let len = 0;
      let syncPass = -1;
      for (;;) {
        len = buildPacket(base, slot, k, len);
        dsa?.forget(slot);
        if (slots[base + SLOT.flags] & JOB_SYNC) syncPass = slots[base + SLOT.pass];
        // The packet is copied out: hand the slot back before the write completes.
        ring.release(slot);
        slot = (slot + 1) % SLOTS_PER_CHANNEL;
        base = ring.base(slot);
        // Staging has room for any packet while the write is under COALESCE_BYTES.
        if (len + vecPageBytes >= COALESCE_BYTES) break;
        if (!ring.isFull(slot)) {
          // Caught up with live_migration. A write of a few small (mostly zero-page) packets
          // costs a syscall here and a read on the destination each: wait briefly for more.
          if (syncPass >= 0 || !(await ring.fillsWithin(slot, COALESCE_WAIT_MS))) break;
        }
        // A packet whose verdicts are not in yet ends the batch of writes.
        if (dsa?.notReady(slot)) {
          dsa.submitAhead(slot);
          break;
        }
      }
      const bytes = len + vecPageBytes;
      let w: Promise<void>;
      if (vec) {
        // While the stream still writes the last batch's rest this one would queue behind it
        // whole: wait, and write it with writev instead.
        if (socket.writableLength > 0 && pending[k ^ 1]) await pending[k ^ 1];
        pushStaged(k, len);
        w = vec.flush();
      } else {
        w = write(k, len);
      }
      stats[CHAN_STAT.bytes] += bytes;
      if (syncPass >= 0) {
        await w;
        Atomics.store(words, CHAN_WORD.flushedPass, syncPass);
        Atomics.notify(words, CHAN_WORD.flushedPass);
        publishThreadCpu(d.cpuSlots, d.cpuSlot);
      } else {
        const kk = k;
        pending[kk] = w.then(() => {
          pending[kk] = null;
        });
        if (socket.writableNeedDrain) await drained();
      }
      k ^= 1;
    }
  }

  /** Append the packet for the job in the slot at `base` to staging[k] at `at`; return the end. */
  function buildPacket(base: number, slot: number, k: number, at: number): number {
    const buf = staging[k];
    const hdr = stagingU32[k];
    const h = at >>> 2;
    const flags = slots[base + SLOT.flags];
    const block = slots[base + SLOT.block];
    const count = slots[base + SLOT.count];
    const pass = slots[base + SLOT.pass];
    const num = Atomics.add(mig, MIG.packetNum, 1);
    stats[CHAN_STAT.packets]++;
    hdr[h + PH.magic] = PACKET_MAGIC;
    hdr[h + PH.block] = flags & JOB_SYNC ? 0 : block;
    hdr[h + PH.pass] = pass;
    hdr[h + PH.packetNumLo] = num;
    hdr[h + PH.packetNumHi] = 0;
    if (flags & JOB_SYNC) {
      hdr[h + PH.flags] = FLAG_SYNC;
      hdr[h + PH.normal] = 0;
      hdr[h + PH.zero] = 0;
      return at + PACKET_HEADER_SIZE;
    }
    hdr[h + PH.flags] = 0;
    const pagesOff = base + SLOT.header;
    let normal: number;
    let list: Uint32Array;
    let listOff: number;
    if (flags & JOB_CLASSIFIED) {
      normal = slots[base + SLOT.normal];
      list = pagesView;
      listOff = pagesOff;
    } else if (dsa) {
      // The device's verdicts: normal pages to the front, zero pages to the back.
      const res = dsa.results(slot);
      normal = 0;
      let zeroAt = count;
      for (let i = 0; i < count; i++) {
        const page = pagesView[pagesOff + i];
        if (res[i] === 0) classified[normal++] = page;
        else classified[--zeroAt] = page;
      }
      list = classified;
      listOff = 0;
    } else {
      normal = classifyPages(
        segs[block],
        segWords[block],
        pagesView,
        pagesOff,
        count,
        classified,
        0,
      );
      list = classified;
      listOff = 0;
    }
    hdr[h + PH.normal] = normal;
    hdr[h + PH.zero] = count - normal;
    // Offset table: u64 byte offsets, normal pages first.
    let w = h + (PACKET_HEADER_SIZE >>> 2);
    for (let i = 0; i < count; i++) {
      const page = list[listOff + i];
      hdr[w++] = offsetLo(page);
      hdr[w++] = offsetHi(page);
    }
    let out = at + packetHeaderBytes(count);
    if (vec) {
      stats[CHAN_STAT.normal] += normal;
      stats[CHAN_STAT.zero] += count - normal;
      if (normal === 0) return out;
      pushStaged(k, out);
      const bytes = segBytes[block];
      for (let i = 0; i < normal; i++) {
        const page = list[listOff + i];
        const off = offsetInSegment(page);
        vec.push(bytes[segmentOf(page)].subarray(off, off + PAGE_SIZE));
      }
      vecPageBytes += normal * PAGE_SIZE;
      return out;
    }
    const bsegs = segs[block];
    for (let i = 0; i < normal; i++) {
      const page = list[listOff + i];
      const off = offsetInSegment(page);
      bsegs[segmentOf(page)].copy(buf, out, off, off + PAGE_SIZE);
      out += PAGE_SIZE;
    }
    stats[CHAN_STAT.normal] += normal;
    stats[CHAN_STAT.zero] += count - normal;
    return out;
  }

  parentPort!.on('message', (m: SendWorkerCommand) => {
    if (m?.type === 'connect' && !connecting && Number.isInteger(m.port)) {
      connecting = true;
      return connect(m.port);
    }
    if (m?.type === 'finish') {
      finished = true;
      dsa?.close();
      publishThreadCpu(d.cpuSlots, d.cpuSlot);
      socket?.end();
      return;
    }
    fail(`unexpected message ${JSON.stringify(m)} (expected 'connect' once, then 'finish')`);
  });
}
