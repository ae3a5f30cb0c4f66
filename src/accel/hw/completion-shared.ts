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
  /** How dsa_completion waits for records (chooseHwWait). */
  wait: HwWait;
}

/**
 * How dsa_completion waits for hardware completion records:
 *   - 'sleep' (default): nanosleep through most of the expected latency, then look in steps
 *     of 5 µs growing to 1 ms. The thread is off the CPU most of the time a request is in flight.
 *   - 'umwait': UMONITOR/UMWAIT (WAITPKG) in ~10 µs slices: the lowest latency, the core in C0.2
 *     (the SMT sibling gets its resources), but the thread stays scheduled: its CPU time runs.
 *   - 'pause': a pause loop for 20 µs, then sleeps of 2 µs doubling to 50 µs.
 */
export const HW_WAITS = ['sleep', 'umwait', 'pause'] as const;
export type HwWait = (typeof HW_WAITS)[number];
/** Each wait in words (the selftest's environment). */
export const HW_WAIT_WORDS: Record<HwWait, string> = {
  sleep: 'nanosleep through most of the expected latency, then looks in growing steps',
  umwait: 'UMONITOR/UMWAIT in ~10 µs slices (the thread stays on the CPU)',
  pause: 'a pause loop, then short sleeps',
};
/** The addon's waitAny method numbers. */
export const WAIT_METHOD: Record<HwWait, number> = { pause: 0, umwait: 1, sleep: 2 };

/** The wait: LIVEMIG_DSA_WAIT (sleep, umwait, pause), or 'sleep'. */
export function chooseHwWait(
  setting: string | undefined = process.env.LIVEMIG_DSA_WAIT,
  waitpkg: boolean,
): HwWait {
  if (setting === undefined || setting === '') return 'sleep';
  if (!(HW_WAITS as readonly string[]).includes(setting)) {
    throw new RangeError(
      `LIVEMIG_DSA_WAIT=${setting} is not a completion wait: use ${HW_WAITS.join(', ')}`,
    );
  }
  if (setting === 'umwait' && !waitpkg) {
    throw new RangeError(
      'LIVEMIG_DSA_WAIT=umwait needs WAITPKG (UMONITOR/UMWAIT), which this CPU does not offer',
    );
  }
  return setting as HwWait;
}
