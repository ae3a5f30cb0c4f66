// What the driver and the hardware dsa_completion worker share, besides the arena layout of
// src/accel/arena.ts. The words below are in ranges arena.ts leaves unused: header words 9–63
// (arena.ts uses 0–8, then 64+) and slot metadata words 11–15 (it uses 0–10, then 16+).

import type { ArenaLayout } from '../arena.js';
import type { HwWqHandle } from './wq.js';

/** Header: 1 while dsa_completion sleeps in Atomics.wait (a submitter must notify it). */
export const A_HW_SLEEPING = 9;
/** Header: set by every hardware submission; dsa_completion waits on it with the records. */
export const A_HW_KICK = 10;
/** Slot metadata: bumped by each hardware request that takes the slot. */
export const M_HW_SEQ = 11;

export interface HwCompletionWorkerData {
  arena: SharedArrayBuffer;
  layout: ArenaLayout;
  /** The kernel WQs, by device index (their state words: src/accel/hw/wq-state.ts). */
  wqs: HwWqHandle[];
  /** UMONITOR/UMWAIT where WAITPKG exists, otherwise a pause loop with backoff. */
  wait: 'umwait' | 'pause';
}
