// Whether this process's warm-ups may run. A warm-up is a pooled thread running its hot code on
// data of its own before any migration needs it, so that V8 has compiled that code by then
// (src/migration/source/send-warm-up.ts, src/accel/dsa/emu/engine-warm-up.ts). A migration that
// starts while they run shares the cores with them: on a 2-core host, a `migrate` sent as soon
// as the processes answered spent ~0.3 s more in setup (docs/benchmarks.md). So they give way.
//
// One Int32 word, in worker_threads environment data, so that every thread of the process (and
// every thread those start) sees the same memory:
//   - the main thread adds 1 when a migration starts (pauseWarmUps) and takes 1 away once it
//     has ended (the function pauseWarmUps returned): a count, so that one migration's end
//     does not resume warm-ups while another is under way;
//   - a warm-up reads it before each step (a packet, a round of descriptors) and ends as soon as
//     it is not 0. Nothing waits on the word, so nobody is notified.
// The main thread creates the word when this module first loads there, which is before any
// pooled thread exists (worker-pool.ts imports it). A thread started without it gets a word of
// its own that stays 0: its warm-ups run to the end.

import { getEnvironmentData, isMainThread, setEnvironmentData } from 'node:worker_threads';

const KEY = 'livemig:warm-up-gate';

function gateWord(): Int32Array {
  const inherited = getEnvironmentData(KEY);
  if (inherited instanceof SharedArrayBuffer) return new Int32Array(inherited);
  const own = new SharedArrayBuffer(4);
  if (isMainThread) setEnvironmentData(KEY, own);
  return new Int32Array(own);
}

const word = gateWord();

/** A warm-up is to end now: a migration is under way in this process. */
export function warmUpsPaused(): boolean {
  return Atomics.load(word, 0) !== 0;
}

/**
 * The main thread, as a migration starts: warm-ups end at their next step. Returns what to call
 * once it has ended (later calls do nothing); warm-ups started after that run again.
 */
export function pauseWarmUps(): () => void {
  Atomics.add(word, 0, 1);
  let paused = true;
  return () => {
    if (paused) Atomics.sub(word, 0, 1);
    paused = false;
  };
}
