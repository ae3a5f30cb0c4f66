// The submit gate: how closing an accelerator knows that no thread is submitting any more, so
// that a WQ fd is never closed, nor a portal unmapped, under a submitter (a late write() could
// otherwise land on a reused fd number, a late ENQCMD fault on an unmapped portal).
//
// Two words of the arena header:
//   G_INSIDE   submitters between enter() and leave(), over all threads
//   G_CLOSING  1 once the accelerator is closing
// Who writes what, in which order:
//   - a submitting thread: enter() adds 1 to INSIDE, then reads CLOSING; when it is set, it
//     takes its 1 back and does not submit (the request goes to the CPU). leave() subtracts 1
//     and, when closing, notifies INSIDE.
//   - the closing thread: stores CLOSING = 1, then waits until it reads INSIDE = 0. Only then
//     does it close fds and unmap portals.
// Every access is sequentially consistent, so a submitter and the closer cannot both miss each
// other: either the submitter sees CLOSING, or the closer sees the submitter inside.
// A thread terminated between enter() and leave() leaves INSIDE above 0: close() then waits
// until its time runs out and keeps the fds open (closeGate returns false) rather than risk
// reuse. Migration's channels stop cooperatively (they acknowledge before they are ended); on
// the emulated device, the WQ ring gives up an entry such a thread left unpublished (wq.ts).

import { G_CLOSING, G_INSIDE } from './arena.js';
import { waitUntil } from '../util/wait-until.js';

/** Before touching a WQ: false when the accelerator is closing (then do not submit). */
export function enterGate(w: Int32Array): boolean {
  Atomics.add(w, G_INSIDE, 1);
  if (Atomics.load(w, G_CLOSING) === 0) return true;
  leaveGate(w);
  return false;
}

/** After the last submission of a request (only after enterGate returned true). */
export function leaveGate(w: Int32Array): void {
  Atomics.sub(w, G_INSIDE, 1);
  if (Atomics.load(w, G_CLOSING) !== 0) Atomics.notify(w, G_INSIDE);
}

/**
 * Close the gate and wait until no submitter is inside: true once none is, false when
 * `timeoutMs` passed first (a submitter is stuck or was terminated inside).
 */
export function closeGate(w: Int32Array, timeoutMs: number): Promise<boolean> {
  Atomics.store(w, G_CLOSING, 1);
  return waitUntil(w, G_INSIDE, () => Atomics.load(w, G_INSIDE) === 0, timeoutMs);
}
