// The zero check in WebAssembly SIMD: one loop that ORs 256 bytes at a time and stops at the
// first non-zero byte. It reads memory once, where `Buffer.compare` against a zero buffer reads
// two streams. WebAssembly has 16-byte vectors only, so a turn takes 16 loads; 256 bytes a turn
// rather than 128 spends fewer instructions per byte on the loop itself (V8 adds a stack check to
// every turn): over 1 GiB of zero memory, 86-91% of a C AVX2 loop's throughput against 83-86%
// for 128, interleaved in one process (docs/benchmarks.md, 2026-12-03). WebAssembly reads only
// its own memory, so guest RAM blocks are allocated as shared `WebAssembly.Memory`
// (src/ram/layout.ts) and each thread instantiates this module once per block it checks.
//
// The module is assembled here from its bytes (it is 200-odd bytes; a toolchain would be a
// dependency for that). Its one function, in the text format:
//
//   (import "m" "mem" (memory 0 65536 shared))
//   (func (export "isZero") (param $off i32) (param $len i32) (result i32)
//     (block $nonzero
//       (loop $next
//         (br_if $nonzero (v128.any_true (or16 $off)))
//         (local.set $off (i32.add (local.get $off) (i32.const 256)))
//         (br_if $next (local.tee $len (i32.sub (local.get $len) (i32.const 256)))))
//       (return (i32.const 1)))
//     (i32.const 0))
//
// where (or16 $off) ORs the sixteen 16-byte loads at $off .. $off+240 as a tree. The loop counts
// the length down rather than comparing with an end address, which would wrap at 4 GiB. `len` must
// be a positive multiple of 256: callers check pages (4096) and chunks, and fall back otherwise.

import {
  BLOCK_VOID,
  OP,
  VALTYPE,
  WASM_HEADER,
  leb128,
  name,
  section,
} from '../util/wasm-binary.js';

/** The function each instance exports. */
export type WasmIsZero = (off: number, len: number) => number;

const I32 = VALTYPE.i32;
const SIMD = { load: 0x00, or: 0x50, anyTrue: 0x53 } as const;

/** The bytes one turn of the loop checks: 16 loads of 16 bytes. */
const TURN = 256;

/** v128.load at local 0 + `offset` (alignment hint 16 bytes). */
function load(offset: number): number[] {
  return [OP.localGet, 0, OP.simd, SIMD.load, 4, ...leb128(offset)];
}
const or = [OP.simd, SIMD.or];

/** The OR of the `n` loads from `k` on (n a power of two): a tree, so the loads are independent. */
function orTree(k: number, n: number): number[] {
  if (n === 1) return load(k);
  return [...orTree(k, n / 2), ...orTree(k + (n / 2) * 16, n / 2), ...or];
}

/** i32.const `n` for 0 <= n < 8192: a signed LEB128, which leb128() (unsigned) is not above 63. */
function i32Const(n: number): number[] {
  return n < 64 ? [OP.i32Const, n] : [OP.i32Const, 0x80 | (n & 0x7f), n >>> 7];
}

function isZeroBody(): number[] {
  const body = [
    0, // no locals besides the parameters
    ...[OP.block, BLOCK_VOID, OP.loop, BLOCK_VOID],
    ...orTree(0, TURN / 16),
    ...[OP.simd, SIMD.anyTrue, OP.brIf, 1],
    ...[OP.localGet, 0, ...i32Const(TURN), OP.i32Add, OP.localSet, 0],
    ...[OP.localGet, 1, ...i32Const(TURN), OP.i32Sub, OP.localTee, 1, OP.brIf, 0],
    ...[OP.end, OP.i32Const, 1, OP.ret, OP.end],
    ...[OP.i32Const, 0, OP.end],
  ];
  return [...leb128(body.length), ...body];
}

function moduleBytes(): Uint8Array {
  const memoryLimits = [0x03, 0, ...leb128(65536)];
  return new Uint8Array([
    ...WASM_HEADER,
    ...section(1, [1, 0x60, 2, I32, I32, 1, I32]), // type 0: (i32, i32) -> i32
    ...section(2, [1, ...name('m'), ...name('mem'), 0x02, ...memoryLimits]),
    ...section(3, [1, 0]), // function 0 has type 0
    ...section(7, [1, ...name('isZero'), 0x00, 0]),
    ...section(10, [1, ...isZeroBody()]),
  ]);
}

let module: WebAssembly.Module | undefined;

/**
 * The zero check over `memory`, instantiated once per memory and thread by the callers: a guest
 * RAM block, or the PC emulator's memory (shared too: src/machine/pc/shared-wasm-memory.ts).
 */
export function wasmIsZero(memory: WebAssembly.Memory): WasmIsZero {
  if (!(memory.buffer instanceof SharedArrayBuffer)) {
    throw new Error('the WebAssembly zero check runs over shared memory only');
  }
  module ??= new WebAssembly.Module(moduleBytes());
  const inst = new WebAssembly.Instance(module, { m: { mem: memory } });
  return inst.exports.isZero as WasmIsZero;
}

/** The byte multiple a wasm check needs. */
export const WASM_ZERO_GRAIN = TURN;

/** This thread's checks, by the buffer that Buffer views over a block hold. */
const checks = new WeakMap<ArrayBufferLike, WasmIsZero>();
/** Each registered buffer's memory. */
const memories = new WeakMap<ArrayBufferLike, WebAssembly.Memory>();
/** One instance per memory: a memory that grows (the PC's emulator's) gets a new buffer object. */
const instances = new WeakMap<WebAssembly.Memory, WasmIsZero>();
// The last lookup: the calls of a packet's loop all ask about the same block.
let lastBuffer: ArrayBufferLike | undefined;
let lastCheck: WasmIsZero | undefined;

/**
 * Lets zero checks over views of `ram` run in WebAssembly. `ram` must be `memory`'s buffer as
 * this thread received it: a block's `ram` and `memory` travel together (RamBlockDesc), as two
 * objects over the same bytes, and views are made from `ram`. For a memory of this thread (the
 * PC's emulator), `ram` is its current `buffer`: register again after the memory grew.
 */
export function registerWasmRam(ram: ArrayBufferLike, memory: WebAssembly.Memory): void {
  if (checks.has(ram)) return;
  memories.set(ram, memory);
  let check = instances.get(memory);
  if (check === undefined) {
    check = wasmIsZero(memory);
    instances.set(memory, check);
  }
  checks.set(ram, check);
}

/** The memory registered RAM belongs to, for handing it to another thread with the buffer. */
export function wasmMemoryOf(ram: ArrayBufferLike): WebAssembly.Memory | undefined {
  return memories.get(ram);
}

/** The wasm check over `buffer`'s bytes, if `buffer` is registered RAM. */
export function wasmCheckFor(buffer: ArrayBufferLike): WasmIsZero | undefined {
  if (buffer !== lastBuffer) {
    lastBuffer = buffer;
    lastCheck = checks.get(buffer);
  }
  return lastCheck;
}

/**
 * Int32 wasm addresses of the first byte of views over registered RAM (a block's 1 GiB
 * segments). isZeroRange takes a view's address from here rather than from its byteOffset: V8
 * compiles `byteOffset + off` as small-integer arithmetic and throws the code away (with every
 * caller it was inlined into, and compiles it all again) the first time a view past 2 GiB of a
 * 4 GiB block comes by, in the middle of a migration.
 */
const viewAddresses = new WeakMap<object, number>();
let lastView: object | undefined;
let lastAddress: number | undefined;

/** Say where `view` starts in its wasm memory (`address`, a byte offset below 4 GiB). */
export function registerWasmView(view: object, address: number): void {
  viewAddresses.set(view, address | 0);
}

/** A registered view's address as a wasm i32 (negative past 2 GiB), or undefined. */
export function wasmAddressOf(view: object): number | undefined {
  if (view !== lastView) {
    lastView = view;
    lastAddress = viewAddresses.get(view);
  }
  return lastAddress;
}
