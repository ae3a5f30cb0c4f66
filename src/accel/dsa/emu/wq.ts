// A work queue of the emulated device: a bounded multi-producer multi-consumer ring of 64-byte
// descriptors in a SharedArrayBuffer (Vyukov's per-slot sequence numbers), so that submitters
// in any thread of the process and the engines of the WQ's group share it without locks.
//
// Submission follows the two x86 instructions:
// - ENQCMD (shared WQ, `enqcmd`): non-posted; the device refuses the descriptor ("retry",
//   ZF=1) when the WQ's occupancy has reached its threshold (the limited portal's limit),
//   when the WQ or device is not enabled, or when a refusal was injected.
// - MOVDIR64B (dedicated WQ, `movdir64b`): posted; no feedback. Software must hold a credit per
//   outstanding descriptor; a descriptor sent to a full DWQ is dropped and the device records a
//   software error, as hardware does.
//
// The occupancy counts descriptors waiting in the WQ: an engine frees the entry when it takes
// the descriptor (dispatch), not when it completes it.

import { DESCRIPTOR_WORDS } from '../descriptor.js';

export const W_ENQ = 0;
export const W_DEQ = 1;
export const W_OCC = 2;
/** Occupancy at which ENQCMD is refused: the threshold (SWQ) or the size (DWQ). */
export const W_LIMIT = 3;
export const W_CAP = 4;
/** 1 = enabled. */
export const W_ENABLED = 5;
/** Submitters waiting for room (they wait on W_DEQ_COUNT). */
export const W_SPACE_WAITERS = 6;
export const W_DEQ_COUNT = 7;
/** The opener of a dedicated WQ (0 = none): a DWQ has one opener, others get EBUSY. */
export const W_CLAIM = 8;
export const W_DISPATCHED = 9;
export const W_COMPLETED = 10;
export const W_DRAIN_WAITERS = 11;
/** Fault injection: refuse this many more ENQCMDs. */
export const W_REFUSE = 12;
export const W_DROPPED = 13;
export const W_ACCEPTED = 14;
export const W_REFUSED = 15;
const HEADER_WORDS = 16;

export interface WqRing {
  words: Int32Array;
  cap: number;
  mask: number;
  seq: number;
  slots: number;
}

/** Ring capacity: the next power of two ≥ size (at least 2). */
function ringCapacity(size: number): number {
  let cap = 2;
  while (cap < size) cap *= 2;
  return cap;
}

export function createRingBuffer(size: number, limit: number): SharedArrayBuffer {
  const cap = ringCapacity(size);
  const sab = new SharedArrayBuffer((HEADER_WORDS + cap + cap * DESCRIPTOR_WORDS) * 4);
  const w = new Int32Array(sab);
  w[W_CAP] = cap;
  w[W_LIMIT] = limit;
  for (let i = 0; i < cap; i++) w[HEADER_WORDS + i] = i;
  return sab;
}

export function openRing(sab: SharedArrayBuffer): WqRing {
  const words = new Int32Array(sab);
  const cap = words[W_CAP];
  return { words, cap, mask: cap - 1, seq: HEADER_WORDS, slots: HEADER_WORDS + cap };
}

/** Empty the ring (device reset; no submitter or engine may be active). */
export function resetRing(r: WqRing): void {
  const w = r.words;
  Atomics.store(w, W_ENQ, 0);
  Atomics.store(w, W_DEQ, 0);
  Atomics.store(w, W_OCC, 0);
  for (let i = 0; i < r.cap; i++) Atomics.store(w, r.seq + i, i);
}

/** Reserve an occupancy unit below `limit`; false when the WQ is full. */
function reserve(w: Int32Array, limit: number): boolean {
  for (;;) {
    const occ = Atomics.load(w, W_OCC);
    if (occ >= limit) return false;
    if (Atomics.compareExchange(w, W_OCC, occ, occ + 1) === occ) return true;
  }
}

function publish(r: WqRing, src: Int32Array, at: number): void {
  const w = r.words;
  const pos = Atomics.add(w, W_ENQ, 1);
  const slot = pos & r.mask;
  // The occupancy reservation guarantees the slot was released; the loop only covers the
  // consumer's store of the sequence number becoming visible.
  while (Atomics.load(w, r.seq + slot) !== pos) {
    /* the entry is being released */
  }
  const base = r.slots + slot * DESCRIPTOR_WORDS;
  for (let i = 0; i < DESCRIPTOR_WORDS; i++) w[base + i] = src[at + i];
  Atomics.store(w, r.seq + slot, (pos + 1) | 0);
  Atomics.add(w, W_ACCEPTED, 1);
}

/**
 * ENQCMD: copy the descriptor at `src[at..at+16)` into the WQ. Returns false ("retry") when
 * the WQ is not enabled, has reached its limit, or a refusal is being injected.
 */
export function enqcmd(r: WqRing, src: Int32Array, at: number): boolean {
  const w = r.words;
  if (Atomics.load(w, W_ENABLED) !== 1) {
    Atomics.add(w, W_REFUSED, 1);
    return false;
  }
  for (let n = Atomics.load(w, W_REFUSE); n > 0; n = Atomics.load(w, W_REFUSE)) {
    if (Atomics.compareExchange(w, W_REFUSE, n, n - 1) === n) {
      Atomics.add(w, W_REFUSED, 1);
      return false;
    }
  }
  if (!reserve(w, Atomics.load(w, W_LIMIT))) {
    Atomics.add(w, W_REFUSED, 1);
    return false;
  }
  publish(r, src, at);
  return true;
}

/**
 * MOVDIR64B: posted write of the descriptor into a dedicated WQ. Returns false when the
 * descriptor was dropped (WQ disabled or full); the caller (the device model) records that
 * as a software error — a real submitter would never learn of it.
 */
export function movdir64b(r: WqRing, src: Int32Array, at: number): boolean {
  const w = r.words;
  if (Atomics.load(w, W_ENABLED) !== 1 || !reserve(w, Atomics.load(w, W_LIMIT))) {
    Atomics.add(w, W_DROPPED, 1);
    return false;
  }
  publish(r, src, at);
  return true;
}

/** True when the next entry is published (an engine can take it). */
export function ringReady(r: WqRing): boolean {
  const w = r.words;
  const pos = Atomics.load(w, W_DEQ);
  return Atomics.load(w, r.seq + (pos & r.mask)) === ((pos + 1) | 0);
}

/**
 * Take the next descriptor into `dst[at..at+16)`. Returns the dispatch number (≥ 0) of the
 * descriptor, or -1 when the WQ is empty.
 */
export function dequeue(r: WqRing, dst: Int32Array, at: number): number {
  const w = r.words;
  for (;;) {
    const pos = Atomics.load(w, W_DEQ);
    const slot = pos & r.mask;
    const seq = Atomics.load(w, r.seq + slot);
    const dif = (seq - ((pos + 1) | 0)) | 0;
    if (dif === 0) {
      if (Atomics.compareExchange(w, W_DEQ, pos, (pos + 1) | 0) !== pos) continue;
      const base = r.slots + slot * DESCRIPTOR_WORDS;
      for (let i = 0; i < DESCRIPTOR_WORDS; i++) dst[at + i] = w[base + i];
      Atomics.store(w, r.seq + slot, (pos + r.cap) | 0);
      Atomics.sub(w, W_OCC, 1);
      const n = Atomics.add(w, W_DISPATCHED, 1);
      Atomics.add(w, W_DEQ_COUNT, 1);
      if (Atomics.load(w, W_SPACE_WAITERS) > 0) Atomics.notify(w, W_DEQ_COUNT);
      return n;
    }
    if (dif < 0) return -1;
  }
}

export function occupancy(r: WqRing): number {
  return Atomics.load(r.words, W_OCC);
}
