// The few pieces of WebAssembly's binary format that livemig reads and writes: LEB128 integers,
// sections, names and memory limits. The zero check assembles its module with them
// (src/zero/wasm-zero.ts); the PC machine rewrites v86's modules so that their memory is shared
// (src/machine/pc/shared-wasm-memory.ts).

/** The 8 bytes every module starts with: "\0asm", version 1. */
export const WASM_HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

export const SECTION = { type: 1, import: 2, function: 3, memory: 5, code: 10 } as const;

/** Value types. */
export const VALTYPE = { i32: 0x7f, i64: 0x7e, f32: 0x7d, f64: 0x7c, v128: 0x7b } as const;
/** A block type with no value. */
export const BLOCK_VOID = 0x40;

/** The instructions livemig assembles (the zero check, the store marking), by name. */
export const OP = {
  unreachable: 0x00,
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  end: 0x0b,
  br: 0x0c,
  brIf: 0x0d,
  brTable: 0x0e,
  ret: 0x0f,
  call: 0x10,
  callIndirect: 0x11,
  selectTyped: 0x1c,
  localGet: 0x20,
  localSet: 0x21,
  localTee: 0x22,
  i32Store8: 0x3a,
  i32Const: 0x41,
  i32Eqz: 0x45,
  i32LeU: 0x4d,
  i32Add: 0x6a,
  i32Sub: 0x6b,
  i32ShrU: 0x76,
  /** prefixes: saturating truncation and bulk memory; SIMD; atomics */
  misc: 0xfc,
  simd: 0xfd,
  atomic: 0xfe,
} as const;
/** An import's kind byte (function, table, memory, global; tag with exception handling). */
export const IMPORT_KIND = { function: 0, table: 1, memory: 2, global: 3, tag: 4 } as const;
/** A limits' flags byte: bit 0 a maximum follows, bit 1 shared (threads proposal). */
export const LIMITS_HAS_MAX = 0x01;
export const LIMITS_SHARED = 0x02;

export function leb128(n: number): number[] {
  const out: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

export function section(id: number, bytes: number[]): number[] {
  return [id, ...leb128(bytes.length), ...bytes];
}

export function name(s: string): number[] {
  const b = [...Buffer.from(s, 'utf8')];
  return [...leb128(b.length), ...b];
}

/** One section of a module: its id, where it starts (the id byte), its contents and its end. */
export interface Section {
  id: number;
  start: number;
  body: number;
  end: number;
}

/** The sections of a module, in order, after checking its header. */
export function readSections(bytes: Uint8Array): Section[] {
  for (let i = 0; i < WASM_HEADER.length; i++) {
    if (bytes[i] !== WASM_HEADER[i]) throw new Error('not a WebAssembly module (bad header)');
  }
  const r = new WasmReader(bytes, WASM_HEADER.length);
  const out: Section[] = [];
  while (r.pos < bytes.length) {
    const start = r.pos;
    const id = r.byte();
    const length = r.u32();
    const body = r.pos;
    r.skip(length);
    out.push({ id, start, body, end: r.pos });
  }
  return out;
}

/** A cursor over a module's bytes; every read checks that the bytes are there. */
export class WasmReader {
  constructor(
    readonly bytes: Uint8Array,
    public pos = 0,
    readonly end = bytes.length,
  ) {}

  byte(): number {
    if (this.pos >= this.end) throw new Error(`module truncated at byte ${this.pos}`);
    return this.bytes[this.pos++];
  }

  /** An unsigned LEB128 of at most 32 bits. */
  u32(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const b = this.byte();
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (result > 0xffffffff) break;
        return result;
      }
    }
    throw new Error(`bad LEB128 integer before byte ${this.pos}`);
  }

  /** Skips a signed LEB128 of at most `bits` bits (i32.const: 32, a block type: 33, i64: 64). */
  skipSigned(bits: number): void {
    const max = Math.ceil(bits / 7);
    for (let i = 0; i < max; i++) if ((this.byte() & 0x80) === 0) return;
    throw new Error(`bad LEB128 integer before byte ${this.pos}`);
  }

  s33(): void {
    this.skipSigned(33);
  }

  s64(): void {
    this.skipSigned(64);
  }

  skip(n: number): void {
    if (this.pos + n > this.end) throw new Error(`module truncated at byte ${this.pos}`);
    this.pos += n;
  }

  /** Memory (or table) limits: flags, minimum and maximum when the flags say so. */
  limits(): { flags: number; min: number; max?: number } {
    const flags = this.byte();
    if (flags > (LIMITS_HAS_MAX | LIMITS_SHARED)) {
      throw new Error(`limits flags 0x${flags.toString(16)} not understood (64-bit memory?)`);
    }
    const min = this.u32();
    return (flags & LIMITS_HAS_MAX) !== 0 ? { flags, min, max: this.u32() } : { flags, min };
  }
}

/**
 * Skips an import's descriptor, whose kind byte `r` has just read: a function's or a tag's type,
 * a table's or a memory's limits, a global's type. Throws on a kind it does not know.
 */
export function skipImportDescriptor(r: WasmReader, kind: number, index: number): void {
  switch (kind) {
    case IMPORT_KIND.tag:
      r.byte(); // attribute
      r.u32(); // type index
      return;
    case IMPORT_KIND.function:
      r.u32(); // type index
      return;
    case IMPORT_KIND.table:
      r.byte(); // element type
      r.limits();
      return;
    case IMPORT_KIND.memory:
      r.limits();
      return;
    case IMPORT_KIND.global:
      r.skip(2); // value type, mutability
      return;
    default:
      throw new Error(`import ${index} of unknown kind ${kind}`);
  }
}
