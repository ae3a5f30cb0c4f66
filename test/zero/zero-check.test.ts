// The zero check: its WebAssembly path (guest RAM blocks) and its Buffer.compare path (any other
// memory) must give the same answers, at every byte position, including a block's last bytes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { allocateBlocks, segmentViews, segmentWords } from '../../src/ram/layout.js';
import { classifyPages, isZeroRange } from '../../src/zero/zero-check.js';
import { registerWasmRam, wasmCheckFor } from '../../src/zero/wasm-zero.js';

test('a RAM block gets the WebAssembly check, a plain buffer does not', () => {
  const [b] = allocateBlocks(1 << 20);
  const [seg] = segmentViews(b);
  assert.ok(wasmCheckFor(seg.buffer), 'views over a block are registered');
  assert.equal(wasmCheckFor(Buffer.alloc(4096).buffer), undefined);
});

test('both paths find a single non-zero byte anywhere in a range', () => {
  const [b] = allocateBlocks(1 << 20);
  const [wasmSeg] = segmentViews(b);
  const plain = Buffer.alloc(1 << 20);
  for (const seg of [wasmSeg, plain]) {
    assert.equal(isZeroRange(seg, 0, seg.length), true);
    for (const at of [0, 1, 15, 16, 127, 128, 4095, 4096, 70_000, seg.length - 1]) {
      seg[at] = 0x80;
      assert.equal(isZeroRange(seg, 0, seg.length), false, `byte ${at} of the whole range`);
      const page = at & ~4095;
      assert.equal(isZeroRange(seg, page, 4096), false, `byte ${at} in its page`);
      if (page > 0) assert.equal(isZeroRange(seg, page - 4096, 4096), true, 'the page before');
      // Ranges the wasm loop cannot take (not a multiple of its 256-byte turn) fall back, same
      // answer.
      assert.equal(isZeroRange(seg, page, 4096 - 64), at - page >= 4096 - 64);
      assert.equal(isZeroRange(seg, page, 4096 - 128), at - page >= 4096 - 128);
      seg[at] = 0;
    }
  }
});

test('the last bytes of a 4 GiB block are checked (the loop does not wrap)', () => {
  const [b] = allocateBlocks(4 * 2 ** 30);
  assert.ok(b.memory);
  const segs = segmentViews(b);
  const last = segs[3];
  assert.equal(isZeroRange(last, last.length - 4096, 4096), true);
  last[last.length - 1] = 1;
  assert.equal(isZeroRange(last, last.length - 4096, 4096), false);
  assert.equal(isZeroRange(last, last.length - (1 << 20), 1 << 20), false);
  assert.equal(isZeroRange(last, 0, last.length), false);
});

test('classifyPages sorts normal pages to the front and zero pages to the back', () => {
  const [b] = allocateBlocks(1 << 20);
  const segs = segmentViews(b);
  const words = segmentWords(b);
  segs[0][3 * 4096 + 4000] = 9; // data past the first 16 bytes: the full check finds it
  segs[0][5 * 4096] = 1; // data in the first 16 bytes: found without the full check
  const pages = Uint32Array.from({ length: 8 }, (_, i) => i);
  const out = new Uint32Array(8);
  const normal = classifyPages(segs, words, pages, 0, 8, out, 0);
  assert.equal(normal, 2);
  assert.deepEqual([...out.subarray(0, 2)].sort(), [3, 5]);
  assert.deepEqual([...out.subarray(2)].sort(), [0, 1, 2, 4, 6, 7]);
  // A contiguous all-zero run is one check; every page lands in the zero part.
  const zeroRun = Uint32Array.from([8, 9, 10, 11]);
  assert.equal(classifyPages(segs, words, zeroRun, 0, 4, out, 0), 0);
});

test('a worker that receives a block checks it in WebAssembly over the same bytes', async () => {
  const [b] = allocateBlocks(1 << 20);
  segmentViews(b)[0][123_456] = 7;
  const url = new URL('./zero-check-worker.js', import.meta.url);
  const w = new Worker(url, { workerData: b });
  const [registered, whole, page, other] = await new Promise<boolean[]>((resolve, reject) => {
    w.once('message', resolve);
    w.once('error', reject);
  });
  await w.terminate();
  assert.equal(registered, true);
  assert.equal(whole, false);
  assert.equal(page, false);
  assert.equal(other, true);
});

test("the PC emulator's memory (shared, growing, guest RAM at an offset) is checked in WebAssembly", () => {
  const memory = new WebAssembly.Memory({ initial: 4, maximum: 64, shared: true });
  registerWasmRam(memory.buffer, memory);
  let view = Buffer.from(memory.buffer, 65536, 65536);
  assert.ok(wasmCheckFor(view.buffer));
  assert.equal(isZeroRange(view, 0, view.length), true);
  view[40_000] = 3;
  assert.equal(isZeroRange(view, 0, view.length), false);
  assert.equal(isZeroRange(view, 36_864, 4096), false);
  // Growing gives a new buffer object; registering it reuses the instance over the memory.
  memory.grow(4);
  assert.equal(wasmCheckFor(memory.buffer), undefined, 'the new buffer is not registered yet');
  registerWasmRam(memory.buffer, memory);
  view = Buffer.from(memory.buffer, 65536, 65536);
  assert.equal(isZeroRange(view, 36_864, 4096), false, 'the byte is still found');
  assert.equal(isZeroRange(Buffer.from(memory.buffer), 7 * 65536, 65536), true);
});

test('a memory that is not shared is refused by the WebAssembly check', () => {
  const memory = new WebAssembly.Memory({ initial: 1 });
  assert.throws(() => registerWasmRam(memory.buffer, memory), /shared memory only/);
});
