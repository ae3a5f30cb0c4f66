// Walking a function body instruction by instruction needs each instruction's immediates
// skipped: which ones, and how long. The instruction sets v86's modules use (core, bulk memory,
// saturating truncation, SIMD); an instruction outside them is refused by name, so a module is
// never walked wrong. Used by the store marking (src/machine/pc/store-marking.ts).

import { BLOCK_VOID, OP, VALTYPE, WasmReader } from './wasm-binary.js';

export const VALTYPE_BYTES = new Set<number>([...Object.values(VALTYPE), 0x70, 0x6f]);

/** The 0xfc instructions that write memory. */
export const MISC = { memoryInit: 8, memoryCopy: 10, memoryFill: 11 } as const;

/** A value type byte; throws on one it does not know (a GC reference type, say). */
export function valtype(r: WasmReader): number {
  const t = r.byte();
  if (!VALTYPE_BYTES.has(t)) throw new Error(`value type 0x${t.toString(16)} not understood`);
  return t;
}

/** A load's or store's memarg (alignment, offset); returns the offset. Memory 0 only. */
export function memarg(r: WasmReader): number {
  const align = r.u32();
  if ((align & 0x40) !== 0) throw new Error('an access to a second memory');
  return r.u32();
}

function blocktype(r: WasmReader): void {
  const b = r.bytes[r.pos];
  if (b === BLOCK_VOID || VALTYPE_BYTES.has(b)) r.pos++;
  else r.s33();
}

/** Skips the immediates of core instruction `op` (its opcode byte already read). */
export function skipCoreImmediates(r: WasmReader, op: number): void {
  if (op >= 0x28 && op <= 0x35) {
    memarg(r); // loads
    return;
  }
  if (op >= 0x45 && op <= 0xc4) return; // numeric, no immediates
  switch (op) {
    case 0x00: // unreachable
    case 0x01: // nop
    case 0x05: // else
    case OP.end:
    case 0x0f: // return
    case 0x1a: // drop
    case 0x1b: // select
    case 0xd1: // ref.is_null
      return;
    case OP.block:
    case OP.loop:
    case OP.if:
      blocktype(r);
      return;
    case OP.br:
    case OP.brIf:
    case OP.call:
    case OP.localGet:
    case OP.localSet:
    case OP.localTee:
    case 0x23: // global.get
    case 0x24: // global.set
    case 0x25: // table.get
    case 0x26: // table.set
    case 0xd2: // ref.func
      r.u32();
      return;
    case OP.brTable: {
      const n = r.u32();
      for (let i = 0; i <= n; i++) r.u32();
      return;
    }
    case OP.callIndirect:
      r.u32();
      r.u32();
      return;
    case OP.selectTyped: {
      const n = r.u32();
      for (let i = 0; i < n; i++) valtype(r);
      return;
    }
    case 0x3f: // memory.size
    case 0x40: // memory.grow
      if (r.byte() !== 0) throw new Error('memory.size or memory.grow of a second memory');
      return;
    case OP.i32Const:
      r.s33();
      return;
    case 0x42: // i64.const
      r.s64();
      return;
    case 0x43: // f32.const
      r.skip(4);
      return;
    case 0x44: // f64.const
      r.skip(8);
      return;
    case 0xd0: // ref.null
      r.byte();
      return;
    default:
      throw new Error(`opcode 0x${op.toString(16)} not understood`);
  }
}

/** Skips the immediates of 0xfc instruction `sub` (bulk memory, tables, truncations). */
export function skipMiscImmediates(r: WasmReader, sub: number): void {
  if (sub <= 7) return; // saturating truncations
  switch (sub) {
    case MISC.memoryInit:
      throw new Error('memory.init is not rewritten');
    case 9: // data.drop
    case 13: // elem.drop
    case 15: // table.grow
    case 16: // table.size
    case 17: // table.fill
      r.u32();
      return;
    case 12: // table.init
    case 14: // table.copy
      r.u32();
      r.u32();
      return;
    default:
      throw new Error(`instruction 0xfc ${sub} not understood`);
  }
}

/** Skips the immediates of SIMD instruction `sub` (0xfd prefix). */
export function skipSimdImmediates(r: WasmReader, sub: number): void {
  if (sub <= 10 || sub === 92 || sub === 93) {
    memarg(r); // loads
  } else if (sub === 12 || sub === 13) {
    r.skip(16); // v128.const, i8x16.shuffle
  } else if (sub >= 21 && sub <= 34) {
    r.byte(); // lane
  } else if (sub >= 84 && sub <= 87) {
    memarg(r); // load lane
    r.byte();
  }
  // everything else: no immediates
}
