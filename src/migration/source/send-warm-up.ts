// The warm-up of a multifdsend_N thread started ahead (a WorkerPool's), before it is bound to a
// migration (as dsa/emu/engine-warm-up.ts warms the emulated DSA's engines).
//
// V8 compiles a channel's per-packet code (fillBatch, PacketBuilder.build, the zero check, the
// slot ring) only after it has run a while, on its background threads: ~100 ms of TurboFan for
// the two channels of an all-zero 4 GiB guest (--trace-opt), inside a migration of ~190 ms on a
// 2-core host, with the first packets interpreted meanwhile. A SYNC, the first of which comes at
// the end of pass 1, then threw some of that code away again ("insufficient type feedback").
// QEMU's threads run compiled code from their first packet. So a pooled channel, right after it
// starts, sends a small private guest's packets through the real SendChannel to a loopback
// sink in its own thread: pass 1's runs of consecutive pages (all zero, and with normal pages),
// later passes' dirty pages, the legacy mode's sorted ones, and a SYNC after each pass. Being
// bound stops it at the next packet, and so does any migration of the process starting
// (src/util/warm-up-gate.ts): a migration neither waits for it nor shares the cores with it.
// Then, given an accelerator (src/machine/channel-warm-up.ts), the same again with the
// emulated DSA checking the packets. Both together cost a source process ~1.2 s of CPU at its
// start, most of it in V8's compiler threads (docs/benchmarks.md, 20:00 UTC).

import net from 'node:net';
import { DEFAULT_BLOCK_SIZE, allocateBlocks, type RamBlockDesc } from '../../ram/layout.js';
import { createCpuSlots } from '../../util/cpu-slots.js';
import { PAGE_SIZE } from '../protocol.js';
import {
  CHAN_STAT,
  CHAN_WORD,
  JOB_CLASSIFIED,
  JOB_SYNC,
  MIG,
  SLOT,
  channelDepth,
  createSlots,
} from './channel-slots.js';
import { SendChannel } from './send-channel.js';
import { SlotProducer } from './slot-ring.js';
import type { SendWorkerData, SourceWorkerMessage } from './worker-data.js';
import type { AccelHandle } from '../../accel/driver.js';
import { warmUpsPaused } from '../../util/warm-up-gate.js';

/**
 * The private guest: 4 MiB at the top of each of two 4 GiB RAM blocks, its first half zero and
 * every eighth page of its second half not. The blocks are a default guest's (the largest), but
 * only the pages written take memory. Their offsets pass 2^31, where V8's small integers end:
 * code that has only seen small offsets (the emulated DSA's address translation) is thrown away
 * when a migration brings big ones. Every four jobs go to the other block: zero runs join within
 * a block, and the zero check looks up each block's WebAssembly instance often (branches V8
 * must have seen run, for the same reason).
 */
const GUEST_PAGES = 1024;
const BLOCK_BYTES = DEFAULT_BLOCK_SIZE;
/** The private guest's first page in each block. */
const FIRST_PAGE = BLOCK_BYTES / PAGE_SIZE - GUEST_PAGES;
/**
 * Small packets: V8 optimizes a function after it has run a number of bytecodes (~4,000 packets
 * for PacketBuilder.build), and the zero check of a default packet (512 KiB) would make them
 * cost ~25 us each.
 */
const PACKET_PAGES = 16;
/** The packet size an accelerator opened for the warm-up must take (its maxPages). */
export const WARM_UP_PACKET_PAGES = PACKET_PAGES;
/** Passes of the private guest: enough for V8 to optimize the channel's code (measured). */
const PASSES = 80;

/** What warmUpSendChannel did: packets handed to the channel, and what the channel counted. */
export interface SendWarmUp {
  packets: number;
  /** pages the channel sent as normal pages and as zero pages */
  normal: number;
  zero: number;
  /** it ended early: bound, or the channel failed */
  stopped: boolean;
}

/**
 * Send the private guest's packets through a SendChannel to a loopback sink until `PASSES`
 * passes are done or `stop()` says the thread was bound. With `accel` (zero-page-detection=
 * dsa-accel: the accelerator src/machine/channel-warm-up.ts opened) the device checks them.
 * Never throws: a warm-up that fails only leaves the code to be compiled inside the migration.
 */
export async function warmUpSendChannel(
  stop: () => boolean,
  accel?: AccelHandle,
): Promise<SendWarmUp> {
  let packets = 0;
  const sink = net.createServer((s) => s.on('error', () => {}).resume());
  const d = warmUpData(accel);
  const mig = new Int32Array(d.mig);
  let channel: SendChannel | null = null;
  let failed = false;
  let connected = (): void => {};
  let channelStopped = (): void => {};
  const post = (m: SourceWorkerMessage): void => {
    if (m.type === 'error') failed = true;
    if (m.type === 'connected' || m.type === 'error') connected();
    if (m.type === 'channel-stopped') channelStopped();
  };
  try {
    const port = await listen(sink);
    channel = new SendChannel(d, post);
    await new Promise<void>((resolve) => {
      connected = resolve;
      channel!.connect(port);
    });
    const producer = new SlotProducer(d.slots, d.mig, 1, channelDepth(d.mode));
    const slots = new Int32Array(d.slots);
    const pages = new Uint32Array(d.slots);
    const flushed = new Int32Array(d.chanWords);
    /**
     * A free slot. As SlotProducer.acquire waits, but without blocking this thread (the channel
     * runs in it): the channel's release has a branch for waking the producer, which V8 must
     * have seen run.
     */
    const acquire = async (): Promise<number> => {
      for (;;) {
        if (failed || stop() || warmUpsPaused()) return -1;
        const seq = Atomics.load(mig, MIG.freed);
        const base = producer.tryAcquire();
        if (base >= 0) return base;
        producer.askWake(seq);
        const r = Atomics.waitAsync(mig, MIG.freed, seq, 50);
        if (r.async) await r.value;
        producer.clearWake();
      }
    };
    for (let pass = 1; pass <= PASSES; pass++) {
      for (const job of passJobs(pass)) {
        const base = await acquire();
        if (base < 0) return outcome(d, packets, true);
        slots[base + SLOT.block] = job.block;
        slots[base + SLOT.pass] = pass;
        slots[base + SLOT.count] = job.pages.length;
        slots[base + SLOT.normal] = job.normal;
        slots[base + SLOT.flags] = job.flags;
        pages.set(job.pages, base + SLOT.header);
        producer.publish(base);
        packets++;
      }
      // As live_migration does: a SYNC ends the pass, and the next waits until it is written.
      const base = await acquire();
      if (base < 0) return outcome(d, packets, true);
      slots[base + SLOT.flags] = JOB_SYNC;
      slots[base + SLOT.pass] = pass;
      slots[base + SLOT.count] = 0;
      producer.publish(base);
      const at = CHAN_WORD.flushedPass;
      while (Atomics.load(flushed, at) < pass) {
        if (failed || stop() || warmUpsPaused()) return outcome(d, packets, true);
        const r = Atomics.waitAsync(flushed, at, Atomics.load(flushed, at), 50);
        if (r.async) await r.value;
      }
    }
    return outcome(d, packets, false);
  } catch {
    return outcome(d, packets, true);
  } finally {
    // As a migration ends: the channel stops and ends its connection; the sink closes after it.
    Atomics.store(mig, MIG.abort, 1);
    Atomics.notify(mig, MIG.abort);
    if (channel) {
      await new Promise<void>((resolve) => {
        channelStopped = resolve;
        channel!.finish();
      });
    }
    await new Promise<void>((resolve) => sink.close(() => resolve()));
  }
}

function outcome(d: SendWorkerData, packets: number, stopped: boolean): SendWarmUp {
  const stats = new Float64Array(d.chanStats);
  return { packets, normal: stats[CHAN_STAT.normal], zero: stats[CHAN_STAT.zero], stopped };
}

interface WarmUpJob {
  block: number;
  pages: Uint32Array;
  normal: number;
  flags: number;
}

/**
 * The jobs of one pass, as live_migration cuts them: every page in packets of consecutive pages
 * (pass 1's), and every fourth pass every third page (dirty pages, the last packet a single
 * page), every eighth sorted by the legacy mode's check (normal pages first).
 */
function passJobs(pass: number): WarmUpJob[] {
  const jobs: WarmUpJob[] = [];
  const list: number[] = [];
  for (let p = FIRST_PAGE; p < FIRST_PAGE + GUEST_PAGES; p += pass % 4 === 0 ? 3 : 1) list.push(p);
  // A dirty pass's last packet holds one page: an accelerator then also submits a lone
  // descriptor instead of a batch, as a migration's last packets of a pass often do.
  if (pass % 4 === 0) list.length -= (list.length - 1) % PACKET_PAGES;
  for (let i = 0; i < list.length; i += PACKET_PAGES) {
    const pages = Uint32Array.from(list.slice(i, i + PACKET_PAGES));
    if (pass % 8 !== 0) {
      jobs.push({ block: (jobs.length >> 2) & 1, pages, normal: 0, flags: 0 });
      continue;
    }
    const normal = pages.filter(isNormal);
    const zero = pages.filter((p) => !isNormal(p)).reverse();
    jobs.push({
      block: (jobs.length >> 2) & 1,
      pages: Uint32Array.from([...normal, ...zero]),
      normal: normal.length,
      flags: JOB_CLASSIFIED,
    });
  }
  return jobs;
}

function isNormal(page: number): boolean {
  return page >= FIRST_PAGE + GUEST_PAGES / 2 && page % 8 === 0;
}

/** The private guest's blocks, made once per thread (both warm-ups read them; none writes). */
let privateGuest: RamBlockDesc[] | null = null;

function privateGuestBlocks(): RamBlockDesc[] {
  if (privateGuest) return privateGuest;
  const blocks = allocateBlocks(2 * BLOCK_BYTES, BLOCK_BYTES);
  for (const b of blocks) {
    const ram = new Uint8Array(b.ram, b.base, BLOCK_BYTES);
    for (let p = FIRST_PAGE; p < FIRST_PAGE + GUEST_PAGES; p++) {
      if (isNormal(p)) ram[p * PAGE_SIZE + (p % 64)] = 1;
    }
  }
  privateGuest = blocks;
  return blocks;
}

/** A migration of the private guest over one plain TCP channel. */
function warmUpData(accel: AccelHandle | undefined): SendWorkerData {
  return {
    blocks: privateGuestBlocks(),
    slots: createSlots(1),
    mig: new SharedArrayBuffer(4 * MIG.size),
    chanStats: new SharedArrayBuffer(8 * CHAN_STAT.size),
    chanWords: new SharedArrayBuffer(4 * CHAN_WORD.size),
    cpuSlots: createCpuSlots(),
    channels: 1,
    packetPages: PACKET_PAGES,
    stallTimeoutMs: 10_000,
    threadNice: 0,
    mode: accel ? 'dsa-accel' : 'multifd',
    index: 0,
    host: '127.0.0.1',
    session: new Uint8Array(16),
    cpuSlot: 0,
    accel,
    transport: {},
  };
}

function listen(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve((server.address() as net.AddressInfo).port));
  });
}
