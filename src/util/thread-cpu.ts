// CPU time of the calling thread, measured by the thread itself.
//
// Linux exposes each thread's scheduler statistics in /proc/thread-self/schedstat; the first
// field is the time spent on the CPU in nanoseconds. Worker threads cannot read another
// thread's CPU time from JavaScript by name, so every livemig thread that reports CPU time
// (dsa_completion, the emulated engines) reads its own and publishes it in shared memory.

import { readFileSync } from 'node:fs';

let unavailable = false;

/** CPU milliseconds used by the calling thread so far, or NaN where schedstat is missing. */
export function threadCpuMs(): number {
  if (unavailable) return Number.NaN;
  try {
    const text = readFileSync('/proc/thread-self/schedstat', 'latin1');
    const sp = text.indexOf(' ');
    return Number(sp < 0 ? text : text.slice(0, sp)) / 1e6;
  } catch (e) {
    // Only a missing file means "not Linux"; anything else may be transient.
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') unavailable = true;
    return Number.NaN;
  }
}
