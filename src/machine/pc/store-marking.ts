// v86 has no dirty-page log, so livemig gives it one: every module the vCPU thread instantiates
// (v86.wasm once, and each module v86's JIT generates as the guest runs) is rewritten here so that
// each instruction that writes memory also marks the page it wrote, in a byte map inside the
// same memory (write-log.ts says where and who clears it). A dirty sync then looks at the pages
// marked since the last one instead of comparing all of guest RAM with the mirror.
//
// The rewrite, for each function body:
// - a store (`i32.store`, `i64.store8`, `v128.store`, `v128.store32_lane`, ...) keeps its address
//   in a new local and, after it, marks the page of address + offset:
//     local.set $value  local.tee $addr  local.get $value  <the store>
//     local.get $addr  [i32.const offset  i32.add]  i32.const 12  i32.shr_u
//     i32.const 1  i32.store8 offset=<log base>
//   The mark comes after the store, so a sync that clears a mark and then reads the page sees
//   the new bytes, or finds the mark set again. A store that crosses into the next page marks
//   only its first one; the sync compares the next page too (write-log.ts).
// - `memory.copy` and `memory.fill` become calls to two functions appended to the module, which
//   do the same and then mark every page of the destination range.
// Anything else that writes memory (`memory.init`, atomics, a second memory) makes the rewrite
// fail with the instruction named: the caller then runs without a log, never with a partial one.

import {
  BLOCK_VOID,
  OP,
  SECTION,
  VALTYPE,
  WASM_HEADER,
  WasmReader,
  IMPORT_KIND,
  readSections,
  skipImportDescriptor,
  type Section,
} from '../../util/wasm-binary.js';
import {
  MISC,
  memarg,
  skipCoreImmediates,
  skipMiscImmediates,
  skipSimdImmediates,
  valtype,
} from '../../util/wasm-instructions.js';
import { ByteWriter } from '../../util/byte-writer.js';

/** The locals a rewritten body adds after its own: the address, then one value per type. */
const ADDR = 0;
const VALUE_LOCAL: Record<number, number> = {
  [VALTYPE.i32]: 1,
  [VALTYPE.i64]: 2,
  [VALTYPE.f32]: 3,
  [VALTYPE.f64]: 4,
  [VALTYPE.v128]: 5,
};
const ADDED_LOCALS = [
  VALTYPE.i32,
  VALTYPE.i32,
  VALTYPE.i64,
  VALTYPE.f32,
  VALTYPE.f64,
  VALTYPE.v128,
];

/** Core stores: opcode → the type of the value they store (0: not a store). */
const CORE_STORE_TYPE = new Uint8Array(256);
for (const [op, type] of [
  [0x36, VALTYPE.i32], // i32.store
  [0x37, VALTYPE.i64], // i64.store
  [0x38, VALTYPE.f32], // f32.store
  [0x39, VALTYPE.f64], // f64.store
  [0x3a, VALTYPE.i32], // i32.store8
  [0x3b, VALTYPE.i32], // i32.store16
  [0x3c, VALTYPE.i64], // i64.store8
  [0x3d, VALTYPE.i64], // i64.store16
  [0x3e, VALTYPE.i64], // i64.store32
]) {
  CORE_STORE_TYPE[op] = type;
}

/** SIMD stores: v128.store (11) and v128.store{8,16,32,64}_lane (88-91, with a lane byte). */
const SIMD_STORE = 11;
const SIMD_STORE_LANE_FIRST = 88;
const SIMD_STORE_LANE_LAST = 91;

export interface StoreMarkingResult {
  bytes: Uint8Array;
  /** stores that now mark their page */
  stores: number;
  /** memory.copy and memory.fill now calls to the marking functions */
  bulk: number;
}

/**
 * `bytes` (a module that writes one memory) with every write to that memory marking its page in
 * the log at byte `logBase` of the memory: one byte per 4 KiB page of the whole 4 GiB memory
 * (page p at logBase + p). Throws, naming it, on anything it cannot rewrite.
 */
export function markStores(bytes: Uint8Array, logBase: number): StoreMarkingResult {
  const sections = countedSections(bytes);
  const code = sections.find((s) => s.id === SECTION.code);
  if (!code) return { bytes, stores: 0, bulk: 0 };

  const types = readParamCounts(
    bytes,
    sections.find((s) => s.id === SECTION.type),
  );
  const importedFunctions = countImportedFunctions(
    bytes,
    sections.find((s) => s.id === SECTION.import),
  );
  const functionTypes = readFunctionTypes(
    bytes,
    sections.find((s) => s.id === SECTION.function),
  );
  const helperType = types.length;
  const copyHelper = importedFunctions + functionTypes.length;
  const rewriter = new BodyRewriter(bytes, logBase, copyHelper, copyHelper + 1);
  const newCode = rewriter.codeSection(code, (i) => {
    const t = functionTypes[i];
    if (t === undefined || types[t] === undefined) throw new Error(`function ${i} has no type`);
    return types[t];
  });

  const out = new ByteWriter(bytes.length + (bytes.length >>> 1) + 256);
  out.bytes(bytes, 0, WASM_HEADER.length);
  const helpers = rewriter.bulk > 0;
  if (helpers && !sections.some((s) => s.id === SECTION.type)) {
    throw new Error('module has code but no type section');
  }
  for (const s of sections) {
    if (helpers && s.id === SECTION.type) {
      // one more type: (i32 i32 i32) -> ()
      out.section(s.id, (w) => {
        w.u32(types.length + 1);
        w.bytes(bytes, s.countEnd, s.end);
        w.byte(0x60).u32(3).byte(VALTYPE.i32).byte(VALTYPE.i32).byte(VALTYPE.i32).u32(0);
      });
    } else if (helpers && s.id === SECTION.function) {
      out.section(s.id, (w) => {
        w.u32(functionTypes.length + 2);
        w.bytes(bytes, s.countEnd, s.end);
        w.u32(helperType).u32(helperType);
      });
    } else if (s.id === SECTION.code) {
      out.section(
        s.id,
        (w) => {
          w.u32(functionTypes.length + (helpers ? 2 : 0));
          const c = newCode.view();
          w.bytes(c, 0, c.length);
          if (helpers) {
            bulkHelper(w, logBase, MISC.memoryCopy, [0, 0]);
            bulkHelper(w, logBase, MISC.memoryFill, [0]);
          }
        },
        newCode.length + 256,
      );
    } else {
      out.bytes(bytes, s.start, s.end);
    }
  }
  return { bytes: out.result(), stores: rewriter.stores, bulk: rewriter.bulk };
}

/** A section, and where its contents start after their vector count. */
interface CountedSection extends Section {
  countEnd: number;
}

function countedSections(bytes: Uint8Array): CountedSection[] {
  return readSections(bytes).map((s) => {
    const r = new WasmReader(bytes, s.body, s.end);
    if (s.id === SECTION.type || s.id === SECTION.function || s.id === SECTION.code) r.u32();
    return { ...s, countEnd: r.pos };
  });
}

/** The type section: how many parameters each function type has. */
function readParamCounts(bytes: Uint8Array, s: CountedSection | undefined): number[] {
  if (!s) return [];
  const r = new WasmReader(bytes, s.body, s.end);
  const n = r.u32();
  const params: number[] = [];
  for (let i = 0; i < n; i++) {
    const form = r.byte();
    if (form !== 0x60) throw new Error(`type ${i} is not a function type (0x${form.toString(16)})`);
    const count = r.u32();
    for (let j = 0; j < count; j++) valtype(r);
    const results = r.u32();
    for (let j = 0; j < results; j++) valtype(r);
    params.push(count);
  }
  return params;
}

function countImportedFunctions(bytes: Uint8Array, s: CountedSection | undefined): number {
  if (!s) return 0;
  const r = new WasmReader(bytes, s.body, s.end);
  const n = r.u32();
  let functions = 0;
  for (let i = 0; i < n; i++) {
    r.skip(r.u32()); // module name
    r.skip(r.u32()); // field name
    const kind = r.byte();
    if (kind === IMPORT_KIND.function) functions++;
    skipImportDescriptor(r, kind, i);
  }
  return functions;
}

function readFunctionTypes(bytes: Uint8Array, s: CountedSection | undefined): number[] {
  if (!s) return [];
  const r = new WasmReader(bytes, s.body, s.end);
  const n = r.u32();
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(r.u32());
  return out;
}

/**
 * A helper appended to the module: (dest, src or value, length) → memory.copy or memory.fill,
 * then a mark on every page of [dest, dest + length).
 */
function bulkHelper(w: ByteWriter, logBase: number, misc: number, memories: number[]): void {
  const body = new ByteWriter(64);
  body.u32(0); // no locals: the parameters are reused (1 = page, 2 = last page)
  body.byte(OP.localGet).u32(0).byte(OP.localGet).u32(1).byte(OP.localGet).u32(2);
  body.byte(OP.misc).u32(misc);
  for (const m of memories) body.byte(m);
  body.byte(OP.localGet).u32(2).byte(OP.i32Eqz).byte(OP.brIf).u32(0);
  body.byte(OP.localGet).u32(0).byte(OP.i32Const).s32(12).byte(OP.i32ShrU).byte(OP.localSet).u32(1);
  body.byte(OP.localGet).u32(0).byte(OP.localGet).u32(2).byte(OP.i32Add);
  body.byte(OP.i32Const).s32(1).byte(OP.i32Sub);
  body.byte(OP.i32Const).s32(12).byte(OP.i32ShrU).byte(OP.localSet).u32(2);
  body.byte(OP.loop).byte(BLOCK_VOID);
  body.byte(OP.localGet).u32(1).byte(OP.i32Const).s32(1).byte(OP.i32Store8).u32(0).u32(logBase);
  body.byte(OP.localGet).u32(1).byte(OP.i32Const).s32(1).byte(OP.i32Add).byte(OP.localTee).u32(1);
  body.byte(OP.localGet).u32(2).byte(OP.i32LeU).byte(OP.brIf).u32(0);
  body.byte(OP.end);
  body.byte(OP.end);
  const b = body.result();
  w.u32(b.length).bytes(b, 0, b.length);
}

/** Walks function bodies instruction by instruction, copying them with stores rewritten. */
class BodyRewriter {
  stores = 0;
  bulk = 0;
  private r: WasmReader;
  private readonly code = new ByteWriter(1024);

  constructor(
    private readonly bytes: Uint8Array,
    private readonly logBase: number,
    private readonly copyHelper: number,
    private readonly fillHelper: number,
  ) {
    this.r = new WasmReader(bytes);
  }

  codeSection(s: CountedSection, paramCount: (i: number) => number): ByteWriter {
    const out = new ByteWriter(s.end - s.body + ((s.end - s.body) >>> 1));
    const r = new WasmReader(this.bytes, s.body, s.end);
    const n = r.u32();
    for (let i = 0; i < n; i++) {
      const size = r.u32();
      const end = r.pos + size;
      if (end > s.end) throw new Error(`function ${i}'s body runs past the code section`);
      this.body(out, r.pos, end, paramCount(i), i);
      r.pos = end;
    }
    return out;
  }

  /** One function body [from, to): its locals, then its instructions. */
  private body(out: ByteWriter, from: number, to: number, params: number, index: number): void {
    const r = (this.r = new WasmReader(this.bytes, from, to));
    const groups = r.u32();
    const groupsStart = r.pos;
    let locals = params;
    for (let g = 0; g < groups; g++) {
      locals += r.u32();
      valtype(r);
    }
    const codeStart = r.pos;
    this.code.reset();
    const before = this.stores + this.bulk;
    try {
      this.instructions(locals, to);
    } catch (e) {
      throw new Error(`function ${index}, byte ${r.pos}: ${(e as Error).message}`);
    }
    if (this.stores + this.bulk === before) {
      // nothing to mark: the body as it was
      out.u32(to - from).bytes(this.bytes, from, to);
      return;
    }
    // the body's own local groups, then the added ones
    const head = new ByteWriter(16 + (codeStart - groupsStart) + 2 * ADDED_LOCALS.length);
    head.u32(groups + ADDED_LOCALS.length).bytes(this.bytes, groupsStart, codeStart);
    for (const t of ADDED_LOCALS) head.u32(1).byte(t);
    const h = head.view();
    const c = this.code.view();
    out
      .u32(h.length + c.length)
      .bytes(h, 0, h.length)
      .bytes(c, 0, c.length);
  }

  /** Copies instructions up to `to`, rewriting the ones that write memory. */
  private instructions(firstAdded: number, to: number): void {
    const r = this.r;
    const w = this.code;
    const bytes = this.bytes;
    // Instructions copied as they are go out in runs, when a rewritten one (or the end) comes.
    let run = r.pos;
    while (r.pos < to) {
      const at = r.pos;
      const op = r.byte();
      const storeType = CORE_STORE_TYPE[op];
      if (storeType !== 0) {
        const offset = memarg(r);
        w.bytes(bytes, run, at);
        this.markedStore(firstAdded, storeType, bytes, at, r.pos, offset);
        run = r.pos;
        continue;
      }
      if (op === OP.simd) {
        const sub = r.u32();
        const lane = sub >= SIMD_STORE_LANE_FIRST && sub <= SIMD_STORE_LANE_LAST;
        if (sub === SIMD_STORE || lane) {
          const offset = memarg(r);
          if (lane) r.byte();
          w.bytes(bytes, run, at);
          this.markedStore(firstAdded, VALTYPE.v128, bytes, at, r.pos, offset);
          run = r.pos;
          continue;
        }
        skipSimdImmediates(r, sub);
      } else if (op === OP.misc) {
        const sub = r.u32();
        if (sub === MISC.memoryCopy || sub === MISC.memoryFill) {
          const memories = sub === MISC.memoryCopy ? 2 : 1;
          for (let m = 0; m < memories; m++) {
            if (r.byte() !== 0) throw new Error('a bulk memory instruction on a second memory');
          }
          w.bytes(bytes, run, at);
          w.byte(OP.call).u32(sub === MISC.memoryCopy ? this.copyHelper : this.fillHelper);
          this.bulk++;
          run = r.pos;
          continue;
        }
        skipMiscImmediates(r, sub);
      } else if (op === OP.atomic) {
        throw new Error('atomic instructions are not rewritten');
      } else {
        skipCoreImmediates(r, op);
      }
    }
    w.bytes(bytes, run, r.pos);
  }

  private markedStore(
    firstAdded: number,
    type: number,
    bytes: Uint8Array,
    from: number,
    to: number,
    offset: number,
  ): void {
    const w = this.code;
    const addr = firstAdded + ADDR;
    const value = firstAdded + VALUE_LOCAL[type];
    w.byte(OP.localSet).u32(value).byte(OP.localTee).u32(addr).byte(OP.localGet).u32(value);
    w.bytes(bytes, from, to);
    w.byte(OP.localGet).u32(addr);
    if (offset !== 0)
      w.byte(OP.i32Const)
        .s32(offset | 0)
        .byte(OP.i32Add);
    w.byte(OP.i32Const).s32(12).byte(OP.i32ShrU);
    w.byte(OP.i32Const).s32(1).byte(OP.i32Store8).u32(0).u32(this.logBase);
    this.stores++;
  }
}
