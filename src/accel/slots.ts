// Descriptor slots: taking a free one, and taking back one given up on (abandoned) once the
// device has written all it will write to it.

import {
  A_CREDITS,
  M_CREDITS,
  M_DEVICE,
  M_EPOCH,
  M_NSUB,
  M_STATE,
  M_TARGET,
  M_WATCH,
  SLOT_ABANDONED,
  SLOT_BUSY,
  SLOT_FREE,
  type ArenaView,
} from './arena.js';
import { C_EPOCH } from './dsa/emu/registers.js';
import type { DevicePort } from './handle.js';

/** Take a slot, starting at `hint`: its index, or -1 when all are in use. */
export function acquireSlot(
  a: ArenaView,
  ports: readonly (DevicePort | undefined)[],
  hint: number,
): number {
  const w = a.i32;
  const n = a.layout.slots;
  for (let k = 0; k < n; k++) {
    const s = (hint + k) % n;
    const st = a.meta(s, M_STATE);
    const v = Atomics.load(w, st);
    if (v === SLOT_FREE) {
      if (Atomics.compareExchange(w, st, SLOT_FREE, SLOT_BUSY) !== SLOT_FREE) continue;
    } else if (v === SLOT_ABANDONED && slotReclaimable(a, ports, s)) {
      if (Atomics.compareExchange(w, st, SLOT_ABANDONED, SLOT_BUSY) !== SLOT_ABANDONED) continue;
      returnCredits(a, s);
    } else continue;
    return s;
  }
  return -1;
}

/** An abandoned slot is safe to reuse once the device wrote all it will write. */
export function slotReclaimable(
  a: ArenaView,
  ports: readonly (DevicePort | undefined)[],
  s: number,
): boolean {
  const w = a.i32;
  const port = ports[Atomics.load(w, a.meta(s, M_DEVICE))];
  if (port && Atomics.load(port.words, C_EPOCH) !== Atomics.load(w, a.meta(s, M_EPOCH)))
    return true;
  const nsub = Atomics.load(w, a.meta(s, M_NSUB));
  for (let k = 0; k < nsub; k++) {
    if ((Atomics.load(w, Atomics.load(w, a.meta(s, M_WATCH + k))) & 0xff) === 0) return false;
  }
  return true;
}

/** Give the dedicated-WQ credits slot `s` holds back to its WQ. */
export function returnCredits(a: ArenaView, s: number): void {
  const w = a.i32;
  const held = Atomics.exchange(w, a.meta(s, M_CREDITS), 0);
  if (held > 0) {
    const t = A_CREDITS + Atomics.load(w, a.meta(s, M_TARGET));
    Atomics.add(w, t, held);
    Atomics.notify(w, t);
  }
}
