// Dedicated-WQ credits. MOVDIR64B is posted and says nothing, and a descriptor sent to a full
// dedicated WQ is dropped, so the driver sends at most as many as the WQ has free entries.
//
//   arena A_CREDITS + target   free entries of the target's dedicated WQ (its size at open)
//   slot M_CREDITS             entries the slot's descriptors hold
// Who writes what: a submitter takes credits by compare-exchange before it sends, adds those it
// used to its slot and gives the rest back. A slot's credits go back (exchanged to 0, then
// added to the target and notified: refused submitters wait on that word) once the device is
// done with its descriptors, or record by record through write() (hw-write.ts).

import { A_CREDITS, M_CREDITS, M_TARGET, type ArenaView } from './arena.js';

/** Take up to `want` of the target's credits: how many were taken. */
export function takeCredits(w: Int32Array, target: number, want: number): number {
  const cw = A_CREDITS + target;
  let c = Atomics.load(w, cw);
  while (c > 0) {
    const k = Math.min(c, want);
    const prev = Atomics.compareExchange(w, cw, c, c - k);
    if (prev === c) return k;
    c = prev;
  }
  return 0;
}

export function giveCredits(w: Int32Array, target: number, n: number): void {
  Atomics.add(w, A_CREDITS + target, n);
  Atomics.notify(w, A_CREDITS + target);
}

/** Give back every credit slot `s` holds. */
export function returnSlotCredits(a: ArenaView, s: number): void {
  const held = Atomics.exchange(a.i32, a.meta(s, M_CREDITS), 0);
  if (held > 0) giveCredits(a.i32, Atomics.load(a.i32, a.meta(s, M_TARGET)), held);
}
