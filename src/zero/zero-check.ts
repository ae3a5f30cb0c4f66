// CPU zero-page detection, the one zero check of the project: the engine's multifd channels, the
// accelerator's CPU fallback and the emulated DSA's engines all call isZeroRange.
//
// Over guest RAM (a block allocated as shared WebAssembly.Memory, src/ram/layout.ts) it runs the
// WebAssembly SIMD loop of wasm-zero.ts, which reads memory once. Over any other memory it falls
// back to Buffer.compare (a native memcmp) against a 64 KiB zero buffer: small enough to stay in
// the L1/L2 cache while the compared memory streams past, which a packet-sized one did not.
// Neither allocates.

import { PAGE_SHIFT, PAGE_SIZE } from '../migration/protocol.js';
import { offsetInSegment, segmentOf } from '../ram/layout.js';
import { WASM_ZERO_GRAIN, wasmAddressOf, wasmCheckFor } from './wasm-zero.js';

const ZERO_STEP = 64 * 1024;
const ZERO = Buffer.alloc(ZERO_STEP);

/** True if `len` bytes of `buf` at `off` are all zero. */
export function isZeroRange(buf: Buffer, off: number, len: number): boolean {
  const check = wasmCheckFor(buf.buffer);
  if (check !== undefined && len > 0 && len % WASM_ZERO_GRAIN === 0) {
    // A block's segment: its address as an i32, no byteOffset arithmetic (see wasmAddressOf).
    const base = wasmAddressOf(buf);
    if (base !== undefined) {
      if (((base + off) & 15) === 0) return check((base + off) | 0, len) === 1;
    } else if ((buf.byteOffset + off) % 16 === 0) {
      return check(buf.byteOffset + off, len) === 1;
    }
  }
  for (let o = off, end = off + len; o < end; o += ZERO_STEP) {
    const n = end - o < ZERO_STEP ? end - o : ZERO_STEP;
    if (ZERO.compare(buf, o, o + n, 0, n) !== 0) return false;
  }
  return true;
}

/**
 * True if `pages[pagesOff, pagesOff + count)` are consecutive pages inside one segment (of a
 * block seen through 1 GiB segments) and all zero: one compare for the whole run.
 */
export function isZeroRun(
  segs: Buffer[],
  pages: Uint32Array,
  pagesOff: number,
  count: number,
): boolean {
  const first = pages[pagesOff];
  if (count < 1 || pages[pagesOff + count - 1] !== first + count - 1) return false;
  const seg = segmentOf(first);
  if (segmentOf(first + count - 1) !== seg) return false;
  return isZeroRange(segs[seg], offsetInSegment(first), count << PAGE_SHIFT);
}

/**
 * Partition `pages[0..count)` of a block (seen through 1 GiB segments) into normal pages
 * (written to `out` from the front) and zero pages (from the back). Returns the normal count.
 * `out` may be `pages` itself only if the caller accepts reordering; here it is separate.
 */
export function classifyPages(
  segs: Buffer[],
  /** the same segments as Int32Arrays: a page with data in its first 16 bytes needs no memcmp */
  words: Int32Array[],
  pages: Uint32Array,
  pagesOff: number,
  count: number,
  out: Uint32Array,
  outOff: number,
): number {
  // A contiguous run inside one segment: test it whole; an all-zero packet costs one compare.
  if (count > 1 && isZeroRun(segs, pages, pagesOff, count)) {
    const first = pages[pagesOff];
    for (let i = 0; i < count; i++) out[outOff + count - 1 - i] = first + i;
    return 0;
  }
  return classifyEachPage(segs, words, pages, pagesOff, count, out, outOff);
}

/** classifyPages without the whole-run check: every page on its own. */
export function classifyEachPage(
  segs: Buffer[],
  words: Int32Array[],
  pages: Uint32Array,
  pagesOff: number,
  count: number,
  out: Uint32Array,
  outOff: number,
): number {
  let normal = 0;
  let zeroAt = count;
  for (let i = 0; i < count; i++) {
    const p = pages[pagesOff + i];
    const s = segmentOf(p);
    const off = offsetInSegment(p);
    // Most normal pages differ from zero at once: a native call per page costs more than this.
    const w = words[s];
    const wi = off >>> 2;
    if ((w[wi] | w[wi + 1] | w[wi + 2] | w[wi + 3]) !== 0) {
      out[outOff + normal++] = p;
    } else if (isZeroRange(segs[s], off, PAGE_SIZE)) {
      out[outOff + --zeroAt] = p;
    } else {
      out[outOff + normal++] = p;
    }
  }
  return normal;
}
