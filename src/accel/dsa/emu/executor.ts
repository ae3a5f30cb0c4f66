// How the emulated device executes one top-level descriptor: validation, the operation, BATCH
// (members in order, FENCE, runs of zero checks), DRAIN, and completion: the record (status
// word last, with Atomics.store) and the interrupt (RCI: an atomic add and Atomics.notify at
// the address of the IMS entry, which is what an MSI write is).
//
// A completion record address that is not 32-byte aligned (CRA_ALIGN) or does not translate
// (CRA_XLAT) cannot receive a record, so those go to the software error register (SWERR), as
// on hardware; inside a batch the member counts as failed.

import { storeRecordWords } from '../completion.js';
import { DESCRIPTOR_WORDS, DescWord } from '../descriptor.js';
import {
  COMPLETION_RECORD_ALIGN,
  DESCRIPTOR_LIST_ALIGN,
  FLAGS_MASK,
  Flag,
  MIN_BATCH_SIZE,
  Opcode,
  STATUS_MASK,
  Status,
} from '../opcodes.js';
import { Translation, type AddressSpace } from './address-space.js';
import { compvalBytes, Operations } from './operations.js';
import {
  C_HALT_AFTER,
  C_SHUTDOWN,
  C_STATE,
  DevState,
  E_BATCHES,
  E_BYTES,
  E_DESCRIPTORS,
  E_ERRORS,
  E_FAULTS,
  addEngineStat,
  haltDevice,
  imsAddrHi,
  imsAddrLo,
  imsValid,
  recordSwerr,
  type Registers,
} from './registers.js';
import { checkDescriptor, invalidFlagBits } from './validation.js';
import type { EmuWqHandle } from './handles.js';
import { W_COMPLETED, W_DRAIN_WAITERS, type WqRing } from './wq.js';
import { ZeroRuns } from './zero-run.js';

/** A descriptor a batch ran was aborted because the device halted. */
const ABORTED = -1;

export class Executor {
  private readonly w: Int32Array;
  private readonly ops: Operations;
  private readonly runs: ZeroRuns;
  private readonly tr = new Translation();
  private readonly ti = new Translation();
  private readonly tl = new Translation();
  /** The WQ of the top-level descriptor being run. */
  private wq!: EmuWqHandle;

  constructor(
    private readonly regs: Registers,
    private readonly as: AddressSpace,
    private readonly engine: number,
  ) {
    this.w = regs.words;
    this.ops = new Operations(as, regs, engine);
    this.runs = new ZeroRuns(as, this.ops.patterns);
  }

  /** Run descriptor `d` (copied out of `wq`; its dispatch number `dispatchNo`). */
  runTopLevel(d: Int32Array, wq: EmuWqHandle, ring: WqRing, dispatchNo: number): void {
    this.wq = wq;
    this.ops.maxTransfer = wq.maxTransferSize;
    const op = d[DescWord.FLAGS_OPCODE] >>> 24;
    if (op === Opcode.BATCH) this.runBatch(d, 0);
    else if (op === Opcode.DRAIN) this.runDrain(d, 0, ring, dispatchNo);
    else this.runOne(d, 0, false);
  }

  /**
   * Called once before each descriptor: false when the device halted (or must halt now, by
   * injection) and the engine must stop touching memory.
   */
  private mayRun(): boolean {
    const w = this.w;
    if (Atomics.load(w, C_HALT_AFTER) > 0 && Atomics.sub(w, C_HALT_AFTER, 1) === 1) {
      haltDevice(w);
    }
    return Atomics.load(w, C_STATE) === DevState.ENABLED;
  }

  private halted(): boolean {
    return Atomics.load(this.w, C_STATE) !== DevState.ENABLED;
  }

  /** Validation; returns the error status or 0, and the invalid_flags field in `extra`. */
  private check(d: Int32Array, at: number, inBatch: boolean): number {
    const bad = checkDescriptor(d, at, inBatch, this.wq, this.w);
    const flags = d[at + DescWord.FLAGS_OPCODE] & FLAGS_MASK;
    this.extra = bad === Status.INVALID_FLAGS ? invalidFlagBits(flags, this.wq) : 0;
    this.ops.blockOnFault = (flags & Flag.BOF) !== 0;
    return bad;
  }

  /** Record field 16 of the next record (invalid_flags). */
  private extra = 0;

  /** Run a non-batch descriptor; returns its status, or ABORTED when the device halted. */
  private runOne(d: Int32Array, at: number, inBatch: boolean): number {
    if (!this.mayRun()) return ABORTED;
    addEngineStat(this.regs, this.engine, E_DESCRIPTORS, 1);
    const bad = this.check(d, at, inBatch);
    const o = this.ops;
    if (!bad) o.run(d, at);
    if (this.halted()) return ABORTED;
    if (bad) return this.complete(d, at, bad, 0, 0, 0, 0);
    return this.complete(d, at, o.status, o.result, o.bytes, o.faultLo, o.faultHi);
  }

  /**
   * Write the completion record (when the flags ask for one) and raise the interrupt (RCI).
   * Returns the status the descriptor ended with (CRA_* when its record could not be written).
   */
  private complete(
    d: Int32Array,
    at: number,
    status: number,
    result: number,
    bytes: number,
    faultLo: number,
    faultHi: number,
  ): number {
    const fo = d[at + DescWord.FLAGS_OPCODE];
    const flags = fo & FLAGS_MASK;
    const op = fo >>> 24;
    const code = status & STATUS_MASK;
    const extra = this.extra;
    this.extra = 0;
    if (code !== Status.SUCCESS) {
      const stat = code === Status.PAGE_FAULT_NOBOF ? E_FAULTS : E_ERRORS;
      addEngineStat(this.regs, this.engine, stat, 1);
    }
    if (flags & Flag.CRAV) {
      const lo = d[at + DescWord.COMPLETION_LO];
      const hi = d[at + DescWord.COMPLETION_HI];
      if (lo & (COMPLETION_RECORD_ALIGN - 1)) {
        recordSwerr(this.w, Status.CRA_ALIGN, op, this.wq.index, lo, hi);
        return Status.CRA_ALIGN;
      }
      if (flags & Flag.RCR || code !== Status.SUCCESS) {
        const tr = this.tr;
        if (!this.as.translate(lo, hi, 32, tr)) {
          recordSwerr(this.w, Status.CRA_XLAT, op, this.wq.index, lo, hi);
          return Status.CRA_XLAT;
        }
        storeRecordWords(tr.i32, tr.off >>> 2, status, result, bytes, faultLo, faultHi, extra);
      }
    } else if (code !== Status.SUCCESS && code !== Status.SUCCESS_PRED) {
      const lo = d[at + DescWord.ADDR16_LO];
      recordSwerr(this.w, status, op, this.wq.index, lo, d[at + DescWord.ADDR16_HI]);
    }
    if (flags & Flag.RCI) this.raise(d[at + DescWord.INT_HANDLE] & 0xffff);
    return status;
  }

  /** An interrupt: atomic add + notify at the address the IMS entry holds. */
  raise(handle: number): void {
    const w = this.w;
    if (!imsValid(w, handle)) return;
    const ti = this.ti;
    if (!this.as.translate(imsAddrLo(w, handle), imsAddrHi(w, handle), 4, ti)) return;
    const a = ti.i32;
    const idx = ti.off >>> 2;
    Atomics.add(a, idx, 1);
    Atomics.notify(a, idx);
  }

  private runDrain(d: Int32Array, at: number, ring: WqRing, dispatchNo: number): void {
    const w = ring.words;
    for (;;) {
      const done = Atomics.load(w, W_COMPLETED);
      if (done - dispatchNo >= 0) break;
      if (this.halted() || Atomics.load(this.w, C_SHUTDOWN)) return;
      Atomics.add(w, W_DRAIN_WAITERS, 1);
      Atomics.wait(w, W_COMPLETED, done, 50);
      Atomics.sub(w, W_DRAIN_WAITERS, 1);
    }
    this.complete(d, at, this.check(d, at, false) || Status.SUCCESS, 0, 0, 0, 0);
  }

  private runBatch(d: Int32Array, at: number): void {
    addEngineStat(this.regs, this.engine, E_BATCHES, 1);
    const bad = this.check(d, at, false);
    if (bad) {
      this.complete(d, at, bad, 0, 0, 0, 0);
      return;
    }
    const count = d[at + DescWord.SIZE] >>> 0;
    const listLo = d[at + DescWord.ADDR16_LO];
    if (count < MIN_BATCH_SIZE || count > this.wq.maxBatchSize) {
      this.complete(d, at, Status.DESC_CNT_ERANGE, 0, 0, 0, 0);
      return;
    }
    if (listLo & (DESCRIPTOR_LIST_ALIGN - 1)) {
      this.complete(d, at, Status.DESCLIST_ALIGN, 0, 0, 0, 0);
      return;
    }
    const tl = this.tl;
    const listOk = this.as.translate(listLo, d[at + DescWord.ADDR16_HI], count * 64, tl);
    const fetched = listOk ? count : Math.floor(tl.ok / 64);
    const list = fetched > 0 ? tl.i32 : d;
    const base = tl.off >>> 2;
    this.runs.reset();
    let failed = false;
    let done = 0;
    let fenced = false;
    for (let i = 0; i < fetched;) {
      const mAt = base + i * DESCRIPTOR_WORDS;
      if (list[mAt + DescWord.FLAGS_OPCODE] & Flag.FENCE && failed) {
        fenced = true;
        break;
      }
      const run = this.zeroRun(list, base, i, fetched);
      if (run < 0) return;
      if (run > 0) {
        i += run;
        done += run;
        continue;
      }
      const st = this.runOne(list, mAt, true);
      if (st === ABORTED) return;
      if ((st & STATUS_MASK) !== Status.SUCCESS) failed = true;
      i++;
      done++;
    }
    if (this.halted()) return;
    if (!listOk && !fenced) {
      this.complete(d, at, Status.BATCH_PAGE_FAULT, 0, done, tl.faultLo, tl.faultHi);
      this.as.consumeFault(tl.faultEntry);
    } else if (failed) {
      this.complete(d, at, Status.BATCH_FAIL, 1, done, 0, 0);
    } else {
      this.complete(d, at, Status.SUCCESS, 0, done, 0, 0);
    }
  }

  /**
   * Run the members from `i` that form a run of zero checks (zero-run.ts) together. Returns how
   * many members it completed (0: run member `i` alone), or -1 if the device halted.
   */
  private zeroRun(list: Int32Array, base: number, i: number, fetched: number): number {
    if (Atomics.load(this.w, C_HALT_AFTER) > 0) return 0;
    const runs = this.runs;
    const count = runs.classify(list, base, i, fetched, this.wq);
    if (count === 0) return 0;
    if (this.halted()) return -1;
    const m = base + i * DESCRIPTOR_WORDS;
    const fo = list[m + DescWord.FLAGS_OPCODE];
    const size = list[m + DescWord.SIZE] >>> 0;
    addEngineStat(this.regs, this.engine, E_DESCRIPTORS, count);
    addEngineStat(this.regs, this.engine, E_BYTES, count * size);
    if (!(fo & Flag.CRAV)) return count;
    const tr = this.tr;
    const res = runs.results;
    const contiguous =
      runs.recordsContiguous &&
      this.as.translate(
        list[m + DescWord.COMPLETION_LO],
        list[m + DescWord.COMPLETION_HI],
        count * 32,
        tr,
      );
    for (let j = 0; j < count; j++) {
      const mm = res[j];
      const result = mm < 0 ? 0 : 1;
      const bytes = mm < 0 ? 0 : compvalBytes(mm, size);
      if (!contiguous)
        this.complete(list, m + j * DESCRIPTOR_WORDS, Status.SUCCESS, result, bytes, 0, 0);
      else if (fo & Flag.RCR) {
        storeRecordWords(tr.i32, (tr.off >>> 2) + j * 8, Status.SUCCESS, result, bytes, 0, 0, 0);
      }
    }
    return count;
  }
}
