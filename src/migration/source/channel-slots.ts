// Hand-off of packets from live_migration to the multifdsend_N threads: per channel, a ring of
// slots in shared memory, filled in order and freed in order. No postMessage.

import { MAX_PACKET_PAGES } from '../protocol.js';

/** Slots per channel ring (a slot is a page list, ~4 KiB). */
export const SLOTS_PER_CHANNEL = 64;
/**
 * Packets a channel may hold at once. With the CPU check, 8: the queue is data committed to the
 * link, so a deeper one only delays max-bandwidth and convergence decisions. With dsa-accel,
 * the whole ring: a channel waiting for the device's verdicts on some packets must have more
 * ready to submit, or the device idles between batches (4 GiB all-zero guest, medians of 3:
 * 1.05 s with 8, 0.82 s with 16, 0.73 s with 32, 0.57 s with 64).
 */
export function channelDepth(mode: string): number {
  return mode === 'dsa-accel' ? SLOTS_PER_CHANNEL : 8;
}
/** Int32 word indices of a slot's header; page numbers follow. */
export const SLOT = {
  state: 0,
  block: 1,
  count: 2,
  normal: 3,
  pass: 4,
  flags: 5,
  header: 8,
} as const;
export const SLOT_WORDS = SLOT.header + MAX_PACKET_PAGES;

export const SLOT_FREE = 0;
export const SLOT_FULL = 1;

/** slot flags */
export const JOB_SYNC = 1;
/** pages are already split: [0, normal) normal, [normal, count) zero (legacy/none modes) */
export const JOB_CLASSIFIED = 2;
/**
 * pass 1: a run of consecutive pages that their block's known-zero map (src/ram/known-zero.ts)
 * says are zero: sent as zero pages, never read
 */
export const JOB_KNOWN_ZERO = 4;

/** Shared words of the whole migration. */
export const MIG = {
  /** set to 1 to make every thread of the migration stop at once */
  abort: 0,
  /** bumped by a channel whenever it frees a slot; notified only as `wakeAt` asks */
  freed: 1,
  /** global packet counter */
  packetNum: 2,
  /** pause-before-switchover: 1 = wait in pre-switchover, 2 = migrate-continue was given */
  switchover: 3,
  /**
   * live_migration, finding no free slot, stores the `freed` count it wants to be woken at here
   * before it waits on `freed` (0: it is not waiting). A channel that frees a slot notifies only
   * once `freed` reaches it: one wake-up per few packets, not one per packet (a futex wake on
   * every ~1 KiB all-zero packet was most of a channel's CPU besides the zero check). No wake-up
   * is lost: live_migration waits only while `freed` still holds the value it read before
   * storing wakeAt, and `shouldWakeProducer` is asked after the increment.
   */
  wakeAt: 4,
  /**
   * The highest pass the destination has applied (every channel's SYNC of it: its pages are in
   * guest RAM), from its PassApplied frames. The main thread only writes it (then notifies);
   * live_migration reads it before it stops the guest (live-migration.ts, awaitDestination).
   */
  appliedPass: 5,
  size: 6,
} as const;

/**
 * Slots live_migration waits for once every channel is full: half of what the channels hold
 * together, at most 8. Each wake-up costs a futex wake on a channel and a switch to
 * live_migration on a core the channels need; with 2 channels of depth 8, waiting for 8 rather
 * than 4 halves them (an all-zero 4 GiB guest: ~1000 instead of ~2000) and still leaves each
 * channel 4 packets to work on.
 */
export function wakeBatch(depth: number, channels: number): number {
  return Math.max(1, Math.min(8, (depth * channels) >> 1));
}

/** For a channel that has just raised `freed` to `freed`: whether live_migration waits for it. */
export function shouldWakeProducer(mig: Int32Array, freed: number): boolean {
  const at = Atomics.load(mig, MIG.wakeAt);
  return at !== 0 && ((freed - at) | 0) >= 0;
}

/** Per-channel shared counters (Float64, single writer: the channel). */
export const CHAN_STAT = {
  bytes: 0,
  normal: 1,
  zero: 2,
  packets: 3,
  size: 8,
} as const;

/** Per-channel Int32 words. */
export const CHAN_WORD = {
  /** highest pass whose SYNC packet the kernel has accepted */
  flushedPass: 0,
  size: 4,
} as const;

export function slotBase(channel: number, slot: number): number {
  return (channel * SLOTS_PER_CHANNEL + slot) * SLOT_WORDS;
}

export function createSlots(channels: number): SharedArrayBuffer {
  return new SharedArrayBuffer(channels * SLOTS_PER_CHANNEL * SLOT_WORDS * 4);
}

/** Float64 words of parameters that QEMU lets a user change during migration. */
export const LIVE = {
  downtimeLimitMs: 0,
  maxBandwidth: 1,
  availSwitchoverBandwidth: 2,
  /** auto-converge (1 = on) and its parameters */
  autoConverge: 3,
  throttleInitial: 4,
  throttleIncrement: 5,
  throttleMax: 6,
  throttleTailslow: 7,
  throttleTrigger: 8,
  size: 12,
} as const;
