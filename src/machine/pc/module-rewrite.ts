// What the vCPU thread does to every WebAssembly module v86 instantiates: v86.wasm once per
// emulator, and each module its JIT generates as the guest runs.
// - Its memory becomes shared (shared-wasm-memory.ts), so other threads read and write guest RAM.
// - Its stores mark the pages they write in the write log (store-marking.ts, write-log.ts).
//   v86.wasm's initial memory grows by the log's 16 pages, and the log sits there.
// A module whose stores cannot be rewritten still runs (shared), but the log is then lost for
// good in this thread: `onLogLost` is told, and dirty syncs go back to comparing all of RAM.

import { markStores } from './store-marking.js';
import { definedMemoryPages, shareModuleMemory } from './shared-wasm-memory.js';
import { LOG_WASM_PAGES } from './write-log.js';

type Instantiate = typeof WebAssembly.instantiate;

let installed = false;
/** where the current emulator's write log is (bytes into its memory); null without one */
let logBase: number | null = null;
let logLost = false;
let onLogLost: (why: string) => void = () => {};

/** Where this thread's emulator keeps its write log, or null when it has none (or lost it). */
export function writeLogBase(): number | null {
  return logLost ? null : logBase;
}

/** `bytes` as the vCPU thread instantiates it: shared, and its stores marked while it can. */
export function rewriteModule(bytes: Uint8Array): Uint8Array {
  const pages = definedMemoryPages(bytes);
  if (pages !== null) {
    // v86.wasm: a new emulator, and a new log after its initial memory.
    const shared = shareModuleMemory(bytes, LOG_WASM_PAGES);
    if (logLost) return shared;
    try {
      const marked = markStores(shared, pages * 65536);
      logBase = pages * 65536;
      return marked.bytes;
    } catch (e) {
      loseLog(`v86.wasm: ${(e as Error).message}`);
      return shared;
    }
  }
  const shared = shareModuleMemory(bytes);
  if (logBase === null || logLost) return shared;
  try {
    return markStores(shared, logBase).bytes;
  } catch (e) {
    loseLog(`a module of v86's JIT: ${(e as Error).message}`);
    return shared;
  }
}

function loseLog(why: string): void {
  logLost = true;
  onLogLost(why);
}

/**
 * From now on, this thread's WebAssembly.instantiate rewrites every module it is given as bytes
 * (v86 gives its own module as an ArrayBuffer and each JIT module as a view into its memory). A
 * module already compiled is passed on as it is. Call once, in the vCPU thread, before v86 loads.
 */
export function rewriteInstantiatedModules(logLostHandler: (why: string) => void): void {
  onLogLost = logLostHandler;
  if (installed) return;
  installed = true;
  const original: Instantiate = WebAssembly.instantiate.bind(WebAssembly);
  WebAssembly.instantiate = ((source, imports) => {
    if (source instanceof ArrayBuffer) source = new Uint8Array(source);
    return original(source instanceof Uint8Array ? rewriteModule(source) : source, imports);
  }) as Instantiate;
}
