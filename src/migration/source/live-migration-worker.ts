// live_migration: walks the dirty bitmaps, cuts packets (one RAM block each) and hands them to
// the next free channel; ends every pass with a SYNC on each channel; decides convergence from
// the measured bandwidth and downtime-limit; stops the vCPU and sends the final pass.

import { parentPort } from 'node:worker_threads';
import { PAGE_SIZE } from '../protocol.js';
import { offsetInSegment, pagesOf, segmentOf, segmentViews } from '../../ram/layout.js';
import { isZeroRange } from '../../zero/zero-check.js';
import { REQ_SWITCHOVER, VcpuControl } from '../../ram/vcpu-control.js';
import {
  CHAN_STAT,
  CHAN_WORD,
  JOB_CLASSIFIED,
  JOB_SYNC,
  LIVE,
  MIG,
  SLOT,
  SLOT_FREE,
  SLOT_FULL,
  SLOTS_PER_CHANNEL,
  channelDepth,
  slotBase,
} from './channel-slots.js';
import type { LiveMigrationWorkerData, SourceWorkerMessage } from './worker-data.js';
import { publishThreadCpu, resetThreadCpu } from '../../util/cpu-slots.js';

// Pooled (src/util/worker-pool.ts): bound to a migration by a 'bind' message.
parentPort!.once('message', (m: { type: 'bind'; data: LiveMigrationWorkerData }) => start(m.data));

function start(d: LiveMigrationWorkerData): void {
  resetThreadCpu();
  const post = (m: SourceWorkerMessage): void => parentPort!.postMessage(m);
  const slots = new Int32Array(d.slots);
  const pagesView = new Uint32Array(d.slots);
  const mig = new Int32Array(d.mig);
  const chanStats = new Float64Array(d.chanStats);
  const chanWords = new Int32Array(d.chanWords);
  const vcpu = new VcpuControl(d.vcpuControl);
  const contentSync = d.dirtyTracking === 'content-sync';
  const dirty = d.blocks.map((b) => new Int32Array(b.dirty));
  const segs = d.blocks.map((b) => segmentViews(b));
  const blockPages = d.blocks.map((b) => pagesOf(b.size));
  const legacy = d.mode === 'legacy';
  const noDetect = d.mode === 'none';
  const depth = channelDepth(d.mode);

  class Aborted extends Error {}

  /** Shortest pass; bounds the rate of dirty syncs and MIGRATION_PASS events. */
  const MIN_PASS_MS = 20;
  /**
   * Where the vCPU thread finds changed pages by comparison, a pass lasts at least this many
   * times the last sync's cost, so that syncs take at most 1/(1+N) of the vCPU's time.
   */
  const SYNC_SPACING = 4;

  const job = new Uint32Array(d.packetPages);
  let jobCount = 0;
  let jobBlock = -1;
  const fillIdx = new Int32Array(d.channels);
  let nextChannel = 0;
  const live = new Float64Array(d.liveParams);
  let finalPass = false;
  let rateStart = now();
  let rateBytesStart = 0;

  function now(): number {
    return performance.now();
  }

  function checkAbort(): void {
    if (Atomics.load(mig, MIG.abort) !== 0) throw new Aborted();
  }

  function transferred(): number {
    let t = 0;
    for (let c = 0; c < d.channels; c++) t += chanStats[c * CHAN_STAT.size + CHAN_STAT.bytes];
    return t;
  }

  /** Sleep until the bytes sent since the window started fit in max-bandwidth. */
  function throttle(): void {
    const rateLimit = finalPass ? 0 : live[LIVE.maxBandwidth];
    if (rateLimit <= 0) return;
    for (;;) {
      checkAbort();
      const elapsed = (now() - rateStart) / 1000;
      const excess = transferred() - rateBytesStart - rateLimit * elapsed;
      if (excess <= 0) break;
      Atomics.wait(mig, MIG.abort, 0, Math.min(100, Math.max(1, (excess / rateLimit) * 1000)));
    }
    if (now() - rateStart > 1000) {
      rateStart = now();
      rateBytesStart = transferred();
    }
  }

  /** Wait for a channel whose next slot is free; prefer round-robin order like QEMU. */
  function acquireChannel(only = -1): { ch: number; base: number } {
    for (;;) {
      checkAbort();
      const seq = Atomics.load(mig, MIG.freed);
      for (let i = 0; i < d.channels; i++) {
        const ch = only >= 0 ? only : (nextChannel + i) % d.channels;
        const base = slotBase(ch, fillIdx[ch]);
        // Slots fill and free in ring order: the one `depth` back is free iff fewer than
        // `depth` packets are in flight.
        const behind = slotBase(ch, (fillIdx[ch] + SLOTS_PER_CHANNEL - depth) % SLOTS_PER_CHANNEL);
        if (
          Atomics.load(slots, base + SLOT.state) === SLOT_FREE &&
          Atomics.load(slots, behind + SLOT.state) === SLOT_FREE
        ) {
          if (only < 0) nextChannel = (ch + 1) % d.channels;
          fillIdx[ch] = (fillIdx[ch] + 1) % SLOTS_PER_CHANNEL;
          return { ch, base };
        }
        if (only >= 0) break;
      }
      Atomics.wait(mig, MIG.freed, seq, 100);
    }
  }

  function publish(base: number): void {
    Atomics.store(slots, base + SLOT.state, SLOT_FULL);
    Atomics.notify(slots, base + SLOT.state);
  }

  function flushJob(pass: number): void {
    if (jobCount === 0) return;
    throttle();
    const { base } = acquireChannel();
    slots[base + SLOT.block] = jobBlock;
    slots[base + SLOT.count] = jobCount;
    slots[base + SLOT.pass] = pass;
    const pagesOff = base + SLOT.header;
    if (noDetect) {
      pagesView.set(job.subarray(0, jobCount), pagesOff);
      slots[base + SLOT.normal] = jobCount;
      slots[base + SLOT.flags] = JOB_CLASSIFIED;
    } else if (legacy) {
      // QEMU's legacy mode: the migration thread checks each page itself.
      const bsegs = segs[jobBlock];
      let normal = 0;
      let zeroAt = jobCount;
      for (let i = 0; i < jobCount; i++) {
        const p = job[i];
        if (isZeroRange(bsegs[segmentOf(p)], offsetInSegment(p), PAGE_SIZE)) {
          pagesView[pagesOff + --zeroAt] = p;
        } else {
          pagesView[pagesOff + normal++] = p;
        }
      }
      slots[base + SLOT.normal] = normal;
      slots[base + SLOT.flags] = JOB_CLASSIFIED;
    } else {
      pagesView.set(job.subarray(0, jobCount), pagesOff);
      slots[base + SLOT.flags] = 0;
    }
    publish(base);
    jobCount = 0;
  }

  function queuePage(block: number, page: number, pass: number): void {
    if (block !== jobBlock || jobCount === d.packetPages) {
      flushJob(pass);
      jobBlock = block;
    }
    job[jobCount++] = page;
  }

  /** Send every page (pass 1) or every dirty page, taking the dirty bits as it goes. */
  function sendPass(pass: number, all: boolean): number {
    let pages = 0;
    for (let b = 0; b < d.blocks.length; b++) {
      const n = blockPages[b];
      if (all) {
        for (let p = 0; p < n; p++) queuePage(b, p, pass);
        pages += n;
        continue;
      }
      const bm = dirty[b];
      for (let w = 0; w < bm.length; w++) {
        if (bm[w] === 0) continue;
        let bits = Atomics.exchange(bm, w, 0);
        while (bits !== 0) {
          const bit = 31 - Math.clz32(bits & -bits);
          bits &= bits - 1;
          queuePage(b, (w << 5) | bit, pass);
          pages++;
        }
      }
      if ((b & 7) === 7) checkAbort();
    }
    flushJob(pass);
    jobBlock = -1;
    // End of pass: a SYNC on every channel, so the destination applies pass N before N+1.
    for (let ch = 0; ch < d.channels; ch++) {
      const { base } = acquireChannel(ch);
      slots[base + SLOT.flags] = JOB_SYNC;
      slots[base + SLOT.pass] = pass;
      slots[base + SLOT.count] = 0;
      publish(base);
    }
    return pages;
  }

  function waitFlushed(pass: number): void {
    for (let ch = 0; ch < d.channels; ch++) {
      for (;;) {
        checkAbort();
        const v = Atomics.load(chanWords, ch * CHAN_WORD.size + CHAN_WORD.flushedPass);
        if (v >= pass) break;
        Atomics.wait(chanWords, ch * CHAN_WORD.size + CHAN_WORD.flushedPass, v, 100);
      }
    }
  }

  let dirtyRateHigh = 0;

  /**
   * QEMU's auto-converge: when a pass dirtied more than throttle-trigger-threshold % of what it
   * sent, twice, take more of the vCPU's time (initial, then + increment, up to the maximum;
   * with tailslow, only as much as should bring the dirty rate down to the link's).
   */
  function autoConverge(dirtied: number, sent: number): void {
    if (live[LIVE.autoConverge] !== 1) return;
    const threshold = (sent * live[LIVE.throttleTrigger]) / 100;
    if (dirtied <= threshold || ++dirtyRateHigh < 2) return;
    dirtyRateHigh = 0;
    const now = vcpu.throttle;
    const max = live[LIVE.throttleMax];
    let next: number;
    if (now === 0) {
      next = live[LIVE.throttleInitial];
    } else {
      let inc = live[LIVE.throttleIncrement];
      if (live[LIVE.throttleTailslow] === 1) {
        const cpuNow = 100 - now;
        const cpuIdeal = (cpuNow * threshold) / Math.max(dirtied, 1);
        inc = Math.max(1, Math.min(Math.round(cpuNow - cpuIdeal), inc));
      }
      next = now + inc;
    }
    vcpu.throttle = Math.min(max, next);
  }

  function countDirty(): number {
    let n = 0;
    for (const bm of dirty) {
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
   * A dirty sync (content-sync machines): the vCPU thread copies the pages whose content changed
   * into the RAM blocks and sets their bits. Returns its cost on the vCPU thread in ms.
   */
  function dirtySync(ticket = vcpu.requestSync()): number {
    if (!contentSync) return 0;
    vcpu.waitSync(ticket, checkAbort);
    const ms = vcpu.lastSync().micros / 1000;
    post({ type: 'dirty-sync', ms, pages: vcpu.lastSync().pages });
    return ms;
  }

  function main(): void {
    // Dirty logging starts now: pass 1 sends everything, later writes show up in the bitmaps.
    // A content-sync machine brings its RAM blocks up to date first (the main thread asked for
    // that sync when the migration began, so it ran during setup); what it flagged is part of
    // pass 1 anyway.
    let syncMs = contentSync ? dirtySync(d.firstSyncTicket) : 0;
    for (const bm of dirty) bm.fill(0);
    let pass = 1;
    for (;;) {
      const t0 = now();
      const bytes0 = transferred();
      sendPass(pass, pass === 1);
      waitFlushed(pass);
      const bytes = transferred() - bytes0;
      const busyMs = Math.max(0.001, now() - t0);
      // Pace short passes: a guest that dirties little would otherwise spin through dirty syncs
      // and judge its dirty rate from a sliver of time; and a sync the vCPU thread pays for
      // must leave the guest most of its time.
      const minPassMs = Math.max(MIN_PASS_MS, SYNC_SPACING * syncMs);
      if ((pass > 1 || contentSync) && busyMs < minPassMs) {
        Atomics.wait(mig, MIG.abort, 0, minPassMs - busyMs);
      }
      checkAbort();
      syncMs = dirtySync();
      const durationMs = Math.max(0.001, now() - t0);
      const measured = bytes / busyMs; // bytes per ms
      // The switchover estimate: what the user says the link has, else what was measured, but
      // never more than max-bandwidth allows (short passes can outrun the limiter's window).
      const avail = live[LIVE.availSwitchoverBandwidth];
      const cap = live[LIVE.maxBandwidth];
      let bandwidth = avail > 0 ? avail / 1000 : measured;
      if (cap > 0 && avail <= 0) bandwidth = Math.min(bandwidth, cap / 1000);
      const remainingPages = countDirty();
      const expectedDowntimeMs = (remainingPages * PAGE_SIZE) / Math.max(bandwidth, 1e-9);
      publishThreadCpu(d.cpuSlots, d.cpuSlot);
      if (pass > 1) autoConverge(remainingPages * PAGE_SIZE, bytes);
      post({
        type: 'pass',
        pass,
        throttle: vcpu.throttle,
        remainingPages,
        durationMs,
        bytes,
        bandwidth: bandwidth * 1000,
        expectedDowntimeMs,
        dirtyPagesRate: (remainingPages * 1000) / durationMs,
      });
      if (expectedDowntimeMs <= live[LIVE.downtimeLimitMs]) break;
      pass++;
    }
    // Switchover: stop the vCPU, wait until it no longer writes, send what is left.
    vcpu.throttle = 0;
    vcpu.request(REQ_SWITCHOVER);
    vcpu.waitStopped(checkAbort);
    pass++;
    post({ type: 'stopped', at: performance.timeOrigin + now(), pass });
    // The last sync: the guest is stopped, so after it the RAM blocks hold its RAM exactly.
    dirtySync();
    // pause-before-switchover: the guest is stopped; wait for migrate-continue (or cancel).
    while (Atomics.load(mig, MIG.switchover) === 1) {
      checkAbort();
      Atomics.wait(mig, MIG.switchover, 1, 100);
    }
    finalPass = true; // the guest is stopped: finish as fast as the link allows
    const bytes0 = transferred();
    sendPass(pass, false);
    waitFlushed(pass);
    publishThreadCpu(d.cpuSlots, d.cpuSlot);
    post({ type: 'final-sent', pass, bytes: transferred() - bytes0 });
  }

  // Spawned during setup; starts walking RAM once every channel is connected.
  parentPort!.once('message', () => {
    try {
      main();
    } catch (e) {
      if (!(e instanceof Aborted)) post({ type: 'error', message: (e as Error).message });
    }
    publishThreadCpu(d.cpuSlots, d.cpuSlot);
    process.exit(0);
  });
}
