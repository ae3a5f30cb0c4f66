// The parts of v86 that livemig uses beyond its public typings, in one place: guest RAM inside
// the emulator's WebAssembly memory, the main loop (where the vCPU thread takes its requests
// between slices of about 1 ms), and the save/restore of RAM inside a saved state. They belong
// to the exact v86 build package.json pins; checkInternals fails clearly if a build lacks them.

import type { V86 } from 'v86';
import { registerWasmRam } from '../../zero/wasm-zero.js';

/** A WebAssembly.Memory, as far as livemig uses one (the DOM typings are not loaded). */
export interface WasmMemory {
  readonly buffer: ArrayBuffer | SharedArrayBuffer;
}

/** v86's CPU object, as far as livemig touches it. */
export interface V86Cpu {
  wasm_memory: WasmMemory;
  /** guest RAM: a view into wasm_memory (a fresh one per access: the memory may grow) */
  readonly mem8: Uint8Array;
  memory_size: Int32Array | Uint32Array;
  /** runs the guest for about 1 ms; returns ms until it wants to run again */
  main_loop: () => number;
  /** save_state's RAM part: non-zero pages and their bitmap */
  pack_memory: () => { bitmap: { get_buffer(): ArrayBuffer }; packed_memory: Uint8Array };
  /** restore_state's RAM part: zeroes all RAM, then writes the packed pages */
  unpack_memory: (bitmap: unknown, packed: Uint8Array) => void;
  /** writes bytes into guest RAM from JavaScript (v86's DMA and image loading) */
  write_blob: (data: Uint8Array, address: number) => void;
  /** the VGA's full redraw: feeds a screen adapter (none is attached in the vCPU thread) */
  devices: { vga: { complete_redraw: () => void } };
}

/** The emulator core behind the V86 object (main.js: run, stop, save_state, restore_state). */
export interface V86Core {
  cpu: V86Cpu;
  run(): void;
  stop(): void;
  save_state(): ArrayBuffer;
  restore_state(state: ArrayBuffer | Uint8Array): void;
  running: boolean;
}

export type Emulator = V86 & { v86: V86Core; bus: { send(name: string, value: unknown): void } };

/** Throws naming what is missing when the loaded v86 is not the build livemig was written for. */
export function checkInternals(e: Emulator): void {
  const missing: string[] = [];
  const core = e.v86 as Partial<V86Core> | undefined;
  if (!core) missing.push('v86');
  const cpu = core?.cpu as Partial<V86Cpu> | undefined;
  for (const [name, ok] of [
    ['v86.run', typeof core?.run === 'function'],
    ['v86.stop', typeof core?.stop === 'function'],
    ['v86.save_state', typeof core?.save_state === 'function'],
    ['v86.restore_state', typeof core?.restore_state === 'function'],
    ['cpu.main_loop', typeof cpu?.main_loop === 'function'],
    ['cpu.pack_memory', typeof cpu?.pack_memory === 'function'],
    ['cpu.unpack_memory', typeof cpu?.unpack_memory === 'function'],
    ['cpu.write_blob', typeof cpu?.write_blob === 'function'],
    ['cpu.devices.vga.complete_redraw', typeof cpu?.devices?.vga?.complete_redraw === 'function'],
    // shared: see shared-wasm-memory.ts
    ['cpu.wasm_memory', cpu?.wasm_memory?.buffer instanceof SharedArrayBuffer],
    // a Proxy over a fresh Uint8Array view per access, so not instanceof Uint8Array
    ['cpu.mem8', typeof cpu?.mem8?.byteOffset === 'number'],
  ] as const) {
    if (!ok) missing.push(name);
  }
  if (missing.length > 0) {
    throw new Error(
      `this v86 build lacks what livemig needs (${missing.join(', ')}): install the version ` +
        "package.json pins ('npm ci')",
    );
  }
}

/** Guest RAM as a Buffer over the emulator's memory (no copy). Take a fresh one per use. */
export function guestRam(cpu: V86Cpu): Buffer {
  const m = cpu.mem8;
  const buffer = cpu.wasm_memory.buffer;
  // Zero checks over guest RAM (the dirty sync's zero chunks) then run in WebAssembly SIMD.
  registerWasmRam(buffer, cpu.wasm_memory as WebAssembly.Memory);
  return Buffer.from(buffer, m.byteOffset, m.length);
}
