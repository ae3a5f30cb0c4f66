// How the main thread knows that the channel threads it told to warm up on an accelerator
// (send-warm-up.ts, 'warm-accel') no longer use it, before it closes it
// (src/machine/channel-warm-up.ts). Two Int32 words:
// - the main thread creates them, tells N idle threads, and may store 1 in `stop`;
// - each told thread, before it attaches, reads `stop` (set: it does not attach), stops at its
//   next packet once `stop` is set, and adds 1 to `done` once its client has stopped (or it
//   did not attach: bound first, or told to stop), then notifies `done`.
// The main thread closes the accelerator once `done` is N; if that takes too long, it stores
// `stop` and waits a little more: a thread that had not attached by then never will.

export const WARM = { done: 0, stop: 1, size: 2 } as const;

export class WarmUpCount {
  readonly words: Int32Array;

  constructor(readonly buffer = new SharedArrayBuffer(4 * WARM.size)) {
    this.words = new Int32Array(buffer);
  }

  /** A told thread: it no longer uses the accelerator (or never did). */
  done(): void {
    Atomics.add(this.words, WARM.done, 1);
    Atomics.notify(this.words, WARM.done);
  }

  /** The warm-ups are to stop at their next packet, and not to start. */
  get stopAsked(): boolean {
    return Atomics.load(this.words, WARM.stop) !== 0;
  }

  /** The main thread: ask every warm-up to stop. */
  askStop(): void {
    Atomics.store(this.words, WARM.stop, 1);
  }

  /** The main thread: until `told` threads are done (true), or `timeoutMs` passed (false). */
  async allDone(told: number, timeoutMs: number): Promise<boolean> {
    const w = this.words;
    const end = Date.now() + timeoutMs;
    for (;;) {
      const done = Atomics.load(w, WARM.done);
      if (done >= told) return true;
      const left = end - Date.now();
      if (left <= 0) return false;
      const r = Atomics.waitAsync(w, WARM.done, done, left);
      if (!r.async) continue;
      // A pending waitAsync does not keep Node's event loop alive; a timer does.
      const alive = setTimeout(() => {}, left);
      await r.value;
      clearTimeout(alive);
    }
  }
}
