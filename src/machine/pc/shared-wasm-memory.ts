// v86 keeps guest RAM inside its WebAssembly memory, which its module defines unshared: only the
// vCPU thread could read or write it, so the engine migrated a copy (a mirror). Rewritten here
// to be *shared*, that memory becomes a RAM block like any other: a destination's receive
// threads write arriving pages straight into the guest, and any thread can compare guest RAM
// with the source's mirror while the guest runs.
//
// Two kinds of module need the rewrite, both in the vCPU thread before they are instantiated:
// - v86.wasm, whose memory section says (memory 146): it becomes (memory 146 65536 shared);
// - the modules v86's JIT generates as the guest runs, which import that memory as "e" "m":
//   their import must say shared with the same maximum, or instantiation fails.
// A shared memory needs a maximum; 65536 pages (4 GiB) is the most a 32-bit memory can have and
// the zero check's import (src/zero/wasm-zero.ts) expects; it reserves address space, not RAM.
// Booting Linux took the same time either way here (10.7 s shared, 10.9 s unshared).

import {
  IMPORT_KIND,
  LIMITS_HAS_MAX,
  LIMITS_SHARED,
  SECTION,
  WASM_HEADER,
  WasmReader,
  leb128,
  readSections,
  skipImportDescriptor,
} from '../../util/wasm-binary.js';

/** The maximum every rewritten memory declares, in 64 KiB pages. */
export const SHARED_MEMORY_MAX_PAGES = 65536;

/** Limits that say: at least `min` pages, at most the maximum, shared. */
function sharedLimits(min: number): number[] {
  return [LIMITS_HAS_MAX | LIMITS_SHARED, ...leb128(min), ...leb128(SHARED_MEMORY_MAX_PAGES)];
}

/**
 * `bytes` with every memory it defines or imports made shared, a memory it defines `extraPages`
 * larger at start (the write log's room: write-log.ts). Returns a fresh copy (in a plain
 * ArrayBuffer, which WebAssembly.instantiate needs even when `bytes` lies in shared memory).
 * Throws on a module it cannot parse.
 */
export function shareModuleMemory(bytes: Uint8Array, extraPages = 0): Uint8Array {
  const parts: (Uint8Array | number[])[] = [bytes.subarray(0, WASM_HEADER.length)];
  for (const s of readSections(bytes)) {
    const rewrite =
      s.id === SECTION.memory
        ? shareMemorySection(new WasmReader(bytes, s.body, s.end), extraPages)
        : s.id === SECTION.import
          ? shareMemoryImports(new WasmReader(bytes, s.body, s.end))
          : null;
    if (rewrite === null) parts.push(bytes.subarray(s.start, s.end));
    else parts.push([s.id, ...leb128(rewrite.length)], rewrite);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The memory section: a vector of limits. */
function shareMemorySection(r: WasmReader, extraPages: number): Uint8Array {
  const count = r.u32();
  const out = [...leb128(count)];
  for (let i = 0; i < count; i++) out.push(...sharedLimits(r.limits().min + extraPages));
  if (r.pos !== r.end) throw new Error('memory section longer than its memories');
  return Uint8Array.from(out);
}

/** The import section: entries copied as they are, but a memory's limits made shared. */
function shareMemoryImports(r: WasmReader): Uint8Array {
  const out: number[] = [];
  const copy = (from: number): void => {
    for (let i = from; i < r.pos; i++) out.push(r.bytes[i]);
  };
  const count = r.u32();
  out.push(...leb128(count));
  for (let i = 0; i < count; i++) {
    const start = r.pos;
    r.skip(r.u32()); // module name
    r.skip(r.u32()); // field name
    const kind = r.byte();
    if (kind === IMPORT_KIND.memory) {
      copy(start);
      out.push(...sharedLimits(r.limits().min));
      continue;
    }
    skipImportDescriptor(r, kind, i);
    copy(start);
  }
  if (r.pos !== r.end) throw new Error('import section longer than its imports');
  return Uint8Array.from(out);
}

/** The initial size, in 64 KiB pages, of the first memory `bytes` defines; null if none. */
export function definedMemoryPages(bytes: Uint8Array): number | null {
  const memory = readSections(bytes).find((s) => s.id === SECTION.memory);
  if (!memory) return null;
  const r = new WasmReader(bytes, memory.body, memory.end);
  return r.u32() > 0 ? r.limits().min : null;
}
