// Runs of consecutive pages for scatter-gather views (src/ram/page-runs.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runEnd, runView } from '../../src/ram/page-runs.js';
import { PAGE_SIZE } from '../../src/migration/protocol.js';

/** Split `pages` into runs with runEnd: [first page, page count] each. */
function runs(pages: number[]): number[][] {
  const list = Uint32Array.from(pages);
  const out: number[][] = [];
  for (let i = 0; i < list.length;) {
    const j = runEnd(list, i, list.length);
    assert.ok(j > i, 'a run holds at least one page');
    out.push([list[i], j - i]);
    i = j;
  }
  return out;
}

test('runEnd: consecutive pages form a run; a gap, a step back or a repeat ends it', () => {
  assert.deepEqual(runs([5, 6, 7, 9, 10, 3, 3, 4]), [
    [5, 3],
    [9, 2],
    [3, 1],
    [3, 2],
  ]);
  assert.deepEqual(runs([0, 2, 4, 6]), [
    [0, 1],
    [2, 1],
    [4, 1],
    [6, 1],
  ]);
  assert.deepEqual(runs([8]), [[8, 1]]);
});

test('runEnd: a run stops at a 1 GiB segment boundary and at the end it is given', () => {
  const seg = 2 ** 18;
  assert.deepEqual(runs([seg - 2, seg - 1, seg, seg + 1]), [
    [seg - 2, 2],
    [seg, 2],
  ]);
  const list = Uint32Array.from([1, 2, 3, 4, 5]);
  assert.equal(runEnd(list, 1, 3), 3, 'no further than `end`');
});

test("runView: the run's bytes in its segment, less the bytes skipped", () => {
  const seg0 = new Uint8Array(16 * PAGE_SIZE);
  const seg1 = new Uint8Array(16 * PAGE_SIZE);
  const first = 2 ** 18 + 3; // page 3 of the second segment
  const v = runView([seg0, seg1], first, 2);
  assert.equal(v.buffer, seg1.buffer);
  assert.equal(v.byteOffset, 3 * PAGE_SIZE);
  assert.equal(v.length, 2 * PAGE_SIZE);
  const rest = runView([seg0, seg1], 4, 3, PAGE_SIZE + 100);
  assert.equal(rest.buffer, seg0.buffer);
  assert.equal(rest.byteOffset, 5 * PAGE_SIZE + 100);
  assert.equal(rest.length, 2 * PAGE_SIZE - 100);
});
