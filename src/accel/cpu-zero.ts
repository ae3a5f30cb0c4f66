// The CPU zero check the driver falls back to: livemig's one zero check
// (src/zero/zero-check.ts) over windows of the guest RAM block. Views over a RAM block are
// made once per block and thread: a Buffer can span at most 4 GiB, so blocks are covered by
// overlapping windows (RegionMemory).

import { RegionMemory, windowBase, windowOf } from './dsa/emu/address-space.js';
import { isZeroRange } from '../zero/zero-check.js';

const views = new WeakMap<SharedArrayBuffer, RegionMemory>();

/** Per-thread windows over a RAM block. */
export function blockMemory(sab: SharedArrayBuffer): RegionMemory {
  let m = views.get(sab);
  if (!m) {
    m = new RegionMemory(sab, 0);
    views.set(sab, m);
  }
  return m;
}

/** True when bytes [off, off+len) of the block behind `mem` are all zero. `len` ≤ 2 GiB. */
export function isZeroInBlock(mem: RegionMemory, off: number, len: number): boolean {
  if (len <= 0) return true;
  const k = windowOf(off);
  return isZeroRange(mem.buffer(k), off - windowBase(k), len);
}

/**
 * Classify pages [from, count) of `pages` of `sab` on the CPU (page p is bytes [offset +
 * p*pageSize, +pageSize)): results[i] = 1 when page i is zero. Checks a run of consecutive
 * pages as one range first, which is close to memory speed on mostly-zero memory. Returns the
 * number of zero pages.
 */
export function cpuZeroPages(
  sab: SharedArrayBuffer,
  pages: ArrayLike<number>,
  count: number,
  results: Uint8Array,
  pageSize: number,
  offset = 0,
  from = 0,
): number {
  const mem = blockMemory(sab);
  let zeros = 0;
  let i = from;
  while (i < count) {
    // Extend a run of consecutive pages (bounded so a range stays in one window) that fits.
    const fits = (k: number) => offset + (pages[k] + 1) * pageSize <= sab.byteLength;
    let j = i + 1;
    while (j < count && pages[j] === pages[j - 1] + 1 && (j - i) * pageSize < 2 ** 30 && fits(j))
      j++;
    const at = offset + pages[i] * pageSize;
    if (!fits(i)) {
      throw new RangeError(
        `page ${pages[i]} (entry ${i}) is outside the ${sab.byteLength - offset}-byte block`,
      );
    }
    if (j - i > 1 && isZeroInBlock(mem, at, (j - i) * pageSize)) {
      results.fill(1, i, j);
      zeros += j - i;
    } else {
      for (let k = i; k < j; k++) {
        const z = isZeroInBlock(mem, offset + pages[k] * pageSize, pageSize) ? 1 : 0;
        results[k] = z;
        zeros += z;
      }
    }
    i = j;
  }
  return zeros;
}
