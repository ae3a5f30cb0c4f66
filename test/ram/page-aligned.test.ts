// Guest pages are OS pages: writing one guest page allocates one OS page, not two. Measured with
// the calling thread's minor-fault count, the same way src/ram/page-aligned.ts finds the boundary.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { allocateBlocks, MAX_BLOCK_SIZE, segmentViews } from '../../src/ram/layout.js';
import { allocatePageAligned, probePageBoundary } from '../../src/ram/page-aligned.js';

const PAGE = 4096;
const hasProc = existsSync('/proc/thread-self/stat');

function minorFaults(): number {
  const stat = readFileSync('/proc/thread-self/stat', 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[7]);
}

test('a block of a WebAssembly memory starts at its byte 0, which mmap aligns', () => {
  const [b] = allocateBlocks(1024 * 1024);
  assert.ok(b.memory, 'a block up to 4 GiB is a WebAssembly memory');
  assert.equal(b.base, 0);
  assert.equal(b.ram.byteLength, 1024 * 1024);
  assert.equal(segmentViews(b)[0].byteOffset, 0);
});

test('a block over 4 GiB is one page larger than asked, its page 0 inside the first page', () => {
  const [b] = allocateBlocks(5 * 2 ** 30, MAX_BLOCK_SIZE);
  assert.equal(b.memory, undefined);
  assert.equal(b.ram.byteLength, 5 * 2 ** 30 + PAGE);
  assert.ok(b.base >= 0 && b.base < PAGE, `base ${b.base}`);
  const segs = segmentViews(b);
  assert.equal(segs.length, 5);
  assert.equal(segs[0].byteOffset, b.base);
  assert.equal(segs[0].length, 2 ** 30);
});

test(
  'writing every other guest page allocates one OS page each, not two',
  { skip: !hasProc && 'no /proc/thread-self' },
  () => {
    const pages = 4096;
    const [b] = allocateBlocks(pages * PAGE);
    const ram = segmentViews(b)[0];
    const src = Buffer.alloc(PAGE, 0x5a);
    const before = minorFaults();
    for (let p = 0; p < pages; p += 2) src.copy(ram, p * PAGE);
    const faults = minorFaults() - before;
    // 2048 pages written; a misaligned block takes ~4096 faults (each copy spills into the next
    // page). Allow some slack for the runtime's own faults.
    assert.ok(faults < 2048 * 1.25, `${faults} faults for 2048 pages written`);
    assert.ok(faults >= 2048 * 0.9, `${faults} faults: the pages were not fresh`);
    // And the odd pages are still zero.
    for (let p = 1; p < pages; p += 2) assert.equal(ram[p * PAGE], 0);
  },
);

test(
  'the probe finds the boundary of a fresh buffer, and refuses a used one',
  { skip: !hasProc && 'no /proc/thread-self' },
  () => {
    // Large enough to be its own mapping (smaller buffers may be recycled heap memory, where
    // there is no fault to find and the probe says so).
    const { sab, base, aligned } = allocatePageAligned(64 * 1024 * 1024);
    assert.ok(aligned, 'the probe decided');
    assert.ok(base >= 0 && base < PAGE);
    const used = new SharedArrayBuffer(64 * PAGE + PAGE);
    new Uint8Array(used).fill(1, 0, 2 * PAGE + 1);
    assert.equal(probePageBoundary(used), null, 'touched memory has no fault to find');
    assert.equal(sab.byteLength, 64 * 1024 * 1024 + PAGE);
  },
);
