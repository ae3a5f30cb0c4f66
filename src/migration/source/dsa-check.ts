// zero-page-detection=dsa-accel, for one multifdsend_N: each full slot's pages go to the device
// as one batch while earlier packets are built and written. The page list is the slot's own
// memory (no copy); verdicts land in the slot's result array.
//
// A packet of contiguous pages is first checked whole: one descriptor per run of up to the WQ's
// max_transfer_size, as the CPU path checks a contiguous packet with one compare, and the runs
// of every packet that is ready go to the device in one batch. Only a packet that is not all
// zero is then checked page by page. (QEMU's DSA series sends every page as its own descriptor;
// on a mostly-zero guest that is 128 times the descriptors.)

import { PAGE_SIZE } from '../protocol.js';
import { mulWide } from '../../util/wide-math.js';
import { attachAccelerator, type BatchTask } from '../../accel/driver.js';
import {
  JOB_CLASSIFIED,
  JOB_KNOWN_ZERO,
  JOB_SYNC,
  SLOT,
  SLOTS_PER_CHANNEL,
  slotBase,
} from './channel-slots.js';

/** jobs the device has nothing to check in */
const NOTHING_TO_CHECK = JOB_SYNC | JOB_CLASSIFIED | JOB_KNOWN_ZERO;
import type { SlotConsumer } from './slot-ring.js';
import type { SendWorkerData } from './worker-data.js';

/**
 * Where packets keep holding normal pages (a guest that uses its memory), a whole-packet check
 * only adds a round trip: after this many misses in a row, only every RUN_PROBE_EVERY-th
 * packet tries.
 */
const RUN_MISS_LIMIT = 4;
const RUN_PROBE_EVERY = 16;

export class DsaZeroCheck {
  private readonly accel: ReturnType<typeof attachAccelerator>;
  private readonly task: BatchTask;
  private readonly runCheck: { task: BatchTask; bytes: number; slots: number } | null;
  private readonly slots: Int32Array;
  private readonly slotPages: Uint32Array[] = [];
  private readonly slotResults: Uint8Array[] = [];
  private readonly checking: (Promise<number> | null)[] = [];
  /** the device's verdicts for the slot are in */
  private readonly checked = new Uint8Array(SLOTS_PER_CHANNEL);
  private readonly runBatch = new Int32Array(SLOTS_PER_CHANNEL);
  private runMisses = 0;
  private runProbe = 0;

  constructor(
    private readonly d: SendWorkerData & { accel: NonNullable<SendWorkerData['accel']> },
    private readonly ring: SlotConsumer,
  ) {
    this.accel = attachAccelerator(d.accel);
    this.task = this.accel.createBatchTask(d.index, d.packetPages);
    this.runCheck = this.createRunTask();
    this.slots = new Int32Array(d.slots);
    const pagesView = new Uint32Array(d.slots);
    for (let s = 0; s < SLOTS_PER_CHANNEL; s++) {
      const at = slotBase(d.index, s) + SLOT.header;
      this.slotPages.push(pagesView.subarray(at, at + d.packetPages));
      this.slotResults.push(new Uint8Array(d.packetPages));
      this.checking.push(null);
    }
  }

  /** The slot's verdicts, one byte per page in slot order: 1 zero, 0 normal. */
  results(slot: number): Uint8Array {
    return this.slotResults[slot];
  }

  /** Settles once the slot's verdicts are in (null: not submitted). */
  pending(slot: number): Promise<number> | null {
    return this.checking[slot];
  }

  /** A full slot that needs verdicts and does not have them yet. */
  notReady(slot: number): boolean {
    const flags = this.slots[slotBase(this.d.index, slot) + SLOT.flags];
    return (flags & NOTHING_TO_CHECK) === 0 && !this.checked[slot];
  }

  /** The slot was sent: its next packet starts afresh. */
  forget(slot: number): void {
    this.checking[slot] = null;
    this.checked[slot] = 0;
  }

  /**
   * Stop submitting: settles once this channel's requests in flight have finished and its
   * client is closed, so that the accelerator's work queues may be closed.
   */
  stop(): Promise<void> {
    return this.accel.stop();
  }

  /**
   * Pipelining: every full slot from `slot` on goes to the device as soon as it is filled;
   * the whole-packet runs of those that qualify go together.
   */
  submitAhead(slot: number): void {
    let n = 0;
    let units = 0;
    let block = -1;
    for (let i = 0; i < SLOTS_PER_CHANNEL; i++) {
      const s = (slot + i) % SLOTS_PER_CHANNEL;
      if (!this.ring.isFull(s)) break;
      if (!this.needsCheck(s)) continue;
      const u = this.tryRun() ? this.runUnits(s) : 0;
      const b = this.slots[slotBase(this.d.index, s) + SLOT.block];
      if (u === 0) {
        this.settle(s, this.checkPages(s));
        continue;
      }
      if (n > 0 && (u !== units || b !== block || n === this.runCheck!.slots)) {
        this.submitRuns(this.runBatch, n, units);
        n = 0;
      }
      units = u;
      block = b;
      this.runBatch[n++] = s;
    }
    if (n > 0) this.submitRuns(this.runBatch, n, units);
  }

  /** A full slot whose pages the device has not been asked about yet (and should be). */
  private needsCheck(slot: number): boolean {
    if (this.checking[slot] || !this.ring.isFull(slot)) return false;
    const flags = this.slots[slotBase(this.d.index, slot) + SLOT.flags];
    return (flags & NOTHING_TO_CHECK) === 0;
  }

  /** Page by page: the slot's own page list, results in the slot's result array. */
  private checkPages(slot: number): Promise<number> {
    const base = slotBase(this.d.index, slot);
    const block = this.d.blocks[this.slots[base + SLOT.block]];
    const count = this.slots[base + SLOT.count];
    return this.task.zeroPages(
      block.ram,
      this.slotPages[slot],
      count,
      this.slotResults[slot],
      block.base,
    );
  }

  /** Runs per slot for a whole-packet check of it, or 0 when its pages are not such a run. */
  private runUnits(slot: number): number {
    const run = this.runCheck;
    if (!run) return 0;
    const count = this.slots[slotBase(this.d.index, slot) + SLOT.count];
    const pages = this.slotPages[slot];
    const first = pages[0];
    if (pages[count - 1] !== first + count - 1) return 0;
    const bytes = count * PAGE_SIZE;
    // Units are addressed as multiples of the run size from the block's start.
    if (bytes % run.bytes !== 0 || mulWide(first, PAGE_SIZE) % run.bytes !== 0) return 0;
    return bytes / run.bytes;
  }

  private settle(slot: number, check: Promise<number>): void {
    this.checking[slot] = check.then((zeros) => {
      this.checked[slot] = 1;
      return zeros;
    });
  }

  /** One batch of whole-packet runs for `n` slots of one block; then per page where needed. */
  private submitRuns(batch: Int32Array, n: number, units: number): void {
    const run = this.runCheck!;
    const block = this.d.blocks[this.slots[slotBase(this.d.index, batch[0]) + SLOT.block]];
    const per = run.bytes / PAGE_SIZE;
    // Per request, not per page: the device fills these while later packets are built.
    const index = new Uint32Array(n * units);
    const verdict = new Uint8Array(n * units);
    for (let j = 0; j < n; j++) {
      const first = this.slotPages[batch[j]][0] / per;
      for (let u = 0; u < units; u++) index[j * units + u] = first + u;
    }
    const all = run.task.zeroPages(block.ram, index, n * units, verdict, block.base);
    for (let j = 0; j < n; j++) {
      const slot = batch[j];
      this.settle(
        slot,
        all.then(() => {
          for (let u = 0; u < units; u++) {
            if (verdict[j * units + u] === 0) {
              this.runMisses++;
              return this.checkPages(slot);
            }
          }
          this.runMisses = 0;
          const count = this.slots[slotBase(this.d.index, slot) + SLOT.count];
          this.slotResults[slot].fill(1, 0, count);
          return count;
        }),
      );
    }
  }

  /**
   * The run task: the largest power-of-two size up to a packet that the WQ accepts. One request
   * carries the runs of up to `slots` packets (a request holds at most a packet's page count).
   */
  private createRunTask(): { task: BatchTask; bytes: number; slots: number } | null {
    const pp = this.d.packetPages;
    for (let bytes = pp * PAGE_SIZE; bytes >= 16 * PAGE_SIZE; bytes /= 2) {
      if (!Number.isInteger(bytes / PAGE_SIZE)) break;
      const units = (pp * PAGE_SIZE) / bytes;
      const slots = Math.min(SLOTS_PER_CHANNEL, Math.floor(pp / units));
      if (slots < 1) break;
      try {
        const task = this.accel.createBatchTask(this.d.index, units * slots, {
          pageSize: bytes,
          pagesPerUnit: bytes / PAGE_SIZE,
        });
        return { task, bytes, slots };
      } catch (e) {
        if (!(e instanceof RangeError)) throw e;
      }
    }
    return null;
  }

  private tryRun(): boolean {
    return this.runMisses < RUN_MISS_LIMIT || ++this.runProbe % RUN_PROBE_EVERY === 0;
  }
}
