// The accelerator's CPU fallback: zero-check's isZeroRange over windows of a RAM block, in
// ranges longer than one compare takes, and page lists with runs and gaps.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { blockMemory, cpuZeroPages, isZeroInBlock } from '../../src/accel/cpu-zero.js';

const MiB = 1024 * 1024;

test('isZeroInBlock: ranges past one compare (4 MiB), a byte at either end, an empty range', () => {
  const sab = new SharedArrayBuffer(12 * MiB);
  const u8 = new Uint8Array(sab);
  const mem = blockMemory(sab);
  assert.equal(isZeroInBlock(mem, 0, 12 * MiB), true);
  u8[12 * MiB - 1] = 1;
  assert.equal(isZeroInBlock(mem, 0, 12 * MiB), false, 'last byte of a 12 MiB range');
  assert.equal(isZeroInBlock(mem, 0, 12 * MiB - 1), true);
  u8[4 * MiB] = 7;
  assert.equal(isZeroInBlock(mem, 4096, 4 * MiB - 4096), true, 'ends just before the byte');
  assert.equal(isZeroInBlock(mem, 4096, 4 * MiB - 4095), false, 'takes the byte in');
  assert.equal(isZeroInBlock(mem, 4 * MiB, 0), true);
  assert.equal(blockMemory(sab), mem, 'one set of windows per block and thread');
});

test('cpuZeroPages: runs and scattered pages agree with a byte-by-byte check', () => {
  const pages = 2048; // 8 MiB: one run of all pages spans two compares
  const sab = new SharedArrayBuffer(pages * 4096);
  const u8 = new Uint8Array(sab);
  for (let p = 0; p < pages; p += 7) u8[p * 4096 + ((p * 131) % 4096)] = 1;
  const expect = (p: number) => (u8.subarray(p * 4096, (p + 1) * 4096).some((b) => b) ? 0 : 1);
  const all = Uint32Array.from({ length: pages }, (_, i) => i);
  const results = new Uint8Array(pages);
  let zeros = cpuZeroPages(sab, all, pages, results, 4096);
  assert.deepEqual([...results], [...all].map(expect));
  assert.equal(
    zeros,
    results.reduce((s, x) => s + x, 0),
  );
  const scattered = Uint32Array.from({ length: 100 }, (_, i) => (i * 37) % pages);
  zeros = cpuZeroPages(sab, scattered, 100, results, 4096);
  assert.deepEqual([...results.subarray(0, 100)], [...scattered].map(expect));
  // An all-zero run is found as one range.
  u8.fill(0);
  assert.equal(cpuZeroPages(sab, all, pages, results, 4096), pages);
});
