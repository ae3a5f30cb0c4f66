// The data operations of the emulated device (NOOP, COMPVAL, COMPARE, MEMMOVE, MEMFILL) over
// translated device memory. Each sets the outcome the completion record is written from
// (status, result, bytes_completed, fault address), with no allocation per descriptor. An
// access that faults completes partially, as hardware without block-on-fault does.

import { TWO_32, uint32 } from '../address.js';
import { DescWord } from '../descriptor.js';
import { Flag, Opcode, Status, STATUS_WRITE_FAULT } from '../opcodes.js';
import { Translation, type AddressSpace } from './address-space.js';
import { firstDifference, PatternMemory } from './memory-compare.js';
import { E_BYTES, addEngineStat, type Registers } from './registers.js';

/**
 * COMPVAL's bytes_completed for a mismatch at byte `mism` of `size`: the start of the first
 * mismatching 8-byte word; exact in the tail below 8 bytes.
 */
export function compvalBytes(mism: number, size: number): number {
  return mism >= size - (size % 8) ? mism : mism - (mism % 8);
}

export class Operations {
  readonly patterns = new PatternMemory();
  // The outcome of the last operation.
  status = 0;
  result = 0;
  bytes = 0;
  faultLo = 0;
  faultHi = 0;
  private readonly t = new Translation();
  private readonly t2 = new Translation();
  // Set by the executor for each descriptor: max_transfer_size of the WQ it came from, and
  // whether it has BOF (and its WQ allows it).
  maxTransfer = 0;
  blockOnFault = false;

  constructor(
    private readonly as: AddressSpace,
    private readonly regs: Registers,
    private readonly engine: number,
  ) {}

  /** Run the (validated) descriptor at word `at` of `d`. */
  run(d: Int32Array, at: number): void {
    this.result = 0;
    this.bytes = 0;
    this.faultLo = 0;
    this.faultHi = 0;
    switch (d[at + DescWord.FLAGS_OPCODE] >>> 24) {
      case Opcode.NOOP:
        this.status = Status.SUCCESS;
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
        this.status = Status.BAD_OPCODE;
    }
  }

  /** XFER_ERANGE when `size` is over the WQ's max_transfer_size; otherwise SUCCESS so far. */
  private sizeOk(size: number): boolean {
    this.status = size > this.maxTransfer ? Status.XFER_ERANGE : Status.SUCCESS;
    return this.status === Status.SUCCESS;
  }

  /**
   * Translate a range. With block-on-fault the device waits until the OS has made an injected
   * not-present page present (one report of the fault) and goes on; memory that is not mapped
   * at all still faults (PAGE_FAULT_IR: the page request got an Invalid Request response).
   */
  private translate(lo: number, hi: number, len: number, t: Translation): boolean {
    if (this.as.translate(lo, hi, len, t)) return true;
    if (!this.blockOnFault || t.faultEntry < 0) return false;
    this.as.consumeFault(t.faultEntry);
    return this.as.translate(lo, hi, len, t, true);
  }

  private fault(t: Translation, write: boolean): void {
    const code = this.blockOnFault ? Status.PAGE_FAULT_IR : Status.PAGE_FAULT_NOBOF;
    this.status = code | (write ? STATUS_WRITE_FAULT : 0);
    this.faultLo = t.faultLo;
    this.faultHi = t.faultHi;
    this.as.consumeFault(t.faultEntry);
  }

  /** CR flag: a result other than expected_res (bit 0) is a false predicate. */
  private checkResult(d: Int32Array, at: number): void {
    if (
      d[at + DescWord.FLAGS_OPCODE] & Flag.CR &&
      this.result !== (d[at + DescWord.OP_SPECIFIC] & 1)
    ) {
      this.status = Status.SUCCESS_PRED;
    }
  }

  private compval(d: Int32Array, at: number): void {
    const size = d[at + DescWord.SIZE] >>> 0;
    if (!this.sizeOk(size) || size === 0) return;
    const t = this.t;
    const full = this.translate(d[at + DescWord.ADDR16_LO], d[at + DescWord.ADDR16_HI], size, t);
    const ok = t.ok;
    const pLo = d[at + DescWord.ADDR24_LO];
    const pHi = d[at + DescWord.ADDR24_HI];
    const mism = ok > 0 ? this.patterns.firstMismatch(t.buf, t.off, ok, pLo, pHi) : -1;
    addEngineStat(this.regs, this.engine, E_BYTES, mism < 0 ? ok : mism);
    if (mism >= 0) {
      this.result = 1;
      this.bytes = compvalBytes(mism, size);
    } else if (!full) {
      this.bytes = ok;
      this.fault(t, false);
      return;
    }
    this.checkResult(d, at);
  }

  private compare(d: Int32Array, at: number): void {
    const size = d[at + DescWord.SIZE] >>> 0;
    if (!this.sizeOk(size) || size === 0) return;
    const a = this.t;
    const b = this.t2;
    const fa = this.translate(d[at + DescWord.ADDR16_LO], d[at + DescWord.ADDR16_HI], size, a);
    const fb = this.translate(d[at + DescWord.ADDR24_LO], d[at + DescWord.ADDR24_HI], size, b);
    const ok = Math.min(a.ok, b.ok);
    const mism = ok > 0 ? firstDifference(a.buf, a.off, b.buf, b.off, ok) : -1;
    if (mism >= 0) {
      this.result = 1;
      this.bytes = mism;
    } else if (!fa || !fb) {
      this.bytes = ok;
      this.fault(a.ok <= b.ok && !fa ? a : b, false);
      return;
    }
    this.checkResult(d, at);
  }

  private memmove(d: Int32Array, at: number): void {
    const size = d[at + DescWord.SIZE] >>> 0;
    if (!this.sizeOk(size) || size === 0) return;
    const srcLo = uint32(d[at + DescWord.ADDR16_LO]);
    const srcHi = uint32(d[at + DescWord.ADDR16_HI]);
    const dstLo = uint32(d[at + DescWord.ADDR24_LO]);
    const dstHi = uint32(d[at + DescWord.ADDR24_HI]);
    const src = srcHi * TWO_32 + srcLo;
    const dst = dstHi * TWO_32 + dstLo;
    // Overlapping with the destination above the source: the copy runs from the end.
    const descending = dst > src && dst < src + size;
    this.result = descending ? 1 : 0;
    const s = this.t;
    const t = this.t2;
    const fs = this.translate(srcLo, srcHi, size, s);
    const ft = this.translate(dstLo, dstHi, size, t);
    if (fs && ft) {
      s.buf.copy(t.buf, t.off, s.off, s.off + size);
      addEngineStat(this.regs, this.engine, E_BYTES, size);
      return;
    }
    const writeFirst = t.ok < s.ok;
    // A descending copy that faults stops before copying anything; an ascending one copies
    // up to the first fault (bytes_completed), as hardware reports partial completions.
    const ok = descending ? 0 : Math.min(s.ok, t.ok);
    if (ok > 0) s.buf.copy(t.buf, t.off, s.off, s.off + ok);
    this.bytes = ok;
    this.fault(writeFirst ? t : s, writeFirst);
  }

  private memfill(d: Int32Array, at: number): void {
    const size = d[at + DescWord.SIZE] >>> 0;
    if (!this.sizeOk(size) || size === 0) return;
    const t = this.t;
    const full = this.translate(d[at + DescWord.ADDR24_LO], d[at + DescWord.ADDR24_HI], size, t);
    const p = this.patterns.bytes(d[at + DescWord.ADDR16_LO], d[at + DescWord.ADDR16_HI]);
    if (t.ok > 0) t.buf.fill(p, t.off, t.off + t.ok);
    addEngineStat(this.regs, this.engine, E_BYTES, t.ok);
    if (!full) {
      this.bytes = t.ok;
      this.fault(t, true);
    }
  }
}
