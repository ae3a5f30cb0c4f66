// Synthetic guest contents: a fraction of pages filled with random bytes, spread evenly,
// the rest left zero; and --mem-prealloc, which touches every page as QEMU's option does.

import { randomFillSync } from 'node:crypto';
import { PAGE_SIZE } from '../migration/protocol.js';
import type { RamBlockDesc } from './layout.js';
import { offsetInSegment, pagesOf, segmentOf, segmentViews } from './layout.js';
import { setImmediate as nextTurn } from 'node:timers/promises';

const POOL_SIZE = 4 * 1024 * 1024;

/** Page `i` is normal when the running count of normal pages steps up there: evenly spread. */
export function isNormalPage(globalPage: number, ratio: number): boolean {
  return Math.floor((globalPage + 1) * ratio) > Math.floor(globalPage * ratio);
}

/**
 * Fill a fraction `ratio` of all pages with random-looking bytes. Random bytes come from a
 * 4 MiB pool read at a page-dependent offset, stamped with the page number so that no two
 * pages are equal and none is zero; generating gigabytes of CSPRNG output would dominate
 * start-up for no benefit.
 */
export function fillNormalPages(blocks: RamBlockDesc[], ratio: number): number {
  if (!(ratio >= 0 && ratio <= 1)) {
    throw new Error(`normal page ratio ${ratio} is out of range: expected 0..1`);
  }
  if (ratio === 0) return 0;
  const pool = randomFillSync(Buffer.alloc(POOL_SIZE + PAGE_SIZE));
  const poolPages = POOL_SIZE / PAGE_SIZE;
  let global = 0;
  let count = 0;
  for (const b of blocks) {
    // Per 1 GiB segment: no typed array may span more than 4 GiB of a block.
    const segs = segmentViews(b);
    const pages = pagesOf(b.size);
    for (let p = 0; p < pages; p++, global++) {
      if (!isNormalPage(global, ratio)) continue;
      const seg = segs[segmentOf(p)];
      const off = offsetInSegment(p);
      const src = ((global * 7919) % poolPages) * PAGE_SIZE + (global % 61) * 8;
      pool.copy(seg, off, src, src + PAGE_SIZE);
      seg.writeUInt32LE(global + 1, off + 8);
      count++;
    }
  }
  return count;
}

/** Write every page once so the kernel really allocates it (QEMU's -mem-prealloc). */
export function preallocate(blocks: RamBlockDesc[]): void {
  for (const b of blocks) for (const seg of segmentViews(b)) preallocatePages(seg);
}

/** How much preallocateInSlices touches between two turns of the event loop. */
const PREALLOC_SLICE_BYTES = 16 * 1024 * 1024;

/**
 * preallocate, a slice at a time, letting the event loop run between slices (on this VM a
 * 4 GiB guest's page faults take ~13 s, which would hold every message to this thread).
 */
export async function preallocateInSlices(blocks: RamBlockDesc[]): Promise<void> {
  for (const b of blocks) {
    for (const seg of segmentViews(b)) {
      for (let off = 0; off < seg.length; off += PREALLOC_SLICE_BYTES) {
        preallocatePages(seg.subarray(off, Math.min(seg.length, off + PREALLOC_SLICE_BYTES)));
        await nextTurn();
      }
    }
  }
}

/** preallocate for any memory: every page written once, with the byte it already holds. */
export function preallocatePages(mem: Uint8Array): void {
  for (let off = 0; off < mem.length; off += PAGE_SIZE) {
    // Writing the value already there still takes the write fault that allocates the page.
    // eslint-disable-next-line no-self-assign
    mem[off] = mem[off];
  }
}
