// CPU zero-page detection. Buffer.compare with ranges is a native memcmp against a zero buffer
// and allocates nothing; checking a contiguous run at once first is faster on mostly-zero memory.

import { MAX_PACKET_PAGES, PAGE_SHIFT, PAGE_SIZE } from '../migration/protocol.js';
import { SEGMENT_PAGE_MASK, SEGMENT_PAGES_SHIFT } from '../ram/layout.js';

const ZERO = Buffer.alloc(MAX_PACKET_PAGES * PAGE_SIZE);

/** True if `len` bytes of `buf` at `off` are all zero (len ≤ 4 MiB). */
export function isZeroRange(buf: Buffer, off: number, len: number): boolean {
  return ZERO.compare(buf, off, off + len, 0, len) === 0;
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
  const first = pages[pagesOff];
  // A contiguous run inside one segment: test it whole; an all-zero packet costs one memcmp.
  if (count > 1 && pages[pagesOff + count - 1] === first + count - 1) {
    const seg = first >>> SEGMENT_PAGES_SHIFT;
    if ((first + count - 1) >>> SEGMENT_PAGES_SHIFT === seg) {
      const off = (first & SEGMENT_PAGE_MASK) << PAGE_SHIFT;
      if (isZeroRange(segs[seg], off, count << PAGE_SHIFT)) {
        for (let i = 0; i < count; i++) out[outOff + count - 1 - i] = first + i;
        return 0;
      }
    }
  }
  let normal = 0;
  let zeroAt = count;
  for (let i = 0; i < count; i++) {
    const p = pages[pagesOff + i];
    const s = p >>> SEGMENT_PAGES_SHIFT;
    const off = (p & SEGMENT_PAGE_MASK) << PAGE_SHIFT;
    // Most normal pages differ from zero at once: a native call per page costs more than this.
    const w = words[s];
    const wi = off >>> 2;
    if ((w[wi] | w[wi + 1] | w[wi + 2] | w[wi + 3]) !== 0) {
      out[outOff + normal++] = p;
    } else if (ZERO.compare(segs[s], off, off + PAGE_SIZE, 0, PAGE_SIZE) === 0) {
      out[outOff + --zeroAt] = p;
    } else {
      out[outOff + normal++] = p;
    }
  }
  return normal;
}
