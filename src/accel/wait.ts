// Waiting, without blocking the thread: for a request's completion records (woken by its
// slot's interrupt word), and between refused submissions (backoff).

import { M_IRQ, M_STATE, SLOT_HALTED, SLOT_SUBMITTED, type ArenaView } from './arena.js';
import { W_SPACE_WAITERS } from './dsa/emu/wq.js';
import type { PageRequest } from './page-request.js';

export const OUTCOME_DONE = 0;
export const OUTCOME_HALTED = 1;
export const OUTCOME_DEADLINE = 2;

/** Refused submissions retried at once before backing off. */
export const SPIN_RETRIES = 4;
const MAX_BACKOFF_MS = 2;

/** A word nobody notifies: the backoff is a plain sleep where a WQ says nothing about room. */
export const sleepWord = new Int32Array(new SharedArrayBuffer(4));

/** What the waits ask of the task they wait for. */
export interface WaitingTask {
  readonly arena: ArenaView;
  /** The request's device is still enabled, in the epoch the request started in. */
  deviceUsable(epoch: number): boolean;
  /** Called once the slot is marked submitted (hardware: wake dsa_completion). */
  submitted(): void;
}

/** Sleep until `words[idx]` changes or a backoff for `attempt` passes. */
export async function backoff(
  words: Int32Array,
  idx: number,
  attempt: number,
  /** an emulated WQ ring: say that a submitter waits for room */
  ringWaiter = false,
): Promise<void> {
  const seen = Atomics.load(words, idx);
  if (ringWaiter) Atomics.add(words, W_SPACE_WAITERS, 1);
  const ms = Math.min(MAX_BACKOFF_MS, 0.02 * 2 ** (attempt - SPIN_RETRIES));
  const r = Atomics.waitAsync(words, idx, seen, ms);
  if (r.async) await r.value;
  if (ringWaiter) Atomics.sub(words, W_SPACE_WAITERS, 1);
}

/** One check of the wait loop: an outcome, or -1 to keep waiting. */
function poll(t: WaitingTask, r: PageRequest, nsub: number): number {
  const a = t.arena;
  if (a.firstPending(r.slot, 0, nsub) === nsub) return OUTCOME_DONE;
  if (Atomics.load(a.i32, a.meta(r.slot, M_STATE)) === SLOT_HALTED || !t.deviceUsable(r.epoch)) {
    return OUTCOME_HALTED;
  }
  return performance.now() >= r.deadline ? OUTCOME_DEADLINE : -1;
}

/** Wait until the request's `nsub` sub-requests completed, the device halted, or the deadline. */
export async function waitForRecords(
  t: WaitingTask,
  r: PageRequest,
  nsub: number,
): Promise<number> {
  if (nsub === 0) return OUTCOME_DONE;
  const a = t.arena;
  const w = a.i32;
  Atomics.store(w, a.meta(r.slot, M_STATE), SLOT_SUBMITTED);
  t.submitted();
  const irq = a.meta(r.slot, M_IRQ);
  r.waiting = true;
  for (;;) {
    const seen = Atomics.load(w, irq);
    const o = poll(t, r, nsub);
    if (o >= 0) {
      r.waiting = false;
      return o;
    }
    // No timeout: the client's deadline watch (driver.ts) wakes a request that is overdue.
    const res = Atomics.waitAsync(w, irq, seen);
    if (res.async) await res.value;
  }
}
