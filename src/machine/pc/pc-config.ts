// What a PC machine is made of, as the main thread hands it to the vCPU thread, and its fixed
// sizes. Both sides of a migration must agree on every size (see PcMachine.describe).

import type { RamBlockDesc } from '../../ram/layout.js';

/**
 * The kernel command line when --append is not given: the console on the first serial port, and
 * two boot steps skipped that took ~3.2 of the guest's ~7.6 s of kernel start-up under v86
 * (`initcall_debug`): the crypto self-tests (`cryptomgr.notests`, 2.7 s) and the ISA Plug and
 * Play scan (`noisapnp`, 0.5 s; the emulated PC has no such cards). A 256 MiB PC booted to a
 * shell in 9.8 s (8.8-11.9) against 14.1 s (12.4-16.1), 5 boots each, alternated
 * (docs/benchmarks.md).
 */
export const DEFAULT_APPEND =
  'console=ttyS0 tsc=reliable mitigations=off random.trust_cpu=on cryptomgr.notests noisapnp';

/**
 * VGA memory: 256 KiB is what a text console needs, and it travels in every device state (v86's
 * default of 8 MiB would make the state ~9.4 MB instead of ~1.3 MB).
 */
export const VGA_MEMORY_BYTES = 256 * 1024;

/**
 * v86's RAM sizes (cpu.js create_memory): at least 64 MiB when it loads an initrd (it puts the
 * initrd at 64 MiB), below 2 GiB (a signed 32-bit size), in steps of 128 KiB.
 */
export const MIN_PC_RAM = 64 * 1024 * 1024;
export const MAX_PC_RAM = 2 ** 31 - 128 * 1024;
export const PC_RAM_STEP = 128 * 1024;

export interface PcFirmware {
  bios: string;
  vgaBios: string | null;
}

export interface PcBoot {
  kernel: string;
  initrd: string | null;
  append: string;
}

/**
 * Where guest RAM is: v86's memory, made shared (shared-wasm-memory.ts), from byte `base` on.
 * The vCPU thread says so when its emulator is built, and again when it builds a new one.
 */
export interface GuestRamPlace {
  ram: SharedArrayBuffer;
  base: number;
  memory: WebAssembly.Memory;
  /** where the emulator's write log is in `ram` (write-log.ts); -1 when it has none */
  log: number;
}

/** workerData of the PC's vCPU thread (structured-cloneable). */
export interface PcWorkerData {
  ramBytes: number;
  wasmPath: string;
  firmware: PcFirmware;
  /** what to boot; null on a destination, whose RAM and state arrive by migration */
  boot: PcBoot | null;
  /** --mem-prealloc: write every page of the emulator's memory once at start */
  prealloc: boolean;
  /** VCPU words (src/ram/vcpu-control.ts) */
  control: SharedArrayBuffer;
  cpuSlots: SharedArrayBuffer;
  cpuSlot: number;
}

/** workerData of the PC's dirty_sync thread (dirty-sync-worker.ts) and its helper. */
export interface DirtySyncWorkerData {
  /** the copy of guest RAM that a source's engine sends from: one RAM block */
  mirror: RamBlockDesc;
  /** the mirror's known-zero map (src/ram/known-zero.ts), shared by the two threads */
  mirrorZero: SharedArrayBuffer;
  /** the SPLIT words (sync-split.ts) */
  split: SharedArrayBuffer;
  /** VCPU words: their sync tickets */
  control: SharedArrayBuffer;
  cpuSlots: SharedArrayBuffer;
  cpuSlot: number;
}

/** The one message the dirty_sync threads take: guest RAM's (new) place. */
export type DirtySyncRequest = GuestRamPlace;

/** Messages from the main thread to the vCPU thread. */
export type PcRequest =
  | { type: 'serial-in'; data: Uint8Array }
  | { type: 'save-state'; id: number }
  /** a migration's pages start landing in guest RAM: a failed one needs a new emulator */
  | { type: 'incoming' }
  | {
      type: 'load-state';
      id: number;
      json: Record<string, unknown>;
      blob: ArrayBuffer | null;
    }
  /** answered with the new emulator's GuestRamPlace */
  | { type: 'discard'; id: number };

/** Messages from the vCPU thread to the main thread. */
export type PcReply =
  | { type: 'ready'; zeroedPages: number; guest: GuestRamPlace }
  | { type: 'serial-out'; data: Uint8Array }
  /** the device state, saved as the vCPU stopped for a switchover (REQ_SWITCHOVER) */
  | { type: 'switchover-state'; json: Record<string, unknown>; blob: ArrayBuffer }
  | { type: 'done'; id: number; result?: unknown; blob?: ArrayBuffer }
  | { type: 'failed'; id: number; message: string }
  | { type: 'fatal'; message: string };
