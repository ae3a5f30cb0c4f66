// The driver's shared memory ("DMA arena"): one SharedArrayBuffer per open accelerator,
// registered with the devices, holding
//
//   - a header: the dsa_completion thread's interrupt word, shutdown word and CPU report,
//     DWQ credit counters, IMS handles;
//   - per batch task: a state word and a block of Float64 counters;
//   - per descriptor slot: metadata (state, the word the owning channel waits on, what was
//     submitted) and its memory: `maxPages` 64-byte descriptors (64-byte aligned), `maxPages`
//     32-byte member completion records and `maxSub` 32-byte batch completion records.
//
// A request takes a free slot, fills it and submits it; so a channel can have several requests
// in flight (pipelining), and a slot the device may still write to after its deadline stays out
// of use until the device is done with it.
//
// Who writes what, in order: the opener writes the header (IMS handles, credits, MAGIC last)
// before any other thread sees the buffer. Submitters bump A_RR and pass the gate (G_*,
// submit-gate.ts); devices and direct-mode interrupts add to A_IRQ and M_IRQ and notify;
// dsa_completion alone writes A_COMPLETION_*, its CPU report and the slot states it settles;
// close() stores A_SHUTDOWN, then wakes A_IRQ. Tasks: a task entry is claimed by CAS, only
// its owner writes its counters. Slots: slots.ts (states), credits.ts (M_CREDITS).

import { COUNTER_FIELDS } from './counters.js';

// Header words (Int32).
export const A_MAGIC = 0;
export const A_SHUTDOWN = 1;
/** The dsa_completion thread's interrupt word: IMS entries point here. */
export const A_IRQ = 2;
export const A_RR = 5;
/** dsa_completion's thread-CPU report (src/util/cpu-report.ts, one thread): words 20-23. */
export const CPU_REPORT_BYTE = 80;
/** The submit gate (submit-gate.ts): submitters inside, and the closing flag. */
export const G_INSIDE = 6;
export const G_CLOSING = 16;
/** Slots dsa_completion marked COMPLETED or HALTED (and woke the owner of). */
export const A_COMPLETION_HANDLED = 7;
export const A_COMPLETION_RUNNING = 8;
/** Free credits of each dedicated-WQ target (+ target index). */
export const A_CREDITS = 64;
/** The completion thread's IMS handle on each device (+ device index). */
export const A_COMP_IMS = 128;
export const HEADER_WORDS = 256;
export const MAGIC = 0x4c4d4443; // "LMDC"

export const MAX_TARGETS = 64;
export const MAX_DEVICES = 64;
export const MAX_TASKS = 128;

// Task table states: a task's entry is claimed from FREE or RETIRED (compare-and-exchange),
// only its owner writes its counters, and close() marks it RETIRED. No lock: a thread ended
// in the middle leaves an entry OPEN, still counted, never a lock held.
export const TASK_FREE = 0;
export const TASK_OPEN = 1;
export const TASK_RETIRED = 2;

// Slot states.
export const SLOT_FREE = 0;
/** Owned by a channel that is filling or collecting it. */
export const SLOT_BUSY = 1;
export const SLOT_SUBMITTED = 2;
/** All records are in (set by dsa_completion in 'thread' mode). */
export const SLOT_COMPLETED = 3;
/** The device halted with the slot in flight (set by dsa_completion). */
export const SLOT_HALTED = 4;
/** Given up (deadline or halt); the device may still write to it until it finishes. */
export const SLOT_ABANDONED = 5;

// Slot metadata words.
export const M_STATE = 0;
/** The owner waits on this word; interrupts (direct mode) or dsa_completion bump it. */
export const M_IRQ = 1;
export const M_TARGET = 3;
/** Sub-requests (batch or single descriptors) submitted. */
export const M_NSUB = 5;
export const M_EPOCH = 6;
/** DWQ credits the slot holds. */
export const M_CREDITS = 7;
export const M_DEVICE = 8;
/** Page size the descriptor templates were written for, and how many are written. */
export const M_TMPL_SIZE = 9;
export const M_TMPL_COUNT = 10;
/** Word index of each sub-request's watched completion record. */
export const M_WATCH = 16;

export interface ArenaLayout {
  slots: number;
  maxPages: number;
  /** Sub-requests (batches) a slot can be split into. */
  maxSub: number;
  devices: number;
  taskStateWord: number;
  /**
   * Float64 index of task t's counters: taskCounters + t * COUNTER_FIELDS. A closed task's
   * counters stay (its state word says RETIRED) and count in the totals; the next task there
   * goes on from them.
   */
  taskCounters: number;
  slotMetaWord: number;
  slotMetaStride: number;
  /** Word offset (in slot meta) of the slot's IMS handle per device. */
  slotImsOffset: number;
  slotMemByte: number;
  slotMemStride: number;
  totalBytes: number;
}

function alignUp(n: number, a: number): number {
  return Math.ceil(n / a) * a;
}

export function arenaLayout(
  slots: number,
  maxPages: number,
  maxSub: number,
  devices: number,
): ArenaLayout {
  const taskStateWord = HEADER_WORDS;
  const countersByte = alignUp((taskStateWord + MAX_TASKS) * 4, 64);
  const taskCounters = countersByte / 8;
  const slotMetaByte = alignUp((taskCounters + MAX_TASKS * COUNTER_FIELDS) * 8, 64);
  const slotImsOffset = M_WATCH + maxSub;
  const slotMetaStride = alignUp(slotImsOffset + devices, 16);
  const slotMemByte = alignUp(slotMetaByte + slots * slotMetaStride * 4, 64);
  const slotMemStride = alignUp(maxPages * 96 + maxSub * 32, 64);
  return {
    slots,
    maxPages,
    maxSub,
    devices,
    taskStateWord,
    taskCounters,
    slotMetaWord: slotMetaByte / 4,
    slotMetaStride,
    slotImsOffset,
    slotMemByte,
    slotMemStride,
    totalBytes: slotMemByte + slots * slotMemStride,
  };
}

export class ArenaView {
  readonly i32: Int32Array;
  readonly f64: Float64Array;

  constructor(
    readonly sab: SharedArrayBuffer,
    readonly layout: ArenaLayout,
  ) {
    this.i32 = new Int32Array(sab);
    this.f64 = new Float64Array(sab);
  }

  /** Word index of slot metadata field `field`. */
  meta(slot: number, field: number): number {
    return this.layout.slotMetaWord + slot * this.layout.slotMetaStride + field;
  }

  /** Byte offset of member descriptor `i` of `slot`. */
  descByte(slot: number, i: number): number {
    return this.layout.slotMemByte + slot * this.layout.slotMemStride + i * 64;
  }

  /** Byte offset of member completion record `i` of `slot`. */
  recordByte(slot: number, i: number): number {
    const l = this.layout;
    return l.slotMemByte + slot * l.slotMemStride + l.maxPages * 64 + i * 32;
  }

  /** Byte offset of batch completion record `s` of `slot`. */
  batchRecordByte(slot: number, s: number): number {
    const l = this.layout;
    return l.slotMemByte + slot * l.slotMemStride + l.maxPages * 96 + s * 32;
  }

  /** The first of the slot's watched records, from `from` on, not yet written (`nsub`: none). */
  firstPending(slot: number, from: number, nsub: number): number {
    const w = this.i32;
    let k = from;
    while (
      k < nsub &&
      (Atomics.load(w, Atomics.load(w, this.meta(slot, M_WATCH + k))) & 0xff) !== 0
    )
      k++;
    return k;
  }

  taskState(t: number): number {
    return this.layout.taskStateWord + t;
  }

  taskCounters(t: number): number {
    return this.layout.taskCounters + t * COUNTER_FIELDS;
  }
}
