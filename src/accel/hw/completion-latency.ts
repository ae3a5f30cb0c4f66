// How long dsa_completion can sleep before a hardware completion record is likely written.
//
// User space gets no completion interrupt, so waiting costs CPU unless the thread sleeps; but a
// sleep that overshoots delays the channel. dsa_completion learns how long requests take (from
// when it first sees a slot in flight to when its records are all written, an exponentially
// weighted mean) and sleeps through most of what a pending request still has to go
// (src/accel/hw/completion-worker.ts passes it to the addon's waitAny, method 'sleep').

/** Weight of a new sample in the mean. */
const ALPHA = 1 / 8;
/** Sleep this share of the expected remaining time: undershoot, then look in short steps. */
const SHARE = 0.75;
const OVERDUE_MIN_US = 5;
const OVERDUE_MAX_US = 1000;

export class CompletionLatency {
  /** Mean request latency (ms); 0 until the first sample. */
  meanMs = 0;
  private readonly since: Float64Array;

  constructor(slots: number) {
    this.since = new Float64Array(slots).fill(NaN);
  }

  /** Slot `s` carries a new request, first seen at `now` (ms). */
  start(s: number, now: number): void {
    this.since[s] = now;
  }

  /** Slot `s`'s records were all written (seen at `now`): a sample. */
  done(s: number, now: number): void {
    const t0 = this.since[s];
    this.since[s] = NaN;
    if (Number.isNaN(t0)) return;
    const ms = now - t0;
    this.meanMs = this.meanMs === 0 ? ms : this.meanMs + ALPHA * (ms - this.meanMs);
  }

  /** Slot `s` ended without its records (halted): no sample. */
  forget(s: number): void {
    this.since[s] = NaN;
  }

  /** µs slot `s` may still sleep through at `now` (0: a slot not in flight). */
  sleepUs(s: number, now: number): number {
    const t0 = this.since[s];
    if (Number.isNaN(t0)) return 0;
    // Before the first sample the expected time is 0: every wait counts as late.
    const leftMs = this.meanMs - (now - t0);
    if (leftMs > 0) return leftMs * SHARE * 1000;
    // Late (a record slow, or lost until the deadline): sleep half as long as it has been
    // late, 5 µs to 1 ms, so a lost record costs ~1,000 wake-ups a second, not one per step.
    return Math.min(OVERDUE_MAX_US, Math.max(OVERDUE_MIN_US, (-leftMs * 1000) / 2));
  }
}
