// The few pieces of WebAssembly's binary format that livemig reads and writes: LEB128 integers,
// sections, names and memory limits. The zero check assembles its module with them
// (src/zero/wasm-zero.ts); the PC machine rewrites v86's modules so that their memory is shared
// (src/machine/pc/shared-wasm-memory.ts).

/** The 8 bytes every module starts with: "\0asm", version 1. */
export const WASM_HEADER = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

export const SECTION = { import: 2, memory: 5 } as const;
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
