// store-marking.ts: every write to memory marks its page in the write log, the writes still
// land, and what cannot be rewritten is refused by name. Modules assembled here, run for real;
// and v86's own module, rewritten and validated.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { markStores } from '../../src/machine/pc/store-marking.js';
import { shareModuleMemory } from '../../src/machine/pc/shared-wasm-memory.js';
import { v86Build } from '../../src/machine/pc/v86-build.js';
import { WASM_HEADER, leb128, name, section } from '../../src/util/wasm-binary.js';

const I32 = 0x7f;
/** The log at 1 MiB of a 2 MiB memory: the test's stores stay below it. */
const LOG_BASE = 1 << 20;
const MEMORY_PAGES = 32;

/** (i32 i32 i32) -> () functions, exported as f0, f1, ..., over one exported memory "m". */
function assemble(bodies: number[][]): Uint8Array {
  const type = section(1, [1, 0x60, 3, I32, I32, I32, 0]);
  const funcs = section(3, [...leb128(bodies.length), ...bodies.map(() => 0)]);
  const memory = section(5, [1, 0, ...leb128(MEMORY_PAGES)]);
  const exports: number[] = [...leb128(bodies.length + 1), ...name('m'), 2, 0];
  bodies.forEach((_, i) => exports.push(...name(`f${i}`), 0, ...leb128(i)));
  const code: number[] = [...leb128(bodies.length)];
  for (const b of bodies) {
    const body = [0, ...b, 0x0b]; // no locals
    code.push(...leb128(body.length), ...body);
  }
  return Uint8Array.from([
    ...WASM_HEADER,
    ...type,
    ...funcs,
    ...memory,
    ...section(7, exports),
    ...section(10, code),
  ]);
}

const get = (i: number): number[] => [0x20, i];
const memarg = (align: number, offset: number): number[] => [align, ...leb128(offset)];

/** The functions the tests call, (a, b, c) each. */
const BODIES = [
  // f0: i32.store offset=8 (a, b)
  [...get(0), ...get(1), 0x36, ...memarg(2, 8)],
  // f1: i64.store8 (a, b as i64)
  [...get(0), ...get(1), 0xad, 0x3c, ...memarg(0, 0)],
  // f2: f64.store offset=4096 (a, b as f64): the page after a's
  [...get(0), ...get(1), 0xb8, 0x39, ...memarg(3, 4096)],
  // f3: v128.store (a, splat b)
  [...get(0), ...get(1), 0xfd, 17, 0xfd, 11, ...memarg(4, 0)],
  // f4: v128.store16_lane lane 0 (a, splat b)
  [...get(0), ...get(1), 0xfd, 17, 0xfd, 89, ...memarg(1, 0), 0],
  // f5: memory.copy (a, b, c)
  [...get(0), ...get(1), ...get(2), 0xfc, 10, 0, 0],
  // f6: memory.fill (a, b, c)
  [...get(0), ...get(1), ...get(2), 0xfc, 11, 0],
  // f7: if c then (br_table in a block, then i32.store8 (a, b)) end
  [
    ...get(2),
    0x04,
    0x40,
    0x02,
    0x40,
    ...get(2),
    0x0e,
    1,
    0,
    0,
    0x0b,
    ...get(0),
    ...get(1),
    0x3a,
    ...memarg(0, 0),
    0x0b,
  ],
  // f8: nothing written
  [0x01],
];

interface Exported {
  m: WebAssembly.Memory;
  [f: string]: unknown;
}

function instance(bytes: Uint8Array): Exported {
  return new WebAssembly.Instance(new WebAssembly.Module(bytes)).exports as unknown as Exported;
}

/** The pages whose log byte is set. */
function marked(m: WebAssembly.Memory): number[] {
  const log = new Uint8Array(m.buffer, LOG_BASE, (MEMORY_PAGES * 65536) / 4096);
  const out: number[] = [];
  log.forEach((v, i) => v !== 0 && out.push(i));
  return out;
}

function call(e: Exported, f: number, a: number, b: number, c = 0): void {
  new Uint8Array(e.m.buffer, LOG_BASE, 4096).fill(0);
  (e[`f${f}`] as (a: number, b: number, c: number) => void)(a, b, c);
}

test('every kind of store still writes, and marks the page it wrote', () => {
  const plain = assemble(BODIES);
  const r = markStores(plain, LOG_BASE);
  assert.equal(r.stores, 6, 'i32.store, i64.store8, f64.store, v128.store, store16_lane, store8');
  assert.equal(r.bulk, 2, 'memory.copy and memory.fill');
  const e = instance(r.bytes);
  const mem = (): DataView => new DataView(e.m.buffer);

  call(e, 0, 3 * 4096 + 100, 0x11223344);
  assert.equal(mem().getUint32(3 * 4096 + 108, true), 0x11223344);
  assert.deepEqual(marked(e.m), [3]);

  call(e, 0, 4096 - 8, 7); // address + offset is the first byte of page 1
  assert.deepEqual(marked(e.m), [1]);

  call(e, 1, 5 * 4096 + 1, 0x1ff);
  assert.equal(mem().getUint8(5 * 4096 + 1), 0xff);
  assert.deepEqual(marked(e.m), [5]);

  call(e, 2, 6 * 4096 + 16, 42);
  assert.equal(mem().getFloat64(7 * 4096 + 16, true), 42);
  assert.deepEqual(marked(e.m), [7], 'the page of address + offset');

  call(e, 3, 9 * 4096, 0x01020304);
  assert.equal(mem().getUint32(9 * 4096 + 12, true), 0x01020304);
  assert.deepEqual(marked(e.m), [9]);

  call(e, 4, 10 * 4096 + 2, 0xabcd);
  assert.equal(mem().getUint16(10 * 4096 + 2, true), 0xabcd);
  assert.deepEqual(marked(e.m), [10]);

  call(e, 7, 12 * 4096, 0x5a, 1);
  assert.equal(mem().getUint8(12 * 4096), 0x5a);
  assert.deepEqual(marked(e.m), [12]);
  call(e, 7, 13 * 4096, 0x5a, 0);
  assert.deepEqual(marked(e.m), [], 'a store not reached marks nothing');

  call(e, 8, 0, 0);
  assert.deepEqual(marked(e.m), []);
});

test('memory.copy and memory.fill mark every page of their destination, and only those', () => {
  const e = instance(markStores(assemble(BODIES), LOG_BASE).bytes);
  new Uint8Array(e.m.buffer).fill(0x77, 0, 100);

  call(e, 5, 20 * 4096 - 10, 0, 8192 + 20); // 20 - 10 bytes .. into page 22
  assert.equal(new Uint8Array(e.m.buffer)[20 * 4096 - 10], 0x77);
  assert.deepEqual(marked(e.m), [19, 20, 21, 22]);

  call(e, 6, 30 * 4096, 0xee, 4096);
  assert.equal(new Uint8Array(e.m.buffer)[31 * 4096 - 1], 0xee);
  assert.deepEqual(marked(e.m), [30]);

  call(e, 6, 40 * 4096, 0xee, 0);
  assert.deepEqual(marked(e.m), [], 'an empty fill marks nothing');
});

test('a module with nothing that writes memory comes back as it was', () => {
  const bytes = assemble([[0x01]]);
  const r = markStores(bytes, LOG_BASE);
  assert.deepEqual([r.stores, r.bulk], [0, 0]);
  assert.deepEqual(r.bytes, bytes);
});

test('a write it cannot mark is refused with the instruction named, never half rewritten', () => {
  const atomicStore = [...get(0), ...get(1), 0xfe, 0x17, ...memarg(2, 0)];
  assert.throws(() => markStores(assemble([atomicStore]), LOG_BASE), /atomic instructions/);
  const init = [...get(0), ...get(1), ...get(2), 0xfc, 8, 0, 0];
  assert.throws(() => markStores(assemble([init]), LOG_BASE), /memory\.init/);
  assert.throws(() => markStores(assemble([[0x06]]), LOG_BASE), /opcode 0x6 not understood/);
  assert.throws(() => markStores(Uint8Array.from([1, 2, 3, 4]), LOG_BASE), /not a WebAssembly/);
});

test("v86's module, shared and rewritten, is valid and has all its stores marked", () => {
  const v86 = new Uint8Array(readFileSync(v86Build().wasmPath));
  const r = markStores(shareModuleMemory(v86, 16), 146 * 65536);
  assert.doesNotThrow(() => new WebAssembly.Module(r.bytes), 'the rewritten v86.wasm compiles');
  assert.ok(r.stores > 30000, `${r.stores} stores marked`);
  assert.ok(r.bulk > 100, `${r.bulk} memory.copy and memory.fill`);
});
