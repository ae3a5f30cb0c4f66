// An engine of the emulated device: the loop a `dsa0/engine0.N` worker thread runs.
//
// It takes descriptors from the work queues of its group (weighted by WQ priority), executes
// them over registered memory, writes completion records (status word last, with
// Atomics.store) and raises the interrupts descriptors ask for (RCI: an atomic add and
// Atomics.notify at the address of the IMS entry, which is what an MSI write is). When every
// WQ of its group is empty it sleeps in Atomics.wait on the group's doorbell: no polling.
//
// Validation follows hardware: unknown opcode → BAD_OPCODE, BATCH or DRAIN inside a batch →
// BAD_OPCODE, operation-specific flags the operation does not define → INVALID_FLAGS, batch count
// outside 2..max_batch_size → DESC_CNT_ERANGE, descriptor list not 64-byte aligned →
// DESCLIST_ALIGN, xfer_size over the WQ's max_transfer_size → XFER_ERANGE, RCI with an invalid
// int_handle → INT_HANDLE_INVAL. A completion record address that is not 32-byte aligned
// (CRA_ALIGN) or does not translate (CRA_XLAT) cannot receive a record, so those go to the
// software error register (SWERR), as on hardware; inside a batch the member counts as failed.

import { Translation, AddressSpace } from './address-space.js';
import { TWO_32, uint32 } from '../address.js';
import { storeRecordWords } from '../completion.js';
import { DESCRIPTOR_WORDS } from '../descriptor.js';
import { EMULATED_OPCODES, Flag, Opcode, Status, STATUS_WRITE_FAULT } from '../opcodes.js';
import type { EmuDeviceHandle, EmuWqHandle } from './handles.js';
import {
  C_CPU_ACKS,
  C_CPU_REQ,
  C_DOORBELL,
  C_ENGINE_DELAY_US,
  C_ENGINES_RUNNING,
  C_ENGINE_ACK,
  C_HALT_GEN,
  C_HALT_ACKS,
  C_HALT_AFTER,
  C_HALT_IRQ_DONE,
  C_PAUSED,
  C_SHUTDOWN,
  C_SLEEPERS,
  C_STATE,
  DevState,
  E_BATCHES,
  E_BYTES,
  E_CPU_MS,
  E_DESCRIPTORS,
  E_ERRORS,
  E_FAULTS,
  addEngineStat,
  haltDevice,
  imsAddrHi,
  imsAddrLo,
  imsValid,
  miscImsHandles,
  openRegisters,
  recordSwerr,
  setEngineStat,
  type Registers,
} from './registers.js';
import { W_COMPLETED, W_DRAIN_WAITERS, dequeue, openRing, ringReady, type WqRing } from './wq.js';
import { threadCpuMs } from '../../../util/thread-cpu.js';

/** Compare chunk: a zero (or pattern) buffer this big is compared against in one memcmp. */
const CHUNK = 512 * 1024;
/** Descriptors executed by a batch were aborted because the device halted. */
const ABORTED = -1;
/** Flags a member may carry and still be part of a coalesced zero run. */
const RUN_FLAGS_OK = Flag.CRAV | Flag.RCR | Flag.CC | Flag.BOF;
/** Generic flags plus, per opcode, the operation-specific ones it defines (none here). */
const OP_SPECIFIC_FLAGS = 0xff0000;

export interface EngineWorkerData {
  device: EmuDeviceHandle;
  /** Index in device.engines. */
  engine: number;
}

export class Engine {
  private readonly regs: Registers;
  private readonly w: Int32Array;
  private readonly as: AddressSpace;
  private readonly wqs: EmuWqHandle[];
  private readonly rings: WqRing[];
  private readonly wrr: number[];
  private readonly group: number;
  private readonly index: number;
  /** The top-level descriptor being run (copied out of the WQ). */
  private readonly desc = new Int32Array(DESCRIPTOR_WORDS);
  private readonly t = new Translation();
  private readonly t2 = new Translation();
  private readonly tr = new Translation();
  private readonly ti = new Translation();
  private readonly tl = new Translation();
  private readonly zero = Buffer.alloc(CHUNK);
  private readonly pattern = Buffer.alloc(CHUNK);
  private readonly pattern8 = Buffer.alloc(8);
  private patternLo = 0;
  private patternHi = 0;
  /** The WQ (device index) of the descriptor being run, for SWERR. */
  private wqIndex = 0;
  private maxTransfer = 0;
  private maxBatch = 0;
  // Outputs of an operation (no allocation per descriptor).
  private rStatus = 0;
  private rResult = 0;
  private rBytes = 0;
  private rFaultLo = 0;
  private rFaultHi = 0;
  private cpuReqSeen = 0;
  private lastCpuPublish = 0;
  /** The halt generation this engine acknowledged. */
  private haltAcked = 0;

  constructor(device: EmuDeviceHandle, engineIndex: number) {
    this.regs = openRegisters(device.registers);
    this.w = this.regs.words;
    this.as = AddressSpace.attach(device.addressSpace);
    this.as.enableTranslation();
    const eng = device.engines[engineIndex];
    this.index = eng.index;
    this.group = eng.group;
    this.wqs = device.wqs.filter((q) => q.group === eng.group && q.enabled);
    this.rings = this.wqs.map((q) => openRing(q.ring));
    this.wrr = this.wqs.map(() => 0);
    this.cpuReqSeen = Atomics.load(this.w, C_CPU_REQ);
  }

  /** Run until the device shuts down. */
  run(): void {
    const w = this.w;
    const doorbell = C_DOORBELL + this.group;
    const sleepers = C_SLEEPERS + this.group;
    Atomics.add(w, C_ENGINES_RUNNING, 1);
    this.publishCpu();
    for (;;) {
      if (Atomics.load(w, C_SHUTDOWN)) break;
      this.serveCpuRequest();
      const state = Atomics.load(w, C_STATE);
      if (state !== DevState.ENABLED) {
        this.idleWhileNotEnabled(state);
        continue;
      }
      if (Atomics.load(w, C_PAUSED)) {
        const seen = Atomics.load(w, doorbell);
        if (Atomics.load(w, C_PAUSED)) Atomics.wait(w, doorbell, seen);
        continue;
      }
      this.as.sync();
      const q = this.pick();
      if (q >= 0) {
        const n = dequeue(this.rings[q], this.desc, 0);
        if (n >= 0) this.runTopLevel(q, n);
        continue;
      }
      // Idle: announce the sleep, re-check, then wait for a doorbell.
      const seen = Atomics.load(w, doorbell);
      Atomics.add(w, sleepers, 1);
      if (this.pick() < 0 && !Atomics.load(w, C_SHUTDOWN) && !this.cpuRequested()) {
        if (performance.now() - this.lastCpuPublish > 200) this.publishCpu();
        Atomics.wait(w, doorbell, seen);
      }
      Atomics.sub(w, sleepers, 1);
    }
    this.publishCpu();
    Atomics.sub(w, C_ENGINES_RUNNING, 1);
    this.as.close();
  }

  private cpuRequested(): boolean {
    return Atomics.load(this.w, C_CPU_REQ) !== this.cpuReqSeen;
  }

  private serveCpuRequest(): void {
    const req = Atomics.load(this.w, C_CPU_REQ);
    if (req === this.cpuReqSeen) return;
    this.cpuReqSeen = req;
    this.publishCpu();
    Atomics.add(this.w, C_CPU_ACKS, 1);
    Atomics.notify(this.w, C_CPU_ACKS);
  }

  private publishCpu(): void {
    setEngineStat(this.regs, this.index, E_CPU_MS, threadCpuMs());
    this.lastCpuPublish = performance.now();
  }

  private idleWhileNotEnabled(state: number): void {
    const w = this.w;
    const gen = Atomics.load(w, C_HALT_GEN);
    if (state === DevState.HALTED && this.haltAcked !== gen) {
      // Stopped: nothing of this engine touches memory until the device is enabled again.
      this.haltAcked = gen;
      this.raiseHaltInterrupts();
      Atomics.store(w, C_ENGINE_ACK + this.index, gen);
      Atomics.add(w, C_HALT_ACKS, 1);
      Atomics.notify(w, C_HALT_ACKS);
    }
    // Woken by a state change, a shutdown or a CPU request (all ring the doorbells).
    const seen = Atomics.load(w, C_DOORBELL + this.group);
    if (
      Atomics.load(w, C_STATE) === state &&
      !Atomics.load(w, C_SHUTDOWN) &&
      !this.cpuRequested()
    ) {
      Atomics.wait(w, C_DOORBELL + this.group, seen);
    }
  }

  private raiseHaltInterrupts(): void {
    if (Atomics.compareExchange(this.w, C_HALT_IRQ_DONE, 0, 1) !== 0) return;
    this.as.sync(true);
    for (const h of miscImsHandles(this.w)) this.raise(h);
  }

  /** Smooth weighted round-robin over the ready WQs of the group, by priority. */
  private pick(): number {
    let best = -1;
    let total = 0;
    for (let i = 0; i < this.rings.length; i++) {
      if (!ringReady(this.rings[i])) continue;
      const p = this.wqs[i].priority;
      this.wrr[i] += p;
      total += p;
      if (best < 0 || this.wrr[i] > this.wrr[best]) best = i;
    }
    if (best >= 0) this.wrr[best] -= total;
    return best;
  }

  private runTopLevel(q: number, dispatchNo: number): void {
    const wq = this.wqs[q];
    const ring = this.rings[q];
    this.wqIndex = wq.index;
    this.maxTransfer = wq.maxTransferSize;
    this.maxBatch = wq.maxBatchSize;
    const delay = Atomics.load(this.w, C_ENGINE_DELAY_US);
    if (delay > 0) {
      Atomics.wait(this.w, C_STATE, DevState.ENABLED, delay / 1000);
    }
    if (Atomics.load(this.w, C_STATE) === DevState.ENABLED) {
      const d = this.desc;
      const op = d[1] >>> 24;
      if (op === Opcode.BATCH) this.runBatch(d, 0);
      else if (op === Opcode.DRAIN) this.runDrain(d, 0, ring, dispatchNo);
      else this.runOne(d, 0, false);
    }
    Atomics.add(ring.words, W_COMPLETED, 1);
    if (Atomics.load(ring.words, W_DRAIN_WAITERS) > 0) Atomics.notify(ring.words, W_COMPLETED);
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

  /** Validation common to all descriptors; returns an error status or 0. */
  private check(d: Int32Array, at: number, inBatch: boolean): number {
    const fo = d[at + 1];
    const op = fo >>> 24;
    const flags = fo & 0xffffff;
    if (!EMULATED_OPCODES.has(op) || (inBatch && (op === Opcode.BATCH || op === Opcode.DRAIN))) {
      return Status.BAD_OPCODE;
    }
    if (flags & OP_SPECIFIC_FLAGS) return Status.INVALID_FLAGS;
    if (flags & Flag.CRAV && d[at + 2] & 31) return Status.CRA_ALIGN;
    if (flags & Flag.RCI && !imsValid(this.w, d[at + 9] & 0xffff)) return Status.INT_HANDLE_INVAL;
    return 0;
  }

  /** Run a non-batch descriptor; returns its status, or ABORTED when the device halted. */
  private runOne(d: Int32Array, at: number, inBatch: boolean): number {
    if (!this.mayRun()) return ABORTED;
    addEngineStat(this.regs, this.index, E_DESCRIPTORS, 1);
    this.rResult = 0;
    this.rBytes = 0;
    this.rFaultLo = 0;
    this.rFaultHi = 0;
    let extra = 0;
    const bad = this.check(d, at, inBatch);
    if (bad) {
      this.rStatus = bad;
      if (bad === Status.INVALID_FLAGS) extra = d[at + 1] & OP_SPECIFIC_FLAGS;
    } else {
      switch (d[at + 1] >>> 24) {
        case Opcode.NOOP:
          this.rStatus = Status.SUCCESS;
          break;
        case Opcode.COMPVAL:
          this.compval(d, at);
          break;
        case Opcode.COMPARE:
          this.compare(d, at);
          break;
        case Opcode.MEMMOVE:
          this.memmove(d, at);
          break;
        case Opcode.MEMFILL:
          this.memfill(d, at);
          break;
        default:
          this.rStatus = Status.BAD_OPCODE;
      }
    }
    if (this.halted()) return ABORTED;
    return this.complete(
      d,
      at,
      this.rStatus,
      this.rResult,
      this.rBytes,
      this.rFaultLo,
      this.rFaultHi,
      extra,
    );
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
    extra: number,
  ): number {
    const flags = d[at + 1] & 0xffffff;
    const op = d[at + 1] >>> 24;
    const code = status & 0x7f;
    if (code !== Status.SUCCESS) {
      addEngineStat(
        this.regs,
        this.index,
        code === Status.PAGE_FAULT_NOBOF ? E_FAULTS : E_ERRORS,
        1,
      );
    }
    if (flags & Flag.CRAV) {
      const lo = d[at + 2];
      const hi = d[at + 3];
      if (lo & 31) {
        recordSwerr(this.w, Status.CRA_ALIGN, op, this.wqIndex, lo, hi);
        return Status.CRA_ALIGN;
      }
      if (flags & Flag.RCR || code !== Status.SUCCESS) {
        const tr = this.tr;
        if (!this.as.translate(lo, hi, 32, tr)) {
          recordSwerr(this.w, Status.CRA_XLAT, op, this.wqIndex, lo, hi);
          return Status.CRA_XLAT;
        }
        storeRecordWords(tr.i32, tr.off >>> 2, status, result, bytes, faultLo, faultHi, extra);
      }
    } else if (code !== Status.SUCCESS && code !== Status.SUCCESS_PRED) {
      recordSwerr(this.w, status, op, this.wqIndex, d[at + 4], d[at + 5]);
    }
    if (flags & Flag.RCI) this.raise(d[at + 9] & 0xffff);
    return status;
  }

  /** An interrupt: atomic add + notify at the address the IMS entry holds. */
  private raise(handle: number): void {
    const w = this.w;
    if (!imsValid(w, handle)) return;
    const ti = this.ti;
    if (!this.as.translate(imsAddrLo(w, handle), imsAddrHi(w, handle), 4, ti)) return;
    const a = ti.i32;
    const idx = ti.off >>> 2;
    Atomics.add(a, idx, 1);
    Atomics.notify(a, idx);
  }

  // ---- Operations ----

  private xferTooBig(size: number): boolean {
    if (size > this.maxTransfer) {
      this.rStatus = Status.XFER_ERANGE;
      return true;
    }
    return false;
  }

  private fault(t: Translation, write: boolean): void {
    this.rStatus = Status.PAGE_FAULT_NOBOF | (write ? STATUS_WRITE_FAULT : 0);
    this.rFaultLo = t.faultLo;
    this.rFaultHi = t.faultHi;
    this.as.consumeFault(t.faultEntry);
  }

  private compval(d: Int32Array, at: number): void {
    const size = d[at + 8] >>> 0;
    if (this.xferTooBig(size)) return;
    this.rStatus = Status.SUCCESS;
    if (size === 0) return;
    const t = this.t;
    const full = this.as.translate(d[at + 4], d[at + 5], size, t);
    const ok = t.ok;
    const mism = ok > 0 ? this.firstMismatch(t.buf, t.off, ok, d[at + 6], d[at + 7]) : -1;
    addEngineStat(this.regs, this.index, E_BYTES, mism < 0 ? ok : mism);
    if (mism >= 0) {
      this.rResult = 1;
      // The start of the first mismatching 8-byte word; exact in the tail below 8 bytes.
      const tail = size - (size % 8);
      this.rBytes = mism >= tail ? mism : mism - (mism % 8);
    } else if (!full) {
      this.rBytes = ok;
      this.fault(t, false);
      return;
    }
    const flags = d[at + 1];
    if (flags & Flag.CR && this.rResult !== (d[at + 10] & 1)) this.rStatus = Status.SUCCESS_PRED;
  }

  private compare(d: Int32Array, at: number): void {
    const size = d[at + 8] >>> 0;
    if (this.xferTooBig(size)) return;
    this.rStatus = Status.SUCCESS;
    if (size === 0) return;
    const a = this.t;
    const b = this.t2;
    const fa = this.as.translate(d[at + 4], d[at + 5], size, a);
    const fb = this.as.translate(d[at + 6], d[at + 7], size, b);
    const ok = Math.min(a.ok, b.ok);
    const mism = ok > 0 ? firstDifference(a.buf, a.off, b.buf, b.off, ok) : -1;
    if (mism >= 0) {
      this.rResult = 1;
      this.rBytes = mism;
    } else if (!fa || !fb) {
      this.rBytes = ok;
      this.fault(a.ok <= b.ok && !fa ? a : b, false);
      return;
    }
    if (d[at + 1] & Flag.CR && this.rResult !== (d[at + 10] & 1))
      this.rStatus = Status.SUCCESS_PRED;
  }

  private memmove(d: Int32Array, at: number): void {
    const size = d[at + 8] >>> 0;
    if (this.xferTooBig(size)) return;
    this.rStatus = Status.SUCCESS;
    if (size === 0) return;
    const srcLo = uint32(d[at + 4]);
    const srcHi = uint32(d[at + 5]);
    const dstLo = uint32(d[at + 6]);
    const dstHi = uint32(d[at + 7]);
    const src = srcHi * TWO_32 + srcLo;
    const dst = dstHi * TWO_32 + dstLo;
    // Overlapping with the destination above the source: the copy runs from the end.
    const descending = dst > src && dst < src + size;
    this.rResult = descending ? 1 : 0;
    const s = this.t;
    const t = this.t2;
    const fs = this.as.translate(srcLo, srcHi, size, s);
    const ft = this.as.translate(dstLo, dstHi, size, t);
    if (fs && ft) {
      s.buf.copy(t.buf, t.off, s.off, s.off + size);
      addEngineStat(this.regs, this.index, E_BYTES, size);
      return;
    }
    const writeFirst = t.ok < s.ok;
    // A descending copy that faults stops before copying anything; an ascending one copies
    // up to the first fault (bytes_completed), as hardware reports partial completions.
    const ok = descending ? 0 : Math.min(s.ok, t.ok);
    if (ok > 0) s.buf.copy(t.buf, t.off, s.off, s.off + ok);
    this.rBytes = ok;
    this.fault(writeFirst ? t : s, writeFirst);
  }

  private memfill(d: Int32Array, at: number): void {
    const size = d[at + 8] >>> 0;
    if (this.xferTooBig(size)) return;
    this.rStatus = Status.SUCCESS;
    if (size === 0) return;
    const t = this.t;
    const full = this.as.translate(d[at + 6], d[at + 7], size, t);
    const p = this.pattern8;
    p.writeInt32LE(d[at + 4], 0);
    p.writeInt32LE(d[at + 5], 4);
    if (t.ok > 0) t.buf.fill(p, t.off, t.off + t.ok);
    addEngineStat(this.regs, this.index, E_BYTES, t.ok);
    if (!full) {
      this.rBytes = t.ok;
      this.fault(t, true);
    }
  }

  private runDrain(d: Int32Array, at: number, ring: WqRing, dispatchNo: number): void {
    const w = ring.words;
    for (;;) {
      const done = Atomics.load(w, W_COMPLETED);
      if (done - dispatchNo >= 0) break;
      if (Atomics.load(this.w, C_STATE) !== DevState.ENABLED || Atomics.load(this.w, C_SHUTDOWN)) {
        return;
      }
      Atomics.add(w, W_DRAIN_WAITERS, 1);
      Atomics.wait(w, W_COMPLETED, done, 50);
      Atomics.sub(w, W_DRAIN_WAITERS, 1);
    }
    this.runOneAs(d, at, Status.SUCCESS);
  }

  /** Complete a top-level descriptor with a fixed status (DRAIN, batch errors). */
  private runOneAs(d: Int32Array, at: number, status: number): void {
    const bad = this.check(d, at, false);
    this.complete(
      d,
      at,
      bad || status,
      0,
      0,
      0,
      0,
      bad === Status.INVALID_FLAGS ? d[at + 1] & OP_SPECIFIC_FLAGS : 0,
    );
  }

  private runBatch(d: Int32Array, at: number): void {
    addEngineStat(this.regs, this.index, E_BATCHES, 1);
    const bad = this.check(d, at, false);
    if (bad) {
      this.complete(
        d,
        at,
        bad,
        0,
        0,
        0,
        0,
        bad === Status.INVALID_FLAGS ? d[at + 1] & OP_SPECIFIC_FLAGS : 0,
      );
      return;
    }
    const count = d[at + 8] >>> 0;
    const listLo = d[at + 4];
    const listHi = d[at + 5];
    if (count < 2 || count > this.maxBatch) {
      this.complete(d, at, Status.DESC_CNT_ERANGE, 0, 0, 0, 0, 0);
      return;
    }
    if (listLo & 63) {
      this.complete(d, at, Status.DESCLIST_ALIGN, 0, 0, 0, 0, 0);
      return;
    }
    const tl = this.tl;
    const listOk = this.as.translate(listLo, listHi, count * 64, tl);
    const fetched = listOk ? count : Math.floor(tl.ok / 64);
    const list = fetched > 0 ? tl.i32 : undefined;
    const base = tl.off >>> 2;
    this.runStart = -1;
    this.runEnd = -1;
    let failed = false;
    let done = 0;
    let fenced = false;
    for (let i = 0; i < fetched;) {
      const mAt = base + i * DESCRIPTOR_WORDS;
      const flags = list![mAt + 1] & 0xffffff;
      if (flags & Flag.FENCE && failed) {
        fenced = true;
        break;
      }
      const run = this.zeroRun(list!, base, i, fetched);
      if (run < 0) return;
      if (run > 0) {
        i += run;
        done += run;
        continue;
      }
      const st = this.runOne(list!, mAt, true);
      if (st === ABORTED) return;
      if ((st & 0x7f) !== Status.SUCCESS) failed = true;
      i++;
      done++;
    }
    if (this.halted()) return;
    if (!listOk && !fenced) {
      this.complete(d, at, Status.BATCH_PAGE_FAULT, 0, done, tl.faultLo, tl.faultHi, 0);
      this.as.consumeFault(tl.faultEntry);
    } else if (failed) {
      this.complete(d, at, Status.BATCH_FAIL, 1, done, 0, 0, 0);
    } else {
      this.complete(d, at, Status.SUCCESS, 0, done, 0, 0, 0);
    }
  }

  // The run of coalescable members found by the last scan, as batch member indices.
  private runStart = -1;
  private runEnd = -1;
  private runRecContig = false;

  /**
   * Find how far from member `i` the members are COMPVAL with pattern 0, the same flags and
   * size, over contiguous memory (one packet's consecutive pages), with aligned records.
   */
  private scanRun(list: Int32Array, base: number, i: number, fetched: number): void {
    this.runStart = i;
    this.runEnd = i;
    const m = base + i * DESCRIPTOR_WORDS;
    const fo = list[m + 1];
    if (fo >>> 24 !== Opcode.COMPVAL || (fo & 0xffffff & ~RUN_FLAGS_OK) !== 0) return;
    if (list[m + 6] !== 0 || list[m + 7] !== 0) return;
    const size = list[m + 8] >>> 0;
    if (size === 0 || size > this.maxTransfer) return;
    if (fo & Flag.CRAV && list[m + 2] & 31) return;
    const src0 = uint32(list[m + 5]) * TWO_32 + uint32(list[m + 4]);
    const rec0 = uint32(list[m + 3]) * TWO_32 + uint32(list[m + 2]);
    let n = 1;
    let recContig = true;
    const maxRun = Math.min(fetched - i, Math.floor(2 ** 30 / size));
    while (n < maxRun) {
      const k = m + n * DESCRIPTOR_WORDS;
      if (list[k + 1] !== fo || list[k + 6] !== 0 || list[k + 7] !== 0) break;
      if (list[k + 8] >>> 0 !== size) break;
      if (uint32(list[k + 5]) * TWO_32 + uint32(list[k + 4]) !== src0 + n * size) break;
      if (list[k + 2] & 31) break;
      if (uint32(list[k + 3]) * TWO_32 + uint32(list[k + 2]) !== rec0 + n * 32) recContig = false;
      n++;
    }
    this.runEnd = i + n;
    this.runRecContig = recContig;
  }

  /**
   * Run a run of zero-pattern COMPVAL members (see scanRun) together: one memcmp over the
   * whole run first (a zero packet costs one call), then groups of 64 KiB, then members, so
   * each byte is compared about once. Every member gets the record per-member execution would
   * write: SUCCESS with result 0, or result 1 and bytes_completed at the first mismatching
   * 8-byte word. Returns how many members it completed (0: run member `i` normally), or -1 if
   * the device halted. Only the emulator's speed differs from running them one by one.
   */
  private zeroRun(list: Int32Array, base: number, i: number, fetched: number): number {
    const w = this.w;
    if (Atomics.load(w, C_HALT_AFTER) > 0) return 0;
    if (i < this.runStart || i >= this.runEnd) this.scanRun(list, base, i, fetched);
    const n = this.runEnd - i;
    if (n < 2) return 0;
    const m = base + i * DESCRIPTOR_WORDS;
    const fo = list[m + 1];
    const size = list[m + 8] >>> 0;
    const t = this.t;
    this.as.translate(list[m + 4], list[m + 5], n * size, t);
    // Members wholly inside the accessible prefix run here; the rest (a fault) one by one.
    const count = Math.floor(t.ok / size);
    if (count < n) this.runEnd = i + count;
    if (count < 2) return 0;
    const buf = t.buf;
    const off = t.off;
    const res =
      this.runResults.length >= count ? this.runResults : (this.runResults = new Int32Array(count));
    // A range whose first byte is not zero is not zero: a packet or group that starts with a
    // normal page (half of them, on a half-normal guest) skips the memcmp call.
    if (buf[off] === 0 && this.isZero(buf, off, count * size)) res.fill(-1, 0, count);
    else {
      const group = Math.max(1, Math.floor(65536 / size));
      for (let g0 = 0; g0 < count; g0 += group) {
        const g = Math.min(group, count - g0);
        if (g > 1 && buf[off + g0 * size] === 0 && this.isZero(buf, off + g0 * size, g * size)) {
          res.fill(-1, g0, g0 + g);
          continue;
        }
        for (let k = g0; k < g0 + g; k++) res[k] = this.zeroOrMismatch(buf, off + k * size, size);
      }
    }
    if (Atomics.load(w, C_STATE) !== DevState.ENABLED) return -1;
    addEngineStat(this.regs, this.index, E_DESCRIPTORS, count);
    addEngineStat(this.regs, this.index, E_BYTES, count * size);
    if (!(fo & Flag.CRAV)) return count;
    const tail = size - (size % 8);
    const tr = this.tr;
    const contiguous =
      this.runRecContig && this.as.translate(list[m + 2], list[m + 3], count * 32, tr);
    for (let j = 0; j < count; j++) {
      const mm = res[j];
      const result = mm < 0 ? 0 : 1;
      const bytes = mm < 0 ? 0 : mm >= tail ? mm : mm - (mm % 8);
      if (contiguous) {
        if (fo & Flag.RCR)
          storeRecordWords(tr.i32, (tr.off >>> 2) + j * 8, Status.SUCCESS, result, bytes, 0, 0, 0);
      } else this.complete(list, m + j * DESCRIPTOR_WORDS, Status.SUCCESS, result, bytes, 0, 0, 0);
    }
    return count;
  }

  private runResults = new Int32Array(1024);

  /** -1 when buf[off, off+len) is zero, else the offset of its first non-zero byte. */
  private zeroOrMismatch(buf: Buffer, off: number, len: number): number {
    if (buf[off] !== 0) return 0;
    if (this.isZero(buf, off, len)) return -1;
    // Binary search with memcmp for the first non-zero byte, then bytes.
    let lo = 0;
    let hi = len;
    const z = this.zero;
    while (hi - lo > 64) {
      const mid = lo + ((hi - lo) >> 1);
      if (buf.compare(z, 0, mid - lo, off + lo, off + mid) !== 0) hi = mid;
      else lo = mid;
    }
    for (let k = lo; k < hi; k++) if (buf[off + k] !== 0) return k;
    return -1;
  }

  /** buf[off, off+len) is all zero. */
  private isZero(buf: Buffer, off: number, len: number): boolean {
    const z = this.zero;
    for (let r = 0; r < len; r += CHUNK) {
      const n = Math.min(CHUNK, len - r);
      if (buf.compare(z, 0, n, off + r, off + r + n) !== 0) return false;
    }
    return true;
  }

  /** Offset of the first byte of buf[off, off+len) that differs from the 8-byte pattern. */
  private firstMismatch(buf: Buffer, off: number, len: number, pLo: number, pHi: number): number {
    const ref = (pLo | pHi) === 0 ? this.zero : this.patternBuffer(pLo, pHi);
    for (let r = 0; r < len; r += CHUNK) {
      const n = Math.min(CHUNK, len - r);
      if (buf.compare(ref, 0, n, off + r, off + r + n) !== 0) {
        return r + firstDifference(buf, off + r, ref, 0, n);
      }
    }
    return -1;
  }

  private patternBuffer(lo: number, hi: number): Buffer {
    if (lo !== this.patternLo || hi !== this.patternHi) {
      this.pattern8.writeInt32LE(lo, 0);
      this.pattern8.writeInt32LE(hi, 4);
      this.pattern.fill(this.pattern8);
      this.patternLo = lo;
      this.patternHi = hi;
    }
    return this.pattern;
  }
}

const LOCATE_STEPS = [65536, 4096, 512, 64];

/** Exact offset of the first differing byte of a[ao, ao+len) and b[bo, bo+len), or -1. */
export function firstDifference(a: Buffer, ao: number, b: Buffer, bo: number, len: number): number {
  // Narrow down with memcmp over shrinking steps, then look at single bytes.
  let start = 0;
  let end = len;
  for (let si = 0; si < LOCATE_STEPS.length; si++) {
    const step = LOCATE_STEPS[si];
    if (end - start <= step) continue;
    let found = false;
    for (let r = start; r < end; r += step) {
      const n = Math.min(step, end - r);
      if (a.compare(b, bo + r, bo + r + n, ao + r, ao + r + n) !== 0) {
        start = r;
        end = r + n;
        found = true;
        break;
      }
    }
    if (!found) return -1;
  }
  for (let i = start; i < end; i++) if (a[ao + i] !== b[bo + i]) return i;
  return -1;
}
