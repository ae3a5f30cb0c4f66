// vcpu_0: the guest workload. Like QEMU's migration-test guest it increments one byte in every
// page of a range, forever, and marks each page dirty in its block's bitmap.

import { workerData } from 'node:worker_threads';
import type { RamBlockDesc } from './layout.js';
import { REQ_QUIT, REQ_RUN, VCPU, type WorkloadSpec } from './vcpu-control.js';
import { offsetInSegment, pagesOf, segmentOf, segmentViews } from './layout.js';
import { publishThreadCpu } from '../util/cpu-slots.js';
import { nameThread } from '../util/thread-priority.js';

interface VcpuWorkerData {
  blocks: RamBlockDesc[];
  control: SharedArrayBuffer;
  workload: WorkloadSpec;
  cpuSlots: SharedArrayBuffer;
  cpuSlot: number;
}

const data = workerData as VcpuWorkerData;
nameThread('vcpu_0');
const ctl = new Int32Array(data.control);
// 1 GiB segments: a block can exceed what one typed array may span (4 GiB).
const segs = data.blocks.map((b) => segmentViews(b));
const dirty = data.blocks.map((b) => new Int32Array(b.dirty));
const blockPages = data.blocks.map((b) => pagesOf(b.size));
const { workload } = data;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

// Map the range's global page numbers to (block, page) once, so the loop does no searching.
const rangeBlock = new Uint16Array(workload.pages);
const rangePage = new Uint32Array(workload.pages);
{
  let g = 0;
  for (let b = 0; b < blockPages.length; b++) {
    for (let p = 0; p < blockPages[b]; p++, g++) {
      const i = g - workload.startPage;
      if (i >= 0 && i < workload.pages) {
        rangeBlock[i] = b;
        rangePage[i] = p;
      }
    }
  }
}

const pagesPerMs = workload.mbps > 0 ? (workload.mbps * 1e6) / 4096 / 1000 : 0;
// A rate-capped guest writes in small steps, so its dirtying is smooth rather than bursty.
const BATCH = pagesPerMs > 0 ? Math.max(1, Math.min(256, Math.floor(pagesPerMs))) : 256;

let pos = Atomics.load(ctl, VCPU.position) % workload.pages;
let loops = Atomics.load(ctl, VCPU.loops);
let written = 0;
let budgetStart = performance.now();
let budgetPages = 0;
// auto-converge: run (100 - p)% of the time, sleeping in slices of at least 1 ms.
let workStart = performance.now();

for (;;) {
  const req = Atomics.load(ctl, VCPU.request);
  if (req !== REQ_RUN) {
    Atomics.store(ctl, VCPU.position, pos);
    Atomics.store(ctl, VCPU.loops, loops);
    Atomics.store(ctl, VCPU.written, written | 0);
    Atomics.store(ctl, VCPU.ack, 0);
    Atomics.notify(ctl, VCPU.ack);
    publishThreadCpu(data.cpuSlots, data.cpuSlot);
    if (req === REQ_QUIT) break;
    Atomics.wait(ctl, VCPU.request, req);
    budgetStart = performance.now();
    budgetPages = 0;
    continue;
  }
  if (Atomics.load(ctl, VCPU.ack) !== 1) {
    Atomics.store(ctl, VCPU.ack, 1);
    Atomics.notify(ctl, VCPU.ack);
  }
  if (workload.kind === 'none') {
    // An idle guest: sleep until asked to stop.
    Atomics.wait(ctl, VCPU.request, REQ_RUN, 1000);
    publishThreadCpu(data.cpuSlots, data.cpuSlot);
    continue;
  }
  for (let i = 0; i < BATCH; i++) {
    const b = rangeBlock[pos];
    const p = rangePage[pos];
    const seg = segs[b][segmentOf(p)];
    const off = offsetInSegment(p);
    seg[off] = (seg[off] + 1) & 0xff;
    Atomics.or(dirty[b], p >>> 5, 1 << (p & 31));
    written++;
    if (++pos === workload.pages) {
      pos = 0;
      loops++;
    }
  }
  if (pagesPerMs > 0) {
    budgetPages += BATCH;
    const ahead = budgetPages / pagesPerMs - (performance.now() - budgetStart);
    if (ahead > 1) Atomics.wait(sleeper, 0, 0, ahead);
    if (budgetPages > 1e6) {
      budgetStart = performance.now();
      budgetPages = 0;
    }
  }
  const throttle = Atomics.load(ctl, VCPU.throttle);
  if (throttle > 0) {
    const worked = performance.now() - workStart;
    if (worked >= 1) {
      Atomics.wait(sleeper, 0, 0, (worked * throttle) / (100 - throttle));
      workStart = performance.now();
      // The rate cap must not make up for time the throttle took away.
      budgetStart = workStart;
      budgetPages = 0;
    }
  } else {
    workStart = performance.now();
  }
  if ((written & 0xffff) < BATCH) publishThreadCpu(data.cpuSlots, data.cpuSlot);
}
