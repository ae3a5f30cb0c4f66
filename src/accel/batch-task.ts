// A batch task: one channel's handle on the accelerator. It classifies the pages of one packet
// at a time (or a few, pipelined) as zero or normal: it takes a descriptor slot, fills one
// COMPVAL descriptor (pattern 0) per page, hands them to its WQ's submitter as BATCHes (or
// single descriptors), waits for the records, and checks on the CPU every page the device did
// not decide.
//
// Hot path: no allocation per page, no postMessage, no JSON, no BigInt. Descriptor templates
// are written once per slot; per page only the two source-address words and the record's
// status word are written, and per page only the record's first word is read back.

import {
  M_NSUB,
  M_TMPL_COUNT,
  M_TMPL_SIZE,
  M_WATCH,
  MAX_TASKS,
  TASK_FREE,
  TASK_OPEN,
  TASK_RETIRED,
  type ArenaView,
} from './arena.js';
import { K, TaskCounters, type AccelCounters, type FallbackReason } from './counters.js';
import { blockMemory, cpuZeroPages, isZeroInBlock } from './cpu-zero.js';
import { hiWord } from './dsa/address.js';
import { RecWord } from './dsa/completion.js';
import {
  DESCRIPTOR_WORDS,
  DescWord,
  setSourceWords,
  writeDescriptorWords,
} from './dsa/descriptor.js';
import { C_EPOCH, enabledIn } from './dsa/emu/registers.js';
import { Flag, Opcode, Status } from './dsa/opcodes.js';
import type { AcceleratorClient } from './driver.js';
import type { AccelTargetHandle, DevicePort } from './handle.js';
import { M_HW_SEQ } from './hw/completion-shared.js';
import { noteTrouble } from './hw/wq-state.js';
import { PageRequest } from './page-request.js';
import { acquireSlot, releaseSlot, slotReclaimable, stampSlot } from './slots.js';
import { enterGate, leaveGate } from './submit-gate.js';
import { submitterFor, type Submitter, type SubmittingTask } from './submit.js';
import { OUTCOME_DEADLINE, OUTCOME_DONE, OUTCOME_HALTED, waitForRecords } from './wait.js';
import { mulWide } from '../util/wide-math.js';

export class BatchTask implements SubmittingTask {
  /** @internal */
  readonly arena: ArenaView;
  private readonly w: Int32Array;
  /** Task table index. */
  readonly index: number;
  /** @internal */
  readonly taskCounters: TaskCounters;
  /** @internal */
  readonly targetIndex: number;
  /** @internal */
  readonly maxRetries: number;
  private readonly port: DevicePort;
  private readonly submitter: Submitter;
  private readonly isHw: boolean;
  private readonly deviceIndex: number;
  /** Pages per sub-request: a BATCH's members, or 1 where the WQ takes no batches. */
  private readonly perSub: number;
  /** Device address of the arena's byte 0. */
  private readonly arenaBase: number;
  /** Descriptor flags: emulated completions raise interrupts (RCI); user-space hardware ones cannot. */
  private readonly rci: number;
  private slotHint: number;
  private closed = false;
  /** Requests to reuse; made with one, so that every task's array holds objects to V8. */
  private readonly pool: PageRequest[];
  /** "dsa-emu:dsa0/wq0.0" */
  readonly target: string;

  constructor(
    private readonly client: AcceleratorClient,
    readonly channel: number,
    target: AccelTargetHandle,
    readonly maxPages: number,
    readonly pageSize: number,
    /** pages each checked unit counts as (BatchTaskOptions.pagesPerUnit) */
    unit = 1,
  ) {
    const h = client.handle;
    this.arena = client.arena;
    this.w = this.arena.i32;
    this.target = target.text;
    this.targetIndex = h.targets.indexOf(target);
    this.deviceIndex = target.device;
    this.maxRetries = h.submitRetries;
    this.port = client.ports[target.device]!;
    const hw = this.port.hw;
    this.isHw = !!hw;
    const q = hw
      ? {
          mode: hw.mode,
          group: 0,
          maxBatchSize: hw.submit === 'write' && !hw.batchOverWrite ? 1 : hw.maxBatchSize,
          maxTransferSize: hw.maxTransferSize,
        }
      : this.port.handle!.wqs[target.wq];
    this.perSub = q.maxBatchSize >= 2 ? q.maxBatchSize : 1;
    this.arenaBase = h.arenaBase;
    this.rci = hw ? 0 : Flag.RCI;
    if (!Number.isInteger(pageSize) || pageSize < 8 || pageSize > q.maxTransferSize) {
      throw new RangeError(
        `page size ${pageSize} must be between 8 and ${target.text}'s max_transfer_size ${q.maxTransferSize}`,
      );
    }
    const emu = hw
      ? undefined
      : { ring: this.port.rings[target.wq], regs: this.port.words, group: q.group };
    this.submitter = submitterFor(this, q.mode === 'shared', hw, emu);
    // A fresh entry, or a closed task's, whose counters this task goes on from.
    let index = -1;
    for (let t = 0; t < 2 * MAX_TASKS && index < 0; t++) {
      const from = t < MAX_TASKS ? TASK_FREE : TASK_RETIRED;
      const e = t % MAX_TASKS;
      if (Atomics.compareExchange(this.w, this.arena.taskState(e), from, TASK_OPEN) === from)
        index = e;
    }
    if (index < 0) throw new Error(`too many batch tasks (at most ${MAX_TASKS} open at once)`);
    this.index = index;
    this.taskCounters = new TaskCounters(this.arena.f64, this.arena.taskCounters(index), unit);
    this.slotHint = (channel * 2) % h.layout.slots;
    this.pool = [this.newRequest()];
  }

  private newRequest(): PageRequest {
    const r = new PageRequest();
    this.client.requests.push(r);
    return r;
  }

  /** This task's counters. */
  counters(): AccelCounters {
    return this.taskCounters.snapshot();
  }

  /**
   * Classify `count` pages of `block`: page i is bytes [offset + pages[i]*pageSize, +pageSize)
   * (`offset`: where the block's page 0 starts in the buffer, see src/ram/page-aligned.ts).
   * Sets results[i] = 1 for a zero page, 0 for a normal one; resolves to the number of zero
   * pages. Never rejects because of the device: whatever it does not finish is checked on the
   * CPU. Up to `slots` requests may be in flight (pipelining).
   */
  async zeroPages(
    block: SharedArrayBuffer,
    pages: Uint32Array,
    count: number,
    results: Uint8Array,
    offset = 0,
  ): Promise<number> {
    this.validate(block, pages, count, results, offset);
    if (count === 0) return 0;
    const r = this.pool.pop() ?? this.newRequest();
    r.offset = offset;
    this.client.hold();
    try {
      const onCpu = this.start(r, block, pages, count, results);
      if (onCpu >= 0) return onCpu;
      let reason: FallbackReason = 'submitFailed';
      let nsub = 0;
      // The gate: closing the accelerator waits for this before it closes WQ fds and portals.
      if (enterGate(this.w)) {
        try {
          nsub = await this.submitter.submit(r, count);
        } finally {
          leaveGate(this.w);
        }
      }
      if (nsub < r.nsubTotal) reason = this.unsubmitted(r, nsub);
      const outcome = await waitForRecords(this, r, nsub);
      return this.finish(r, block, pages, count, results, nsub, outcome, reason);
    } finally {
      this.client.release();
      this.pool.push(r);
    }
  }

  /** Retire the task: its counters stay in the totals; its entry can be taken again. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    Atomics.store(this.w, this.arena.taskState(this.index), TASK_RETIRED);
    this.client.forgetTask(this, this.pool);
  }

  /** @internal The device is enabled and still in `epoch`. */
  deviceUsable(epoch: number): boolean {
    return enabledIn(this.port.words, epoch);
  }

  /** Ask dsa_completion to look at the kernel WQ's sysfs state (hw/wq-state.ts). */
  private hwTrouble(): void {
    noteTrouble(this.port.words);
    this.client.kickCompletion();
  }

  /** @internal A request's slot is submitted: a hardware dsa_completion must look at it. */
  submitted(): void {
    if (this.isHw) this.client.kickCompletion();
  }

  /** Sub-request `s` could not be submitted: forget it, and say why. */
  private unsubmitted(r: PageRequest, s: number): FallbackReason {
    Atomics.store(this.w, this.arena.meta(r.slot, M_NSUB), s);
    if (this.isHw) this.hwTrouble();
    return this.deviceUsable(r.epoch) ? 'submitFailed' : 'deviceHalted';
  }

  private validate(
    block: SharedArrayBuffer,
    pages: Uint32Array,
    count: number,
    results: Uint8Array,
    offset: number,
  ): void {
    if (this.closed) throw new Error('the batch task is closed');
    if (!(block instanceof SharedArrayBuffer))
      throw new TypeError('block must be a SharedArrayBuffer');
    if (!Number.isInteger(offset) || offset < 0 || offset >= Math.max(1, block.byteLength))
      throw new RangeError(`offset ${offset} must be a byte index inside the block`);
    if (!Number.isInteger(count) || count < 0 || count > this.maxPages) {
      throw new RangeError(
        `count ${count} must be between 0 and the task's maxPages ${this.maxPages}`,
      );
    }
    if (pages.length < count || results.length < count) {
      throw new RangeError(
        `pages (${pages.length}) and results (${results.length}) must hold count ${count} entries`,
      );
    }
  }

  /**
   * Count the request, take and fill a slot: -1, or, when the request was finished on the CPU
   * instead (device halted, no free slot), its zero pages.
   */
  private start(
    r: PageRequest,
    block: SharedArrayBuffer,
    pages: Uint32Array,
    count: number,
    results: Uint8Array,
  ): number {
    this.taskCounters.add(K.requests, 1);
    this.taskCounters.addPages(K.pages, count);
    const epoch = Atomics.load(this.port.words, C_EPOCH);
    if (!this.deviceUsable(epoch))
      return this.cpuRange(block, r.offset, pages, 0, count, results, 'deviceHalted');
    const slot = acquireSlot(this.arena, this.client.ports, this.slotHint);
    if (slot < 0) return this.cpuRange(block, r.offset, pages, 0, count, results, 'noSlot');
    this.slotHint = (slot + 1) % this.arena.layout.slots;
    const base = this.client.blockBase(block) + r.offset;
    this.fill(slot, base, block.byteLength - r.offset, pages, count);
    stampSlot(this.arena, slot, this.targetIndex, this.deviceIndex, epoch);
    if (this.isHw) Atomics.add(this.w, this.arena.meta(slot, M_HW_SEQ), 1);
    r.slot = slot;
    r.epoch = epoch;
    r.nsubTotal = Math.ceil(count / this.perSub);
    r.t0 = performance.now();
    r.deadline = r.t0 + this.client.handle.deadlineMs;
    return -1;
  }

  /** Per page: the source address words and a cleared record status. */
  private fill(slot: number, base: number, len: number, pages: Uint32Array, count: number): void {
    const a = this.arena;
    const w = this.w;
    const ps = this.pageSize;
    const tmplSize = a.meta(slot, M_TMPL_SIZE);
    const tmplCount = a.meta(slot, M_TMPL_COUNT);
    if (w[tmplSize] !== ps) {
      w[tmplSize] = ps;
      w[tmplCount] = 0;
    }
    const d0 = a.descByte(slot, 0) >> 2;
    const r0 = a.recordByte(slot, 0) >> 2;
    if (w[tmplCount] < count) {
      const flags = Flag.CRAV | Flag.RCR;
      for (let i = w[tmplCount]; i < count; i++) {
        const rec = this.arenaBase + (r0 + i * 8) * 4;
        const d = d0 + i * DESCRIPTOR_WORDS;
        writeDescriptorWords(w, d, Opcode.COMPVAL, flags, rec | 0, hiWord(rec), 0, 0, ps, 0);
      }
      w[tmplCount] = count;
    }
    for (let i = 0; i < count; i++) {
      const off = mulWide(pages[i], ps);
      if (off + ps > len) {
        releaseSlot(a, slot, true);
        throw new RangeError(`page ${pages[i]} (entry ${i}) is outside the ${len}-byte block`);
      }
      const src = base + off;
      // The low word's bits: `| 0` stays int32 where `>>> 0` would not.
      setSourceWords(w, d0 + i * DESCRIPTOR_WORDS, src | 0, hiWord(src));
      w[r0 + i * 8 + RecWord.STATUS_RESULT] = 0;
    }
  }

  /** @internal Write sub-request `s` into `r.bd` and record its watched completion record. */
  prepareSub(r: PageRequest, s: number, count: number): void {
    const a = this.arena;
    const w = this.w;
    const bd = r.bd;
    const slot = r.slot;
    const start = s * this.perSub;
    const n = Math.min(this.perSub, count - start);
    let watch: number;
    // The slot's interrupt handle: its own in 'direct' mode, dsa_completion's in 'thread' mode
    // (open.ts writes either there). One read for both, so that code warmed up in one mode
    // serves the other.
    const irq = this.rci ? w[a.meta(slot, a.layout.slotImsOffset + this.deviceIndex)] : 0;
    if (n >= 2) {
      const rec = a.batchRecordByte(slot, s);
      const recAddr = this.arenaBase + rec;
      const list = this.arenaBase + a.descByte(slot, start);
      writeDescriptorWords(
        bd,
        0,
        Opcode.BATCH,
        Flag.CRAV | Flag.RCR | this.rci,
        recAddr | 0,
        hiWord(recAddr),
        list | 0,
        hiWord(list),
        n,
        irq,
      );
      watch = rec >> 2;
      this.taskCounters.add(K.batches, 1);
    } else {
      const src = a.descByte(slot, start) >> 2;
      for (let i = 0; i < DESCRIPTOR_WORDS; i++) bd[i] = w[src + i];
      bd[DescWord.FLAGS_OPCODE] |= this.rci;
      bd[DescWord.INT_HANDLE] = irq;
      watch = a.recordByte(slot, start) >> 2;
      this.taskCounters.add(K.singleDescriptors, 1);
    }
    Atomics.store(w, watch, 0);
    w[a.meta(slot, M_WATCH + s)] = watch;
    Atomics.store(w, a.meta(slot, M_NSUB), s + 1);
  }

  /** Read the records into `results`, check the rest on the CPU, release the slot. */
  private finish(
    r: PageRequest,
    block: SharedArrayBuffer,
    pages: Uint32Array,
    count: number,
    results: Uint8Array,
    nsub: number,
    outcome: number,
    unsubmitted: FallbackReason,
  ): number {
    const a = this.arena;
    const w = this.w;
    const tc = this.taskCounters;
    const slot = r.slot;
    tc.add(K.completionWaitMs, performance.now() - r.t0);
    if (outcome === OUTCOME_DEADLINE) {
      tc.add(K.deadlinesMissed, 1);
      if (this.isHw) this.hwTrouble();
    }
    const covered = Math.min(count, nsub * this.perSub);
    const r0 = a.recordByte(slot, 0) >> 2;
    const ps = this.pageSize;
    const missing: FallbackReason =
      outcome === OUTCOME_DEADLINE
        ? 'deadline'
        : outcome === OUTCOME_HALTED
          ? 'deviceHalted'
          : 'batchFailure';
    let zeros = 0;
    let device = 0;
    let mem: ReturnType<typeof blockMemory> | undefined;
    let tCpu = 0;
    // Plain reads: the wait's Atomics.load of each sub-request's record, which the device
    // writes after its members' records, orders them (a record still being written after a
    // deadline reads as some status; 0 and failures go to the CPU).
    for (let i = 0; i < covered; i++) {
      const rec = w[r0 + i * 8];
      const code = rec & 0x7f;
      if (code === Status.SUCCESS) {
        const z = (rec >>> 8) & 0xff ? 0 : 1;
        results[i] = z;
        zeros += z;
        device++;
        continue;
      }
      if (!mem) {
        mem = blockMemory(block);
        tCpu = performance.now();
      }
      let from = 0;
      let reason: FallbackReason;
      if (code === Status.PAGE_FAULT_NOBOF) {
        // Partial completion: the first bytes_completed bytes matched the pattern.
        from = Math.min(ps, w[r0 + i * 8 + RecWord.BYTES_COMPLETED] >>> 0);
        reason = 'pageFault';
      } else reason = code === 0 ? missing : 'batchFailure';
      const z = isZeroInBlock(mem, r.offset + pages[i] * ps + from, ps - from) ? 1 : 0;
      results[i] = z;
      zeros += z;
      tc.fallback(reason, 1);
    }
    if (mem) tc.add(K.cpuFallbackMs, performance.now() - tCpu);
    tc.addPages(K.pagesDevice, device);
    tc.addPages(K.pagesCpu, covered - device);
    tc.addPages(K.zeroPages, zeros);
    if (covered < count)
      zeros += this.cpuRange(block, r.offset, pages, covered, count, results, unsubmitted);
    // A slot the device may still write to waits until it is done. A stopped kernel WQ (its
    // epoch moved on) writes nothing more: its slot is free at once.
    const deviceDone =
      outcome === OUTCOME_DONE ||
      nsub === 0 ||
      (this.isHw && slotReclaimable(a, this.client.ports, slot));
    releaseSlot(a, slot, deviceDone);
    return zeros;
  }

  /** Check pages [from, to) on the CPU, counted under `reason`. */
  private cpuRange(
    block: SharedArrayBuffer,
    offset: number,
    pages: Uint32Array,
    from: number,
    to: number,
    results: Uint8Array,
    reason: FallbackReason,
  ): number {
    const t = performance.now();
    const zeros = cpuZeroPages(block, pages, to, results, this.pageSize, offset, from);
    const tc = this.taskCounters;
    tc.fallback(reason, to - from);
    tc.addPages(K.pagesCpu, to - from);
    tc.addPages(K.zeroPages, zeros);
    tc.add(K.cpuFallbackMs, performance.now() - t);
    return zeros;
  }
}
