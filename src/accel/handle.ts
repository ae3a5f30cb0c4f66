// What a thread needs to use an open accelerator (AccelHandle, structured-cloneable, passed in
// workerData), the options it was opened with, and the per-thread view of a device.

import type { ArenaLayout } from './arena.js';
import type { DsaEmu } from './dsa/emu/device.js';
import type { DsaEmuHandle, EmuDeviceHandle } from './dsa/emu/handles.js';
import type { WqRing } from './dsa/emu/wq.js';
import type { HwWait } from './hw/completion-shared.js';
import type { HwOpenOptions, HwWqHandle } from './hw/wq.js';
import type { SysfsOptions } from './sysfs.js';
import type { WorkerPool } from '../util/worker-pool.js';

export type CompletionMode = 'direct' | 'thread';

export interface OpenAcceleratorOptions {
  /**
   * The emulated devices `dsa-emu:` entries refer to: a running DsaEmu or its handle (from
   * another thread). Without it, openAccelerator starts the devices of `emuConfig` (default:
   * the built-in configuration) and stops them on close().
   */
  devices?: DsaEmu | DsaEmuHandle;
  /** accel-config JSON for the devices openAccelerator starts itself. */
  emuConfig?: unknown;
  /** Where `dsa:` entries are checked (sysfs and /dev roots). */
  sysfs?: SysfsOptions;
  /** How `dsa:` entries are opened (submission method; tests: a FIFO as the node). */
  hw?: HwOpenOptions;
  /** Largest request in pages (default 1024, the DSA batch limit). */
  maxPages?: number;
  /** Descriptor slots (concurrent requests over all channels; default 32). */
  slots?: number;
  /** A request not completed after this long is finished on the CPU (default 1000 ms). */
  deadlineMs?: number;
  /** Refused submissions tolerated per descriptor before falling back (default 64). */
  submitRetries?: number;
  /**
   * 'direct' (default): completion interrupts wake the owning channel; dsa_completion handles
   * device errors. 'thread': every completion goes through dsa_completion (QEMU's design).
   */
  completion?: CompletionMode;
  /**
   * Threads started ahead: dsa_completion is taken from here (a started Node worker costs
   * tens of milliseconds, which `migrate` would otherwise spend in setup). See
   * completionWorkerFile().
   */
  threads?: WorkerPool;
}

export interface AccelTargetHandle {
  /** "dsa-emu:dsa0/wq0.0" */
  text: string;
  /** Index of the device in the arena's device list (= emu.devices index). */
  device: number;
  /** Index of the WQ in the device's wqs. */
  wq: number;
}

/** Everything a thread needs to use the accelerator; structured-cloneable (workerData). */
export interface AccelHandle {
  kind: 'livemig-accel';
  arena: SharedArrayBuffer;
  layout: ArenaLayout;
  /** 'emu': dsa-emu work queues; 'hw': kernel idxd work queues (real virtual addresses). */
  space: 'emu' | 'hw';
  /** Device address of the arena's byte 0 (emulated address space, or the real address). */
  arenaBase: number;
  /** Owner tag of the memory this accelerator registers (unmapped all together on close). */
  owner: number;
  emu: DsaEmuHandle;
  /** The kernel WQs of a 'hw' accelerator (device index = index here). */
  hw: HwWqHandle[];
  /** How dsa_completion waits for hardware records (src/accel/hw/completion-shared.ts). */
  hwWait: HwWait;
  targets: AccelTargetHandle[];
  deadlineMs: number;
  submitRetries: number;
  mode: CompletionMode;
}

export interface BatchTaskOptions {
  /** Bytes per page (default 4096). */
  pageSize?: number;
  /**
   * What one of this task's pages counts as in the page counters (default 1). A task that
   * checks whole packets at once (pageSize = a packet) counts each as the pages it holds.
   */
  pagesPerUnit?: number;
}

/**
 * Per-thread state of a device: an emulated device's registers and WQ rings, or a kernel WQ
 * (whose state words have the emulated C_STATE/C_EPOCH positions).
 */
export interface DevicePort {
  handle?: EmuDeviceHandle;
  hw?: HwWqHandle;
  words: Int32Array;
  rings: WqRing[];
}
