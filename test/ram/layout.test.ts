// Where a page is: the one page -> (segment, offset) arithmetic, and the packet offset table's
// u64 entry, checked against plain byte arithmetic at every boundary that matters.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  MAX_BLOCK_SIZE,
  SEGMENT_SHIFT,
  offsetInSegment,
  pagesOf,
  segmentOf,
  segmentViews,
} from '../../src/ram/layout.js';
import { PAGE_SIZE, offsetHi, offsetLo } from '../../src/migration/protocol.js';
import { allocatePageAligned } from '../../src/ram/page-aligned.js';

const SEGMENT = 2 ** SEGMENT_SHIFT;
const PAGES_PER_SEGMENT = SEGMENT / PAGE_SIZE;
const LAST_PAGE = pagesOf(MAX_BLOCK_SIZE) - 1;
const PAGES = [0, 1, PAGES_PER_SEGMENT - 1, PAGES_PER_SEGMENT, PAGES_PER_SEGMENT + 1, 2 ** 20 - 1];
PAGES.push(2 ** 20, 2 ** 20 + 5, 3 * PAGES_PER_SEGMENT + 7, LAST_PAGE);

test("segmentOf and offsetInSegment split a page's byte offset at 1 GiB segments", () => {
  for (const p of PAGES) {
    const byte = p * PAGE_SIZE;
    assert.equal(segmentOf(p), Math.floor(byte / SEGMENT), `segment of page ${p}`);
    assert.equal(offsetInSegment(p), byte % SEGMENT, `offset of page ${p}`);
  }
  assert.equal(segmentOf(LAST_PAGE), MAX_BLOCK_SIZE / SEGMENT - 1, 'a 16 GiB block has 16');
});

test('offsetLo and offsetHi are the u64 byte offset of a page, as two u32 words', () => {
  const word = new Uint32Array(1);
  for (const p of PAGES) {
    const byte = BigInt(p) * BigInt(PAGE_SIZE);
    word[0] = offsetLo(p); // as the packet builder stores it
    assert.equal(word[0], Number(byte & 0xffffffffn), `low word of page ${p}`);
    assert.equal(offsetHi(p), Number(byte >> 32n), `high word of page ${p}`);
  }
});

test('segment views and the arithmetic name the same bytes', () => {
  // A small block: one segment, whose page offsets are the block's.
  const size = 64 * PAGE_SIZE;
  const { sab, base } = allocatePageAligned(size);
  const block = { ram: sab, base, size };
  const views = segmentViews(block);
  assert.equal(views.length, 1);
  const whole = new Uint8Array(sab, base, size);
  for (const p of [0, 1, 63]) {
    views[segmentOf(p)][offsetInSegment(p) + 9] = p + 1;
    assert.equal(whole[p * PAGE_SIZE + 9], p + 1, `page ${p}`);
  }
});
