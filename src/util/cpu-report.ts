// The thread-CPU report: how threads tell others the CPU time they used, each measuring
// itself (/proc/thread-self/schedstat), with an optional request for fresh figures. Used by
// every migration thread (cpu-slots.ts, publishing on their own schedule), by the
// accelerator's dsa_completion (asked on demand through the arena) and by the emulated
// device's engines (asked through its register file).
//
// Layout, at an 8-aligned byte offset of a SharedArrayBuffer:
//   Int32   REQ   (+0)          readers add 1 to ask every thread for a fresh figure
//   Int32   ACKS  (+4)          a thread adds 1 once it has published in answer, then notifies
//   Float64 MS[k] (+8 + 8*k)    thread k's CPU milliseconds
// Who writes what, in which order:
//   - thread k alone writes MS[k] (a plain store: one writer, and a torn read is impossible for
//     an aligned Float64 on the platforms Node runs on); to answer a request it first writes
//     MS[k], then adds 1 to ACKS (sequentially consistent, so a reader that sees the ACKS sees
//     the figure), then notifies ACKS;
//   - a reader reads ACKS, then adds 1 to REQ (and wakes the threads however they sleep), then
//     waits until ACKS has gone up by the number of threads that answer.

import { waitUntil } from './wait-until.js';

const REQ = 0;
const ACKS = 1;

/** Bytes of a report for `threads` threads. */
export function cpuReportBytes(threads: number): number {
  return 8 + 8 * threads;
}

export class CpuReport {
  private readonly words: Int32Array;
  private readonly ms: Float64Array;

  constructor(
    sab: SharedArrayBuffer,
    byteOffset: number,
    readonly threads: number,
  ) {
    if (byteOffset % 8 !== 0) throw new RangeError(`byte offset ${byteOffset} is not 8-aligned`);
    this.words = new Int32Array(sab, byteOffset, 2);
    this.ms = new Float64Array(sab, byteOffset + 8, threads);
  }

  // ---- the measured thread ----

  /** Thread `k` publishes its CPU milliseconds. */
  publish(k: number, ms: number): void {
    this.ms[k] = ms;
  }

  /** The request count now: a thread's starting `seen` when it answers every later request. */
  requests(): number {
    return Atomics.load(this.words, REQ);
  }

  /**
   * Thread `k`: answer the request made since `seen`, if any, with `ms()`. Returns the request
   * count now answered (the next call's `seen`).
   */
  answer(k: number, seen: number, ms: () => number): number {
    const req = Atomics.load(this.words, REQ);
    if (req === seen) return seen;
    this.ms[k] = ms();
    Atomics.add(this.words, ACKS, 1);
    Atomics.notify(this.words, ACKS);
    return req;
  }

  // ---- readers ----

  /** Ask for fresh figures: returns the answers counted so far (for answered()). */
  ask(): number {
    const before = Atomics.load(this.words, ACKS);
    Atomics.add(this.words, REQ, 1);
    return before;
  }

  /** Wait until `n` answers came after ask() returned `before`: false after `timeoutMs`. */
  answered(before: number, n: number, timeoutMs: number): Promise<boolean> {
    const w = this.words;
    return waitUntil(w, ACKS, () => Atomics.load(w, ACKS) - before >= n, timeoutMs);
  }

  /** Thread `k`'s last published figure. */
  read(k: number): number {
    return this.ms[k];
  }
}
