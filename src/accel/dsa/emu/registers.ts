// The emulated device's register file, in a SharedArrayBuffer every thread can map: device
// state (GENSTS), the software error register (SWERR), the interrupt message storage (IMS),
// per-group doorbells the engines sleep on, fault-injection knobs, per-engine statistics, and
// the engines' thread-CPU report (src/util/cpu-report.ts, one thread per engine).
//
// Who writes what, in which order:
// - C_STATE: the device's owner (EmulatedDevice: halt, reset) and an engine halting by
//   injection. haltDevice adds C_HALT_GEN first, then stores HALTED, then rings the doorbells.
//   Engines and submitters only read it.
// - A halt's acknowledgement: an engine that has stopped touching memory stores
//   C_ENGINE_ACK + its index = the generation, then adds C_HALT_ACKS and notifies it; reset()
//   waits for every engine's acknowledgement before it empties the WQs and stores ENABLED.
// - SWERR: a recorder CASes C_SWERR_VALID 0 → 2 (being written), writes the fields, then
//   stores 1; while VALID is not 0 a further error only adds C_SWERR_OVERFLOW. The reader
//   (takeSwerr) reads the fields once VALID is 1, then stores 0.
// - IMS entries: the driver allocates one (CAS FREE → RESERVED, address and flags, then VALID)
//   and frees it (FREE); engines use VALID entries only.
// - Doorbells: a submitter adds to its group's doorbell and notifies only when C_SLEEPERS says
//   an engine sleeps; an engine adds to C_SLEEPERS, re-checks its WQs, then waits.
// - The CPU report: as cpu-report.ts says; a reader also rings the doorbells, since engines
//   sleep on them. Each engine's statistics are written by that engine only.

import { CpuReport, cpuReportBytes } from '../../../util/cpu-report.js';

export const DevState = {
  DISABLED: 0,
  ENABLED: 1,
  DRAIN: 2,
  HALTED: 3,
} as const;

export const DEV_STATE_NAMES = ['disabled', 'enabled', 'drain', 'halted'];

// Int32 words.
export const C_STATE = 0;
/** Incremented by each reset; descriptors submitted in an earlier epoch can no longer run. */
export const C_EPOCH = 1;
export const C_SHUTDOWN = 2;
/** Engines that have seen the current halt and stopped touching memory. */
export const C_HALT_ACKS = 3;
/** Fault injection: halt the device before running this many more descriptors (0 = off). */
export const C_HALT_AFTER = 4;
/** Fault injection: microseconds an engine sleeps before each descriptor it dequeues. */
export const C_ENGINE_DELAY_US = 5;
export const C_SWERR_VALID = 8;
export const C_SWERR_STATUS = 9;
export const C_SWERR_OPCODE = 10;
export const C_SWERR_WQ = 11;
export const C_SWERR_ADDR_LO = 12;
export const C_SWERR_ADDR_HI = 13;
export const C_SWERR_OVERFLOW = 14;
/** Set by the first engine that raised the interrupts for the current halt. */
export const C_HALT_IRQ_DONE = 15;
export const C_DOORBELL = 16; // + group (4)
export const C_SLEEPERS = 20; // + group (4)
export const C_ENGINES_RUNNING = 24;
/** Fault injection: engines take nothing from the WQs while set (submissions still land). */
export const C_PAUSED = 25;
/** Incremented by every halt; each engine acknowledges the generation it has stopped for. */
export const C_HALT_GEN = 26;
/** Per engine (+ index): the halt generation the engine acknowledged. */
export const C_ENGINE_ACK = 32;

/** Interrupt message storage: entries the driver points at words in registered memory. */
export const IMS_ENTRIES = 512;
export const IMS_WORD = 64;
const IMS_STRIDE = 4; // state, addrLo, addrHi, flags
export const IMS_FREE = 0;
const IMS_RESERVED = 1;
export const IMS_VALID = 2;
/** IMS flag: the entry also receives the device's error interrupt (halt). */
export const IMS_MISC = 1;

const WORDS = IMS_WORD + IMS_ENTRIES * IMS_STRIDE;

/** Per-engine statistics, Float64, written only by the engine itself. */
export const MAX_ENGINES = 8;
export const E_DESCRIPTORS = 0;
export const E_BATCHES = 1;
export const E_BYTES = 2;
export const E_FAULTS = 3;
export const E_ERRORS = 4;
const E_STRIDE = 8;
const STATS_BYTE = WORDS * 4;
const CPU_REPORT_BYTE = STATS_BYTE + MAX_ENGINES * E_STRIDE * 8;

export function createRegisterFile(): SharedArrayBuffer {
  return new SharedArrayBuffer(CPU_REPORT_BYTE + cpuReportBytes(MAX_ENGINES));
}

export interface Registers {
  words: Int32Array;
  stats: Float64Array;
  /** Engine `index` answers as thread `index`. */
  cpu: CpuReport;
}

export function openRegisters(sab: SharedArrayBuffer): Registers {
  return {
    words: new Int32Array(sab, 0, WORDS),
    stats: new Float64Array(sab, STATS_BYTE, MAX_ENGINES * E_STRIDE),
    cpu: new CpuReport(sab, CPU_REPORT_BYTE, MAX_ENGINES),
  };
}

/** What engine `engine` has counted. */
export function engineCounts(r: Registers, engine: number) {
  const at = engine * E_STRIDE;
  return {
    descriptors: r.stats[at + E_DESCRIPTORS],
    batches: r.stats[at + E_BATCHES],
    bytes: r.stats[at + E_BYTES],
    faults: r.stats[at + E_FAULTS],
    errors: r.stats[at + E_ERRORS],
  };
}

export function addEngineStat(r: Registers, engine: number, field: number, v: number): void {
  r.stats[engine * E_STRIDE + field] += v;
}

/** The device is enabled, in `epoch` (a kernel WQ's state words have these positions too). */
export function enabledIn(w: Int32Array, epoch: number): boolean {
  return Atomics.load(w, C_STATE) === DevState.ENABLED && Atomics.load(w, C_EPOCH) === epoch;
}

/** Wake every engine of every group (after a state change or a request). */
export function ringAllDoorbells(w: Int32Array): void {
  for (let g = 0; g < 4; g++) {
    Atomics.add(w, C_DOORBELL + g, 1);
    Atomics.notify(w, C_DOORBELL + g);
  }
}

/** Tell the engines of `group` there is work; the notify is skipped when none sleeps. */
export function ringDoorbell(w: Int32Array, group: number): void {
  Atomics.add(w, C_DOORBELL + group, 1);
  if (Atomics.load(w, C_SLEEPERS + group) > 0) Atomics.notify(w, C_DOORBELL + group, 1);
}

/** Record a software error (the SWERR register); a second one before it is read overflows. */
export function recordSwerr(
  w: Int32Array,
  status: number,
  opcode: number,
  wq: number,
  addrLo: number,
  addrHi: number,
): void {
  if (Atomics.compareExchange(w, C_SWERR_VALID, 0, 2) !== 0) {
    Atomics.add(w, C_SWERR_OVERFLOW, 1);
    return;
  }
  Atomics.store(w, C_SWERR_STATUS, status);
  Atomics.store(w, C_SWERR_OPCODE, opcode);
  Atomics.store(w, C_SWERR_WQ, wq);
  Atomics.store(w, C_SWERR_ADDR_LO, addrLo);
  Atomics.store(w, C_SWERR_ADDR_HI, addrHi);
  Atomics.store(w, C_SWERR_VALID, 1);
}

export interface SoftwareError {
  status: number;
  opcode: number;
  wq: number;
  addrLo: number;
  addrHi: number;
  overflow: number;
}

/** Read and clear SWERR (undefined when no error is recorded). */
export function takeSwerr(w: Int32Array): SoftwareError | undefined {
  if (Atomics.load(w, C_SWERR_VALID) !== 1) return undefined;
  const e: SoftwareError = {
    status: Atomics.load(w, C_SWERR_STATUS),
    opcode: Atomics.load(w, C_SWERR_OPCODE),
    wq: Atomics.load(w, C_SWERR_WQ),
    addrLo: Atomics.load(w, C_SWERR_ADDR_LO) >>> 0,
    addrHi: Atomics.load(w, C_SWERR_ADDR_HI) >>> 0,
    overflow: Atomics.exchange(w, C_SWERR_OVERFLOW, 0),
  };
  Atomics.store(w, C_SWERR_VALID, 0);
  return e;
}

/** Halt the device (fault injection, or an engine's fatal error). */
export function haltDevice(w: Int32Array): boolean {
  if (Atomics.load(w, C_STATE) === DevState.HALTED) return false;
  Atomics.add(w, C_HALT_GEN, 1);
  const prev = Atomics.exchange(w, C_STATE, DevState.HALTED);
  Atomics.notify(w, C_STATE);
  ringAllDoorbells(w);
  return prev !== DevState.HALTED;
}

// ---- IMS ----

function ims(i: number): number {
  return IMS_WORD + i * IMS_STRIDE;
}

/** Allocate an IMS entry that writes to device address (lo, hi). Returns its handle. */
export function allocIms(w: Int32Array, lo: number, hi: number, flags: number): number {
  for (let i = 1; i < IMS_ENTRIES; i++) {
    const e = ims(i);
    if (Atomics.compareExchange(w, e, IMS_FREE, IMS_RESERVED) !== IMS_FREE) continue;
    Atomics.store(w, e + 1, lo);
    Atomics.store(w, e + 2, hi);
    Atomics.store(w, e + 3, flags);
    Atomics.store(w, e, IMS_VALID);
    return i;
  }
  throw new Error(`the interrupt message storage is full (${IMS_ENTRIES - 1} entries in use)`);
}

export function freeIms(w: Int32Array, handle: number): void {
  if (handle <= 0 || handle >= IMS_ENTRIES) return;
  Atomics.store(w, ims(handle), IMS_FREE);
}

export function imsValid(w: Int32Array, handle: number): boolean {
  return handle > 0 && handle < IMS_ENTRIES && Atomics.load(w, ims(handle)) === IMS_VALID;
}

export function imsAddrLo(w: Int32Array, handle: number): number {
  return Atomics.load(w, ims(handle) + 1);
}

export function imsAddrHi(w: Int32Array, handle: number): number {
  return Atomics.load(w, ims(handle) + 2);
}

/** Handles of the valid entries with IMS_MISC. */
export function miscImsHandles(w: Int32Array): number[] {
  const out: number[] = [];
  for (let i = 1; i < IMS_ENTRIES; i++) {
    const e = ims(i);
    if (Atomics.load(w, e) === IMS_VALID && Atomics.load(w, e + 3) & IMS_MISC) out.push(i);
  }
  return out;
}
