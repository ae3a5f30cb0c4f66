// A work queue of the emulated device: a bounded multi-producer multi-consumer ring of 64-byte
// descriptors in a SharedArrayBuffer (Vyukov's per-slot sequence numbers), so that submitters
// in any thread of the process and the engines of the WQ's group share it without locks.
//
// Submission follows the two x86 instructions:
// - ENQCMD (shared WQ, `enqcmd`): non-posted; the device refuses the descriptor ("retry",
//   ZF=1) when the WQ's occupancy has reached its threshold (the limited portal's limit),
//   when the WQ is not enabled or the device not enabled (halted), or when a refusal was
//   injected.
// - MOVDIR64B (dedicated WQ, `movdir64b`): posted; no feedback. Software must hold a credit per
//   outstanding descriptor; a descriptor sent to a full DWQ is dropped and the device records a
//   software error (SWERR, code SWERR_DWQ_FULL), as hardware does.
//
// Who writes what, in which order:
// - A submitter reserves an occupancy unit (CAS on W_OCC below W_LIMIT), takes a position
//   (add on W_ENQ), waits for its slot's sequence number to equal the position (the slot is
//   free), copies the descriptor into the slot, then stores sequence = position + 1 (published).
// - An engine reads sequence == W_DEQ + 1 (ringReady), takes the position by CAS on W_DEQ,
//   copies the descriptor out, stores sequence = position + capacity (free for the next lap),
//   then releases the occupancy unit (sub on W_OCC) and counts the dispatch (W_DISPATCHED,
//   W_DEQ_COUNT, which refused submitters wait on). W_COMPLETED is added after the descriptor
//   has run (DRAIN waits on it).
// - The device (device.ts) writes W_ENABLED, W_LIMIT and resets the ring only while no
//   submitter or engine uses it; the statistics words are counters anyone may read.
// - A submitter ended between taking its position and publishing it (Worker.terminate() in
//   the middle of enqcmd) would hold up every later entry for good. So an engine that finds
//   the head position taken but unpublished for GIVE_UP_MS gives it up (giveUpStuckHead): it
//   CASes the slot's sequence from the position to DEAD, takes back the occupancy unit and
//   counts W_DEAD. A dead slot is out of the ring until a reset: engines step over its
//   positions, a submitter whose position falls on it takes the next, and W_DEAD entries fewer
//   may wait. A submitter that was only slow finds its publishing CAS failing: "not accepted".
//   DEAD is slot + 2 modulo the capacity (at least 4), a value no lap uses (free: slot, published:
//   slot + 1).
//
// The occupancy counts descriptors waiting in the WQ: an engine frees the entry when it takes
// the descriptor (dispatch), not when it completes it.

import { DESCRIPTOR_WORDS, DescWord } from '../descriptor.js';
import { C_STATE, DevState, openRegisters, recordSwerr } from './registers.js';

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
/** The WQ's index in its device (for SWERR). */
export const W_INDEX = 16;
/** Slots given up on (DEAD) since the last reset. */
export const W_DEAD = 17;
const HEADER_WORDS = 18;

/** How long the head entry may stay taken but unpublished before the engines give it up. */
export const GIVE_UP_MS = 1000;

/**
 * The SWERR error code of a descriptor dropped by a full dedicated WQ. The DSA specification's
 * table of SWERR codes is not among our references, so this value is the emulator's own; no
 * completion status uses it.
 */
export const SWERR_DWQ_FULL = 0x7f;

export interface WqRing {
  words: Int32Array;
  /** The register words of the WQ's device (its state, SWERR). */
  device: Int32Array;
  cap: number;
  mask: number;
  seq: number;
  slots: number;
}

/** Ring capacity: the next power of two ≥ size (at least 4, for the DEAD mark). */
function ringCapacity(size: number): number {
  let cap = 4;
  while (cap < size) cap *= 2;
  return cap;
}

export function createRingBuffer(size: number, limit: number, index: number): SharedArrayBuffer {
  const cap = ringCapacity(size);
  const sab = new SharedArrayBuffer((HEADER_WORDS + cap + cap * DESCRIPTOR_WORDS) * 4);
  const w = new Int32Array(sab);
  w[W_CAP] = cap;
  w[W_LIMIT] = limit;
  w[W_INDEX] = index;
  for (let i = 0; i < cap; i++) w[HEADER_WORDS + i] = i;
  return sab;
}

/** The ring `sab` of a WQ of the device whose register file is `registers`. */
export function openRing(sab: SharedArrayBuffer, registers: SharedArrayBuffer): WqRing {
  const words = new Int32Array(sab);
  const cap = words[W_CAP];
  const device = openRegisters(registers).words;
  return { words, device, cap, mask: cap - 1, seq: HEADER_WORDS, slots: HEADER_WORDS + cap };
}

/** Empty the ring (device reset; no submitter or engine may be active). */
export function resetRing(r: WqRing): void {
  const w = r.words;
  Atomics.store(w, W_ENQ, 0);
  Atomics.store(w, W_DEQ, 0);
  Atomics.store(w, W_OCC, 0);
  Atomics.store(w, W_DEAD, 0);
  for (let i = 0; i < r.cap; i++) Atomics.store(w, r.seq + i, i);
}

/** The sequence value of a slot given up on. */
function dead(slot: number): number {
  return slot + 2;
}

/** Reserve an occupancy unit below `limit` (and the live slots); false when the WQ is full. */
function reserve(r: WqRing, limit: number): boolean {
  const w = r.words;
  for (;;) {
    const occ = Atomics.load(w, W_OCC);
    if (occ >= Math.min(limit, r.cap - Atomics.load(w, W_DEAD))) return false;
    if (Atomics.compareExchange(w, W_OCC, occ, occ + 1) === occ) return true;
  }
}

/** After reserve(): a position whose slot is free for it. */
export function takePosition(r: WqRing): number {
  const w = r.words;
  for (;;) {
    const pos = Atomics.add(w, W_ENQ, 1);
    const slot = pos & r.mask;
    // The reservation (below the live slots) guarantees the slot was released; the loop only
    // covers the consumer's store of the sequence number becoming visible.
    let seq;
    while ((seq = Atomics.load(w, r.seq + slot)) !== pos && seq !== dead(slot)) {
      /* the entry is being released */
    }
    if (seq === pos) return pos;
  }
}

/** Copy the descriptor into the slot of `pos` and publish it; false when it was given up. */
export function publishAt(r: WqRing, pos: number, src: Int32Array, at: number): boolean {
  const w = r.words;
  const slot = pos & r.mask;
  const base = r.slots + slot * DESCRIPTOR_WORDS;
  for (let i = 0; i < DESCRIPTOR_WORDS; i++) w[base + i] = src[at + i];
  if (Atomics.compareExchange(w, r.seq + slot, pos, (pos + 1) | 0) !== pos) return false;
  Atomics.add(w, W_ACCEPTED, 1);
  return true;
}

/** The WQ and its device are enabled (a halted device takes nothing). */
function accepting(r: WqRing): boolean {
  return (
    Atomics.load(r.words, W_ENABLED) === 1 && Atomics.load(r.device, C_STATE) === DevState.ENABLED
  );
}

/**
 * ENQCMD: copy the descriptor at `src[at..at+16)` into the WQ. Returns false ("retry") when
 * the WQ or its device is not enabled, the WQ has reached its limit, or a refusal is injected.
 */
export function enqcmd(r: WqRing, src: Int32Array, at: number): boolean {
  const w = r.words;
  let ok = accepting(r);
  for (let n = Atomics.load(w, W_REFUSE); ok && n > 0; n = Atomics.load(w, W_REFUSE)) {
    if (Atomics.compareExchange(w, W_REFUSE, n, n - 1) === n) ok = false;
  }
  if (ok && reserve(r, Atomics.load(w, W_LIMIT)) && publishAt(r, takePosition(r), src, at))
    return true;
  Atomics.add(w, W_REFUSED, 1);
  return false;
}

/**
 * MOVDIR64B: posted write of the descriptor into a dedicated WQ. Returns false when the
 * descriptor was dropped (a real submitter never learns of it): the WQ or device is not
 * enabled, or the WQ is full, which the device records in SWERR.
 */
export function movdir64b(r: WqRing, src: Int32Array, at: number): boolean {
  const w = r.words;
  if (accepting(r) && reserve(r, Atomics.load(w, W_LIMIT))) {
    if (publishAt(r, takePosition(r), src, at)) return true;
    Atomics.add(w, W_DROPPED, 1); // given up while it was being written
    return false;
  }
  Atomics.add(w, W_DROPPED, 1);
  if (accepting(r))
    recordSwerr(r.device, SWERR_DWQ_FULL, src[at + DescWord.FLAGS_OPCODE] >>> 24, w[W_INDEX], 0, 0);
  return false;
}

/** True when the next entry is published, or dead (an engine can take it, or step over it). */
export function ringReady(r: WqRing): boolean {
  const pos = Atomics.load(r.words, W_DEQ);
  const seq = Atomics.load(r.words, r.seq + (pos & r.mask));
  return seq === ((pos + 1) | 0) || seq === dead(pos & r.mask);
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
    if (seq === dead(slot)) Atomics.compareExchange(w, W_DEQ, pos, (pos + 1) | 0);
    else if (dif < 0) return -1;
  }
}

/** An engine's watch on a ring's head: since when the head position is taken but unpublished. */
export class HeadWatch {
  pos = 0;
  since = -1;
}

/**
 * Give up the head entry when its position has been taken but not published for GIVE_UP_MS
 * (`now`: performance.now()). Returns the ms until it may be given up: Infinity when the head
 * is not stuck, 0 when it was just given up.
 */
export function giveUpStuckHead(r: WqRing, watch: HeadWatch, now: number): number {
  const w = r.words;
  const pos = Atomics.load(w, W_DEQ);
  const slot = pos & r.mask;
  if (((Atomics.load(w, W_ENQ) - pos) | 0) <= 0 || Atomics.load(w, r.seq + slot) !== pos) {
    watch.since = -1;
    return Infinity;
  }
  if (watch.since < 0 || watch.pos !== pos) {
    watch.pos = pos;
    watch.since = now;
  }
  const left = watch.since + GIVE_UP_MS - now;
  if (left > 0) return left;
  if (Atomics.compareExchange(w, r.seq + slot, pos, dead(slot)) === pos) {
    Atomics.add(w, W_DEAD, 1);
    Atomics.sub(w, W_OCC, 1); // the unit its submitter reserved
  }
  watch.since = -1;
  return 0;
}

export function occupancy(r: WqRing): number {
  return Atomics.load(r.words, W_OCC);
}
