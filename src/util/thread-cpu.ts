// CPU time of the calling thread, as the thread itself sees it. Worker threads are OS threads,
// and synchronous fs calls run on the calling thread, so /proc/thread-self is that thread.

import { readFileSync } from 'node:fs';

let available = true;

/** CPU milliseconds used by the calling thread so far (0 where /proc is unavailable). */
export function threadCpuMs(): number {
  if (!available) return 0;
  try {
    // schedstat: "<ns on cpu> <ns waiting> <timeslices>"
    const text = readFileSync('/proc/thread-self/schedstat', 'latin1');
    const ns = Number(text.slice(0, text.indexOf(' ')));
    return ns / 1e6;
  } catch {
    available = false;
    return 0;
  }
}
