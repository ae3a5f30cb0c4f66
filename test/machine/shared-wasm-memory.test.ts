// The rewrite that makes v86's memory shared, on small modules assembled here: one that defines
// its memory (as v86.wasm does) and one that imports it among other imports (as v86's JIT
// modules do). Both must instantiate afterwards, the second against the first's shared memory.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { v86Build } from '../../src/machine/pc/v86-build.js';
import {
  SHARED_MEMORY_MAX_PAGES,
  shareModuleMemory,
} from '../../src/machine/pc/shared-wasm-memory.js';
import { WASM_HEADER, leb128, name, section } from '../../src/util/wasm-binary.js';

const I32 = 0x7f;

/** (memory 2) exported as "memory", plus a function storing 42 at address 8. */
function definingModule(): Uint8Array {
  const body = [0, 0x41, 8, 0x41, 42, 0x36, 2, 0, 0x0b]; // i32.store align=2 offset=0
  return Uint8Array.from([
    ...WASM_HEADER,
    ...section(1, [1, 0x60, 0, 0]), // type 0: () -> ()
    ...section(3, [1, 0]),
    ...section(5, [1, 0x00, 2]), // one memory, at least 2 pages, no maximum
    ...section(7, [2, ...name('memory'), 0x02, 0, ...name('poke'), 0x00, 0]),
    ...section(10, [1, ...leb128(body.length), ...body]),
  ]);
}

/** Imports a function, a global, a table and (memory 1) as "e" "m"; reads address 8. */
function importingModule(): Uint8Array {
  const body = [0, 0x41, 8, 0x28, 2, 0, 0x0b]; // i32.load align=2 offset=0
  return Uint8Array.from([
    ...WASM_HEADER,
    ...section(1, [2, 0x60, 0, 0, 0x60, 0, 1, I32]), // type 0: () -> (), type 1: () -> i32
    ...section(2, [
      4,
      ...name('e'),
      ...name('f'),
      0x00,
      0,
      ...name('e'),
      ...name('g'),
      0x03,
      I32,
      0,
      ...name('e'),
      ...name('t'),
      0x01,
      0x70,
      0x00,
      1,
      ...name('e'),
      ...name('m'),
      0x02,
      0x00,
      1,
    ]),
    ...section(3, [1, 1]),
    ...section(7, [1, ...name('peek'), 0x00, 1]), // function 1: the first after the import
    ...section(10, [1, ...leb128(body.length), ...body]),
  ]);
}

test("a module's own memory becomes shared, with the maximum", async () => {
  const bytes = definingModule();
  assert.throws(() => new WebAssembly.Module(shareModuleMemory(bytes.subarray(0, 20))), /module/);
  const { instance } = (await WebAssembly.instantiate(shareModuleMemory(bytes))) as {
    instance: WebAssembly.Instance;
  };
  const memory = instance.exports.memory as WebAssembly.Memory;
  assert.ok(memory.buffer instanceof SharedArrayBuffer, 'the memory is shared');
  assert.equal(memory.buffer.byteLength, 2 * 65536, 'its minimum is kept');
  assert.equal(memory.grow(1), 2, 'it can grow');
  (instance.exports.poke as () => void)();
  assert.equal(new Int32Array(memory.buffer)[2], 42);
});

test('an imported memory is declared shared, and the rest of the imports are kept', async () => {
  const own = (await WebAssembly.instantiate(shareModuleMemory(definingModule()))) as {
    instance: WebAssembly.Instance;
  };
  const memory = own.instance.exports.memory as WebAssembly.Memory;
  (own.instance.exports.poke as () => void)();
  const imports = {
    e: {
      f: () => {},
      g: 7,
      t: new (WebAssembly as unknown as { Table: new (d: object) => unknown }).Table({
        initial: 1,
        element: 'anyfunc',
      }),
      m: memory,
    },
  };
  // As generated, the import says unshared: it cannot take the shared memory.
  await assert.rejects(WebAssembly.instantiate(importingModule(), imports), /memory/i);
  const rewritten = shareModuleMemory(importingModule());
  const r = (await WebAssembly.instantiate(rewritten, imports)) as {
    instance: WebAssembly.Instance;
  };
  assert.equal((r.instance.exports.peek as () => number)(), 42, 'it reads the shared memory');
});

test('bytes that lie in shared memory are copied out and rewritten', () => {
  const bytes = definingModule();
  const sab = new Uint8Array(new SharedArrayBuffer(bytes.length));
  sab.set(bytes);
  const out = shareModuleMemory(sab);
  assert.ok(out.buffer instanceof ArrayBuffer);
  assert.ok(!(out.buffer instanceof SharedArrayBuffer));
  assert.doesNotThrow(() => new WebAssembly.Module(out));
});

test('v86 itself: its module gets a shared memory of the maximum size', () => {
  const bytes = shareModuleMemory(readFileSync(v86Build().wasmPath));
  // Memory section: id 5, one memory, flags 3, its minimum, then the maximum.
  const max = leb128(SHARED_MEMORY_MAX_PAGES);
  const at = Buffer.from(bytes).indexOf(Buffer.from([0x05, 3 + 1 + max.length, 1, 0x03]));
  assert.ok(at > 0, 'a shared memory section');
  assert.doesNotThrow(() => new WebAssembly.Module(bytes));
});

test('what is not a module, or a module cut short, is refused with a reason', () => {
  assert.throws(() => shareModuleMemory(Uint8Array.from([1, 2, 3, 4, 5, 6, 7, 8])), /bad header/);
  const cut = definingModule().subarray(0, WASM_HEADER.length + 3);
  assert.throws(() => shareModuleMemory(cut), /truncated/);
});
