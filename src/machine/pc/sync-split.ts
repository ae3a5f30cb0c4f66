// The last dirty sync of a switchover runs with the guest stopped, inside the downtime, and a
// full comparison of 256 MiB takes 7-20 ms on one thread here. The dirty_sync thread then hands
// half of RAM (every other 1 MiB stripe: mirror-sync.ts syncMirrorPart) to a helper thread
// (dirty_sync_1) and syncs the other half itself, the two in parallel on the core the stopped
// vCPU left free. These are the words between the two.
//
// Who writes what, in which order (Int32 words; every write an Atomics store or add, then a
// notify on the same word):
// - request: dirty_sync only: Atomics.add 1 to hand out a job; the value after the add is the
//   job's number J. Nothing else of the job travels: the helper's part of RAM is fixed (part 1
//   of 2), and the RAM it compares is the RAM dirty_sync compares.
// - pages and cpuMicros, then done: the helper only. After syncing its part for job J it stores
//   the pages it found changed in `pages` and the CPU that took in `cpuMicros`, then J in `done`.
//   dirty_sync reads `pages` and `cpuMicros` only once done == J.
// One job is out at a time: dirty_sync waits for `done` before it hands out the next.

import { micros } from '../../ram/vcpu-control.js';

export const SPLIT = {
  /** jobs handed out (see above) */
  request: 0,
  /** the last job the helper finished */
  done: 1,
  /** pages the helper's part of the last job found changed */
  pages: 2,
  /** the helper's CPU time for the last job, µs */
  cpuMicros: 3,
  size: 4,
} as const;

/** Named operations on the split words, for dirty_sync and its helper alike. */
export class SyncSplit {
  readonly words: Int32Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(4 * SPLIT.size)) {
    this.words = new Int32Array(buffer);
  }

  /** dirty_sync: hand the helper its part of a new sync; returns the job's number. */
  handOut(): number {
    const job = Atomics.add(this.words, SPLIT.request, 1) + 1;
    Atomics.notify(this.words, SPLIT.request);
    return job;
  }

  /**
   * dirty_sync: wait until the helper finished `job`; returns its pages and CPU time, or null if
   * it did not finish within `timeoutMs` (a dead helper: the caller syncs the part itself).
   */
  awaitJob(job: number, timeoutMs: number): { pages: number; cpuMicros: number } | null {
    const until = performance.now() + timeoutMs;
    for (;;) {
      const done = Atomics.load(this.words, SPLIT.done);
      if (done === job) {
        return {
          pages: Atomics.load(this.words, SPLIT.pages),
          cpuMicros: Atomics.load(this.words, SPLIT.cpuMicros),
        };
      }
      const left = until - performance.now();
      if (left <= 0) return null;
      Atomics.wait(this.words, SPLIT.done, done, left);
    }
  }

  /** helper: the newest job handed out (equal to `lastDone` when there is none to do). */
  get requested(): number {
    return Atomics.load(this.words, SPLIT.request);
  }

  /** helper: the last job it finished. */
  get lastDone(): number {
    return Atomics.load(this.words, SPLIT.done);
  }

  /** helper: its part of `job` is synced, found `pages` changed, and took `cpuMicros` of CPU. */
  finish(job: number, pages: number, cpuMicros: number): void {
    Atomics.store(this.words, SPLIT.pages, pages);
    Atomics.store(this.words, SPLIT.cpuMicros, micros(cpuMicros));
    Atomics.store(this.words, SPLIT.done, job);
    Atomics.notify(this.words, SPLIT.done);
  }
}
