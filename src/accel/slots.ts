// Descriptor slots (their words: arena.ts): taking one, stamping it for a request, giving it
// back, and taking back one given up on (ABANDONED) once the device has written all it will.
//
// Who writes what: a slot goes FREE or ABANDONED -> BUSY by compare-exchange, so one taker wins
// (a channel starting a request, or dsa_completion reclaiming a stopped WQ's slot). Only the
// taker writes the slot's metadata, then stores FREE or ABANDONED again (releaseSlot). Its
// dedicated-WQ credits (credits.ts) go back before a slot is FREE.

import {
  M_CREDITS,
  M_DEVICE,
  M_EPOCH,
  M_NSUB,
  M_STATE,
  M_TARGET,
  SLOT_ABANDONED,
  SLOT_BUSY,
  SLOT_FREE,
  type ArenaView,
} from './arena.js';
import { returnSlotCredits } from './credits.js';
import { C_EPOCH } from './dsa/emu/registers.js';

/** The devices' state words (emulated registers, or kernel WQs'), by arena device index. */
export type DeviceWords = readonly ({ words: Int32Array } | undefined)[];

/** Take a slot, starting at `hint`: its index, or -1 when all are in use. */
export function acquireSlot(a: ArenaView, devices: DeviceWords, hint: number): number {
  const w = a.i32;
  const n = a.layout.slots;
  for (let k = 0; k < n; k++) {
    const s = (hint + k) % n;
    const st = a.meta(s, M_STATE);
    const v = Atomics.load(w, st);
    if (v === SLOT_FREE && Atomics.compareExchange(w, st, SLOT_FREE, SLOT_BUSY) === SLOT_FREE)
      return s;
    if (v === SLOT_ABANDONED && slotReclaimable(a, devices, s) && takeBack(a, s)) return s;
  }
  return -1;
}

/** A taken slot's metadata for a request to `target` on `device`, in the device's `epoch`. */
export function stampSlot(
  a: ArenaView,
  slot: number,
  target: number,
  device: number,
  epoch: number,
): void {
  const w = a.i32;
  w[a.meta(slot, M_TARGET)] = target;
  w[a.meta(slot, M_DEVICE)] = device;
  w[a.meta(slot, M_EPOCH)] = epoch;
  w[a.meta(slot, M_CREDITS)] = 0;
  Atomics.store(w, a.meta(slot, M_NSUB), 0);
}

/** Give a slot back: FREE when the device is done with it, else ABANDONED until it is. */
export function releaseSlot(a: ArenaView, slot: number, deviceDone: boolean): void {
  if (deviceDone) returnSlotCredits(a, slot);
  Atomics.store(a.i32, a.meta(slot, M_STATE), deviceDone ? SLOT_FREE : SLOT_ABANDONED);
}

/** The device wrote all it will to slot `s`: its epoch moved on, or every watched record is in. */
export function slotReclaimable(a: ArenaView, devices: DeviceWords, s: number): boolean {
  const nsub = Atomics.load(a.i32, a.meta(s, M_NSUB));
  return epochMovedOn(a, devices, s) || a.firstPending(s, 0, nsub) === nsub;
}

/**
 * dsa_completion: free the abandoned slots of WQs that stopped for good (their epoch moved on).
 * A dedicated WQ that dropped descriptors never writes their records, so without this their
 * slots and credits would never come back. Returns how many were freed.
 */
export function reclaimStoppedSlots(a: ArenaView, devices: DeviceWords): number {
  let freed = 0;
  for (let s = 0; s < a.layout.slots; s++) {
    if (Atomics.load(a.i32, a.meta(s, M_STATE)) !== SLOT_ABANDONED) continue;
    if (!epochMovedOn(a, devices, s) || !takeBack(a, s)) continue;
    Atomics.store(a.i32, a.meta(s, M_STATE), SLOT_FREE);
    freed++;
  }
  return freed;
}

function epochMovedOn(a: ArenaView, devices: DeviceWords, s: number): boolean {
  const w = a.i32;
  const dev = devices[Atomics.load(w, a.meta(s, M_DEVICE))];
  return !!dev && Atomics.load(dev.words, C_EPOCH) !== Atomics.load(w, a.meta(s, M_EPOCH));
}

/** ABANDONED -> BUSY, unless another taker won; the slot's credits go back to its WQ. */
function takeBack(a: ArenaView, s: number): boolean {
  const st = a.meta(s, M_STATE);
  if (Atomics.compareExchange(a.i32, st, SLOT_ABANDONED, SLOT_BUSY) !== SLOT_ABANDONED)
    return false;
  returnSlotCredits(a, s);
  return true;
}
