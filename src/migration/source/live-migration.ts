// live_migration: walks the dirty bitmaps, cuts packets (one RAM block each) and hands them to
// the next free channel; ends every pass with a SYNC on each channel; decides convergence from
// the measured bandwidth and downtime-limit; stops the vCPU and sends the final pass.
// Runs on its own thread (live-migration-worker.ts); blocks on Atomics.wait between steps.

import { PAGE_SIZE } from '../protocol.js';
import { offsetInSegment, pagesOf, segmentOf, segmentViews } from '../../ram/layout.js';
import { isZeroRange } from '../../zero/zero-check.js';
import { REQ_SWITCHOVER, VcpuControl } from '../../ram/vcpu-control.js';
import {
  CHAN_STAT,
  CHAN_WORD,
  JOB_CLASSIFIED,
  JOB_KNOWN_ZERO,
  JOB_SYNC,
  LIVE,
  MIG,
  SLOT,
  channelDepth,
} from './channel-slots.js';
import { SlotProducer } from './slot-ring.js';
import { AutoConverge, autoConvergeParams } from './auto-converge.js';
import type { LiveMigrationWorkerData, SourceWorkerMessage } from './worker-data.js';
import { publishThreadCpu } from '../../util/cpu-slots.js';
import { pagesKnownZero } from '../../ram/known-zero.js';

/** Thrown out of any wait once MIG.abort is set: the migration ends without a word. */
export class Aborted extends Error {}

/** Shortest pass; bounds the rate of dirty syncs and MIGRATION_PASS events. */
const MIN_PASS_MS = 20;
/**
 * Where the vCPU thread finds changed pages by comparison, a pass lasts at least this many
 * times the last sync's cost, so that syncs take at most 1/(1+N) of the vCPU's time.
 */
const SYNC_SPACING = 4;

export class LiveMigration {
  private readonly slots: Int32Array;
  private readonly pagesView: Uint32Array;
  private readonly mig: Int32Array;
  private readonly chanStats: Float64Array;
  private readonly chanWords: Int32Array;
  private readonly live: Float64Array;
  private readonly vcpu: VcpuControl;
  private readonly producer: SlotProducer;
  private readonly autoConverge = new AutoConverge();
  private readonly contentSync: boolean;
  private readonly dirty: Int32Array[];
  private readonly segs: Buffer[][];
  private readonly blockPages: number[];
  /** per block, its known-zero map if it keeps one (src/ram/known-zero.ts) */
  private readonly knownZero: (Uint8Array | null)[];
  /** the packet being cut: pages of block `jobBlock` */
  private readonly job: Uint32Array;
  private jobCount = 0;
  private jobBlock = -1;
  /** the guest is stopped: no rate limit */
  private finalPass = false;
  /** a long wait for the destination has already sent the decision back for another pass */
  private decidedAgain = false;
  private rateStart = performance.now();
  private rateBytesStart = 0;

  constructor(
    private readonly d: LiveMigrationWorkerData,
    private readonly post: (m: SourceWorkerMessage) => void,
  ) {
    this.slots = new Int32Array(d.slots);
    this.pagesView = new Uint32Array(d.slots);
    this.mig = new Int32Array(d.mig);
    this.chanStats = new Float64Array(d.chanStats);
    this.chanWords = new Int32Array(d.chanWords);
    this.live = new Float64Array(d.liveParams);
    this.vcpu = new VcpuControl(d.vcpuControl);
    this.producer = new SlotProducer(d.slots, d.mig, d.channels, channelDepth(d.mode));
    this.contentSync = d.dirtyTracking === 'content-sync';
    this.dirty = d.blocks.map((b) => new Int32Array(b.dirty));
    this.segs = d.blocks.map((b) => segmentViews(b));
    this.blockPages = d.blocks.map((b) => pagesOf(b.size));
    // zero-page-detection=none sends every page as data, read or not
    this.knownZero = d.blocks.map((b) =>
      b.knownZero && d.mode !== 'none' ? new Uint8Array(b.knownZero) : null,
    );
    this.job = new Uint32Array(d.packetPages);
  }

  /** Precopy passes until the expected downtime fits, then the switchover and the final pass. */
  run(): void {
    let pass = this.precopy();
    this.stopGuest(++pass);
    this.waitSwitchoverAllowed();
    this.finalPass = true; // the guest is stopped: finish as fast as the link allows
    const bytes0 = this.transferred();
    this.sendPass(pass, false);
    this.waitFlushed(pass);
    publishThreadCpu(this.d.cpuSlots, this.d.cpuSlot);
    this.post({ type: 'final-sent', pass, bytes: this.transferred() - bytes0 });
  }

  /** Passes while the guest runs; returns the last one's number. */
  private precopy(): number {
    // Dirty logging starts now: pass 1 sends everything, later writes show up in the bitmaps.
    // A content-sync machine's first sync was asked for when the migration began: it runs beside
    // pass 1 (on the machine's own thread) and is the sync that follows it. Pass 1 need not wait
    // for it: a page that sync copies into the RAM block after pass 1 read it gets its bit then,
    // and is sent again; one it copied before is sent as it is now. (Its bits set before this
    // line are cleared with pages pass 1 sends anyway.)
    for (const bm of this.dirty) bm.fill(0);
    let syncMs = 0;
    for (let pass = 1; ; pass++) {
      const t0 = performance.now();
      const bytes0 = this.transferred();
      this.sendPass(pass, pass === 1);
      this.waitFlushed(pass);
      const bytes = this.transferred() - bytes0;
      const busyMs = Math.max(0.001, performance.now() - t0);
      // Pace short passes: a guest that dirties little would otherwise spin through dirty syncs
      // and judge its dirty rate from a sliver of time; and syncs (the PC's run on a thread of
      // their own, but on the cores the guest runs on) must leave the guest most of the CPU.
      const minPassMs = Math.max(MIN_PASS_MS, SYNC_SPACING * syncMs);
      if ((pass > 1 || this.contentSync) && busyMs < minPassMs) {
        Atomics.wait(this.mig, MIG.abort, 0, minPassMs - busyMs);
      }
      this.checkAbort();
      syncMs = this.dirtySync(pass === 1 ? this.d.firstSyncTicket : undefined);
      if (this.passDone(pass, t0, bytes, busyMs) && this.awaitDestination(pass, busyMs)) {
        return pass;
      }
    }
  }

  /**
   * Before the switchover: wait until the destination has applied every pass sent (PassApplied,
   * MIG.appliedPass), while the guest still runs. What was sent but not yet applied (socket
   * buffers, pages the destination is still faulting in) would otherwise be applied inside the
   * downtime: on a 2-core host running both sides, a freshly booted PC's destination applied
   * its pass 1 for 10-20 ms after the source had stopped its guest. True when the guest may stop
   * now; false when the wait took longer than the pass (`passMs`): the dirty pages the decision
   * counted are stale then, and another pass and sync decide again, once per migration (a
   * destination that is always slower than the source would otherwise make every pass another).
   * A destination that does not report within x-stall-timeout is not waited for any longer.
   */
  private awaitDestination(pass: number, passMs: number): boolean {
    const t0 = performance.now();
    const until = t0 + this.d.stallTimeoutMs;
    for (;;) {
      const applied = Atomics.load(this.mig, MIG.appliedPass);
      if (applied >= pass) break;
      const left = until - performance.now();
      if (left <= 0) return true;
      Atomics.wait(this.mig, MIG.appliedPass, applied, Math.min(left, 100));
      this.checkAbort();
    }
    if (this.decidedAgain || performance.now() - t0 <= Math.max(MIN_PASS_MS, passMs)) return true;
    this.decidedAgain = true;
    return false;
  }

  /** Report the pass; true when what is left fits in downtime-limit. */
  private passDone(pass: number, t0: number, bytes: number, busyMs: number): boolean {
    const live = this.live;
    const durationMs = Math.max(0.001, performance.now() - t0);
    const measured = bytes / busyMs; // bytes per ms
    // The switchover estimate: what the user says the link has, else what was measured, but
    // never more than max-bandwidth allows (short passes can outrun the limiter's window).
    const avail = live[LIVE.availSwitchoverBandwidth];
    const cap = live[LIVE.maxBandwidth];
    let bandwidth = avail > 0 ? avail / 1000 : measured;
    if (cap > 0 && avail <= 0) bandwidth = Math.min(bandwidth, cap / 1000);
    const remainingPages = this.countDirty();
    const expectedDowntimeMs = (remainingPages * PAGE_SIZE) / Math.max(bandwidth, 1e-9);
    publishThreadCpu(this.d.cpuSlots, this.d.cpuSlot);
    if (pass > 1) {
      const p = autoConvergeParams(live);
      this.vcpu.throttle = this.autoConverge.next(
        p,
        this.vcpu.throttle,
        remainingPages * PAGE_SIZE,
        bytes,
      );
    }
    this.post({
      type: 'pass',
      pass,
      throttle: this.vcpu.throttle,
      remainingPages,
      durationMs,
      bytes,
      bandwidth: bandwidth * 1000,
      expectedDowntimeMs,
      dirtyPagesRate: (remainingPages * 1000) / durationMs,
    });
    return expectedDowntimeMs <= live[LIVE.downtimeLimitMs];
  }

  /** Switchover: stop the vCPU, wait until it no longer writes, bring the RAM blocks up to date. */
  private stopGuest(pass: number): void {
    this.vcpu.throttle = 0;
    this.vcpu.request(REQ_SWITCHOVER);
    this.vcpu.waitStopped(() => this.checkAbort());
    this.post({ type: 'stopped', at: performance.timeOrigin + performance.now(), pass });
    // The last sync: the guest is stopped, so after it the RAM blocks hold its RAM exactly.
    this.dirtySync();
  }

  /** pause-before-switchover: the guest is stopped; wait for migrate-continue (or cancel). */
  private waitSwitchoverAllowed(): void {
    while (Atomics.load(this.mig, MIG.switchover) === 1) {
      this.checkAbort();
      Atomics.wait(this.mig, MIG.switchover, 1, 100);
    }
  }

  private checkAbort(): void {
    if (Atomics.load(this.mig, MIG.abort) !== 0) throw new Aborted();
  }

  private transferred(): number {
    let t = 0;
    for (let c = 0; c < this.d.channels; c++) {
      t += this.chanStats[c * CHAN_STAT.size + CHAN_STAT.bytes];
    }
    return t;
  }

  /** Sleep until the bytes sent since the window started fit in max-bandwidth. */
  private throttle(): void {
    const rateLimit = this.finalPass ? 0 : this.live[LIVE.maxBandwidth];
    if (rateLimit <= 0) return;
    for (;;) {
      this.checkAbort();
      const elapsed = (performance.now() - this.rateStart) / 1000;
      const excess = this.transferred() - this.rateBytesStart - rateLimit * elapsed;
      if (excess <= 0) break;
      Atomics.wait(this.mig, MIG.abort, 0, Math.min(100, Math.max(1, (excess / rateLimit) * 1000)));
    }
    if (performance.now() - this.rateStart > 1000) {
      this.rateStart = performance.now();
      this.rateBytesStart = this.transferred();
    }
  }

  /**
   * Hand the packet being cut to the next free channel. `knownZero`: its pages are a run that
   * the block's known-zero map says is zero, sent as zero pages without reading them.
   */
  private flushJob(pass: number, knownZero = false): void {
    const count = this.jobCount;
    if (count === 0) return;
    this.throttle();
    const base = this.producer.acquire(() => this.checkAbort());
    const slots = this.slots;
    slots[base + SLOT.block] = this.jobBlock;
    slots[base + SLOT.count] = count;
    slots[base + SLOT.pass] = pass;
    const pagesOff = base + SLOT.header;
    if (knownZero) {
      this.pagesView.set(this.job.subarray(0, count), pagesOff);
      slots[base + SLOT.flags] = JOB_KNOWN_ZERO;
    } else if (this.d.mode === 'none') {
      this.pagesView.set(this.job.subarray(0, count), pagesOff);
      slots[base + SLOT.normal] = count;
      slots[base + SLOT.flags] = JOB_CLASSIFIED;
    } else if (this.d.mode === 'legacy') {
      slots[base + SLOT.normal] = this.classify(pagesOff);
      slots[base + SLOT.flags] = JOB_CLASSIFIED;
    } else {
      this.pagesView.set(this.job.subarray(0, count), pagesOff);
      slots[base + SLOT.flags] = 0;
    }
    this.producer.publish(base);
    this.jobCount = 0;
  }

  /**
   * QEMU's legacy mode: the migration thread checks each page itself. Writes the job's pages to
   * the slot at `pagesOff`, normal ones first; returns how many are normal.
   */
  private classify(pagesOff: number): number {
    const bsegs = this.segs[this.jobBlock];
    const out = this.pagesView;
    let normal = 0;
    let zeroAt = this.jobCount;
    for (let i = 0; i < this.jobCount; i++) {
      const p = this.job[i];
      if (isZeroRange(bsegs[segmentOf(p)], offsetInSegment(p), PAGE_SIZE)) {
        out[pagesOff + --zeroAt] = p;
      } else {
        out[pagesOff + normal++] = p;
      }
    }
    return normal;
  }

  private queuePage(block: number, page: number, pass: number): void {
    if (block !== this.jobBlock || this.jobCount === this.d.packetPages) {
      this.flushJob(pass);
      this.jobBlock = block;
    }
    this.job[this.jobCount++] = page;
  }

  /** Send every page (pass 1) or every dirty page, taking the dirty bits as it goes. */
  private sendPass(pass: number, all: boolean): number {
    let pages = 0;
    for (let b = 0; b < this.d.blocks.length; b++) {
      const n = this.blockPages[b];
      if (all) {
        // Whole packets of consecutive pages, without a call per page.
        const known = this.knownZero[b];
        for (let p = 0; p < n;) {
          if (b !== this.jobBlock || this.jobCount === this.d.packetPages) {
            this.flushJob(pass);
            this.jobBlock = b;
          }
          const take = Math.min(this.d.packetPages - this.jobCount, n - p);
          for (let i = 0; i < take; i++) this.job[this.jobCount + i] = p + i;
          this.jobCount += take;
          const wholeJob = this.jobCount === take; // the job is pages [p, p + take), no more
          if (known !== null && wholeJob && pagesKnownZero(known, p, take)) {
            this.flushJob(pass, true);
          }
          p += take;
        }
        pages += n;
        continue;
      }
      const bm = this.dirty[b];
      for (let w = 0; w < bm.length; w++) {
        if (bm[w] === 0) continue;
        let bits = Atomics.exchange(bm, w, 0);
        while (bits !== 0) {
          const bit = 31 - Math.clz32(bits & -bits);
          bits &= bits - 1;
          this.queuePage(b, (w << 5) | bit, pass);
          pages++;
        }
      }
      if ((b & 7) === 7) this.checkAbort();
    }
    this.flushJob(pass);
    this.jobBlock = -1;
    this.syncChannels(pass);
    return pages;
  }

  /** End of pass: a SYNC on every channel, so the destination applies pass N before N+1. */
  private syncChannels(pass: number): void {
    for (let ch = 0; ch < this.d.channels; ch++) {
      const base = this.producer.acquire(() => this.checkAbort(), ch);
      this.slots[base + SLOT.flags] = JOB_SYNC;
      this.slots[base + SLOT.pass] = pass;
      this.slots[base + SLOT.count] = 0;
      this.producer.publish(base);
    }
  }

  /** Until every channel has written its SYNC of `pass` to the kernel. */
  private waitFlushed(pass: number): void {
    for (let ch = 0; ch < this.d.channels; ch++) {
      const at = ch * CHAN_WORD.size + CHAN_WORD.flushedPass;
      for (;;) {
        this.checkAbort();
        const v = Atomics.load(this.chanWords, at);
        if (v >= pass) break;
        Atomics.wait(this.chanWords, at, v, 100);
      }
    }
  }

  private countDirty(): number {
    let n = 0;
    for (const bm of this.dirty) {
      for (let w = 0; w < bm.length; w++) {
        let v = bm[w];
        if (v === 0) continue;
        v = v - ((v >>> 1) & 0x55555555);
        v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
        n += (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
      }
    }
    return n;
  }

  /**
   * A dirty sync (content-sync machines): the machine copies the pages whose content changed
   * into the RAM blocks and sets their bits (for the PC, its dirty_sync thread). Waits for
   * `ticket` if given, else for a sync that starts now. Returns the sync's cost in ms.
   */
  private dirtySync(ticket?: number): number {
    if (!this.contentSync) return 0;
    this.vcpu.waitSync(ticket ?? this.vcpu.requestSync(), () => this.checkAbort());
    const last = this.vcpu.lastSync();
    const ms = last.micros / 1000;
    this.post({
      type: 'dirty-sync',
      ms,
      cpuMs: last.cpuMicros / 1000,
      pages: last.pages,
      logged: last.logged,
    });
    return ms;
  }
}
