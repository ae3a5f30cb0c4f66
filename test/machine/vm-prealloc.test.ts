// --mem-prealloc (QEMU's -mem-prealloc): RAM is allocated a slice at a time, so that the
// process's threads can start and warm up meanwhile; the guest starts only after.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Vm } from '../../src/machine/vm.js';
import { parseWorkload } from '../../src/ram/vcpu-control.js';
import { preallocateInSlices } from '../../src/ram/fill.js';
import { allocateBlocks, segmentViews } from '../../src/ram/layout.js';

test('preallocateInSlices changes no byte and lets the event loop run between slices', async () => {
  const blocks = allocateBlocks(64 << 20, 32 << 20); // two blocks, several slices each
  const seg = segmentViews(blocks[1])[0];
  seg[12345] = 7;
  let turns = 0;
  const ticker = setInterval(() => turns++, 0);
  try {
    await preallocateInSlices(blocks);
  } finally {
    clearInterval(ticker);
  }
  assert.ok(turns > 0, 'other callbacks ran while RAM was allocated');
  assert.equal(seg[12345], 7);
  assert.equal(
    seg.reduce((a, b) => a + b, 0),
    7,
    'nothing else was written',
  );
});

test('a source with --mem-prealloc starts its guest once init() has allocated RAM', async () => {
  const vm = new Vm({
    ramBytes: 64 << 20,
    workload: parseWorkload('none', 64 << 20),
    normalPageRatio: 0.5,
    memPrealloc: true,
    startPaused: false,
  });
  try {
    assert.notEqual(vm.queryStatus().status, 'running', 'not before RAM is allocated');
    await vm.init();
    assert.equal(vm.queryStatus().status, 'running');
    assert.equal(vm.queryStatus().running, true);
  } finally {
    await vm.shutdown();
  }
});
