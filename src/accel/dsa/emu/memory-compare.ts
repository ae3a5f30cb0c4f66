// Locating differences in memory for the emulated device's compare operations. Whether a range
// is zero is zero/zero-check.ts's question (the project's one CPU zero check); where the first
// difference lies is this file's: memcmp over shrinking steps, then single bytes.

import { isZeroRange } from '../../../zero/zero-check.js';
/** A pattern buffer this big is compared against in one memcmp. */
const CHUNK = 512 * 1024;
const LOCATE_STEPS = [65536, 4096, 512, 64];

/** Exact offset of the first differing byte of a[ao, ao+len) and b[bo, bo+len), or -1. */
export function firstDifference(a: Buffer, ao: number, b: Buffer, bo: number, len: number): number {
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

/** Memory filled with one 8-byte pattern, to compare ranges against (one per engine). */
export class PatternMemory {
  private readonly pattern = Buffer.alloc(CHUNK);
  private readonly pattern8 = Buffer.alloc(8);
  private lo = 0;
  private hi = 0;

  /** Offset of the first byte of buf[off, off+len) that differs from the pattern, or -1. */
  firstMismatch(buf: Buffer, off: number, len: number, pLo: number, pHi: number): number {
    if ((pLo | pHi) === 0) return this.zeroOrMismatch(buf, off, len);
    const ref = this.filled(pLo, pHi);
    for (let r = 0; r < len; r += CHUNK) {
      const n = Math.min(CHUNK, len - r);
      if (buf.compare(ref, 0, n, off + r, off + r + n) !== 0) {
        return r + firstDifference(buf, off + r, ref, 0, n);
      }
    }
    return -1;
  }

  /** -1 when buf[off, off+len) is zero, else the offset of its first non-zero byte. */
  zeroOrMismatch(buf: Buffer, off: number, len: number): number {
    if (buf[off] !== 0) return 0;
    if (isZeroRange(buf, off, len)) return -1;
    // Halve the range with zero checks (fewer calls than firstDifference's steps), then bytes.
    let lo = 0;
    let hi = len;
    while (hi - lo > 64) {
      const mid = lo + ((hi - lo) >> 1);
      if (isZeroRange(buf, off + lo, mid - lo)) lo = mid;
      else hi = mid;
    }
    for (let k = lo; k < hi; k++) if (buf[off + k] !== 0) return k;
    return -1;
  }

  /** The 8-byte pattern (lo, hi) as a Buffer (MEMFILL's source). */
  bytes(lo: number, hi: number): Buffer {
    this.pattern8.writeInt32LE(lo, 0);
    this.pattern8.writeInt32LE(hi, 4);
    return this.pattern8;
  }

  private filled(lo: number, hi: number): Buffer {
    if (lo !== this.lo || hi !== this.hi) {
      this.pattern.fill(this.bytes(lo, hi));
      this.lo = lo;
      this.hi = hi;
    }
    return this.pattern;
  }
}
