// A RAM block may hold 16 GiB, but no typed array may span more than 4 GiB: filling and
// touching a block go through its 1 GiB segments. The block here is 5 GiB of address space;
// only the few pages written ever become resident.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  allocateBlocks,
  DEFAULT_BLOCK_SIZE,
  MAX_BLOCK_SIZE,
  SEGMENT_SHIFT,
  segmentViews,
} from '../../src/ram/layout.js';
import { fillNormalPages, isNormalPage } from '../../src/ram/fill.js';

test('fillNormalPages writes pages past 4 GiB of a single block', () => {
  const size = 5 * 2 ** 30;
  const blocks = allocateBlocks(size, MAX_BLOCK_SIZE);
  assert.equal(blocks.length, 1, 'one block: blocks hold up to 16 GiB');
  assert.equal(blocks[0].memory, undefined, 'over 4 GiB, a block is a plain SharedArrayBuffer');
  // About one normal page in 100,000: ~13 pages, some of them above 4 GiB.
  const ratio = 1e-5;
  const count = fillNormalPages(blocks, ratio);
  const pages = size / 4096;
  let expected = 0;
  let above4G = 0;
  const segs = segmentViews(blocks[0]);
  for (let p = 0; p < pages; p++) {
    if (!isNormalPage(p, ratio)) continue;
    expected++;
    const seg = segs[Math.floor((p * 4096) / 2 ** SEGMENT_SHIFT)];
    const off = (p * 4096) % 2 ** SEGMENT_SHIFT;
    assert.equal(seg.readUInt32LE(off + 8), p + 1, `page ${p} is stamped with its number`);
    if (p * 4096 >= 2 ** 32) above4G++;
  }
  assert.equal(count, expected);
  assert.ok(above4G >= 2, `pages above 4 GiB were filled (${above4G})`);
});

test('by default a guest is cut into 4 GiB blocks, each a shared WebAssembly memory', () => {
  const blocks = allocateBlocks(5 * 2 ** 30);
  assert.deepEqual(
    blocks.map((b) => [b.name, b.size]),
    [
      ['pc.ram', DEFAULT_BLOCK_SIZE],
      ['pc.ram.1', 2 ** 30],
    ],
  );
  for (const b of blocks) {
    assert.ok(b.memory, `${b.name} is a WebAssembly memory`);
    assert.equal(b.memory.buffer, b.ram);
    assert.equal(b.base, 0);
  }
});
