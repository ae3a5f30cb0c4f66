// Runs of consecutive pages in a page list, for scatter-gather I/O (writev on the source, readv
// on the destination): one view per run rather than one per page. Each view is an object V8
// allocates and the kernel imports as one iovec; a PC guest's packets hold long runs, and a list
// without any (every other page, as scenario A's) costs one comparison per page more.

import { PAGE_SIZE } from '../migration/protocol.js';
import { offsetInSegment, segmentOf } from './layout.js';

/**
 * The end of the run that starts at `pages[i]`: the index after its last page, at most `end`.
 * A run never crosses a segment boundary (a page that starts a segment starts a run), so one
 * view of one segment covers it.
 */
export function runEnd(pages: Uint32Array, i: number, end: number): number {
  let next = pages[i] + 1;
  let j = i + 1;
  // offsetInSegment 0: `next` starts a segment
  while (j < end && pages[j] === next && offsetInSegment(next) !== 0) {
    next++;
    j++;
  }
  return j;
}

/**
 * A view of `count` consecutive pages of a block from page `first` on (inside one segment:
 * see runEnd), without its first `skip` bytes. `bytes`: the block's segmentBytes.
 */
export function runView(bytes: Uint8Array[], first: number, count: number, skip = 0): Uint8Array {
  const off = offsetInSegment(first);
  return bytes[segmentOf(first)].subarray(off + skip, off + count * PAGE_SIZE);
}
