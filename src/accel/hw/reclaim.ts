// Giving back the slots and dedicated-WQ credits of a kernel WQ that stopped for good.
//
// A request whose deadline passed leaves its slot ABANDONED: the device may still write its
// records, so the slot waits (src/accel/driver.ts acquireSlot) until it has. On a dedicated WQ
// whose descriptors were dropped that never happens, and the slot's credits never come back.
// Once dsa_completion knows the WQ writes nothing more (its epoch was bumped, see
// wq-state.ts stopped()), it frees those slots here, as acquireSlot would: ABANDONED -> BUSY by
// compare-exchange (so a submitter reclaiming the same slot cannot also take it), credits back
// to the target, then FREE.

import {
  A_CREDITS,
  M_CREDITS,
  M_DEVICE,
  M_EPOCH,
  M_STATE,
  M_TARGET,
  SLOT_ABANDONED,
  SLOT_BUSY,
  SLOT_FREE,
  type ArenaView,
} from '../arena.js';
import { H_EPOCH } from './wq-state.js';

/** Free every abandoned slot of a WQ whose epoch moved on; returns how many. */
export function reclaimStoppedSlots(a: ArenaView, states: Int32Array[]): number {
  const w = a.i32;
  let freed = 0;
  for (let s = 0; s < a.layout.slots; s++) {
    const st = a.meta(s, M_STATE);
    if (Atomics.load(w, st) !== SLOT_ABANDONED) continue;
    const dev = states[Atomics.load(w, a.meta(s, M_DEVICE))];
    if (!dev || Atomics.load(dev, H_EPOCH) === Atomics.load(w, a.meta(s, M_EPOCH))) continue;
    if (Atomics.compareExchange(w, st, SLOT_ABANDONED, SLOT_BUSY) !== SLOT_ABANDONED) continue;
    const held = Atomics.exchange(w, a.meta(s, M_CREDITS), 0);
    if (held > 0) {
      const t = A_CREDITS + Atomics.load(w, a.meta(s, M_TARGET));
      Atomics.add(w, t, held);
      Atomics.notify(w, t);
    }
    Atomics.store(w, st, SLOT_FREE);
    freed++;
  }
  return freed;
}
