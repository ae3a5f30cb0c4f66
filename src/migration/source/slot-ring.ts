// The two ends of the channel slots (channel-slots.ts). live_migration fills each channel's
// ring in order and multifdsend_N frees it in order:
// - live_migration writes a free slot's header and pages with plain stores, then
//   Atomics.stores SLOT_FULL in its state and notifies it (publish).
// - multifdsend_N sees SLOT_FULL (Atomics.load), reads the slot, then Atomics.stores SLOT_FREE,
//   bumps MIG.freed, and notifies it only once it reaches MIG.wakeAt (release): live_migration,
//   finding no room, stores in MIG.wakeAt the count it wants, then waits on MIG.freed.

import {
  MIG,
  SLOT,
  SLOT_FREE,
  SLOT_FULL,
  SLOTS_PER_CHANNEL,
  shouldWakeProducer,
  slotBase,
  wakeBatch,
} from './channel-slots.js';

/** live_migration's end: which slot to fill next. */
export class SlotProducer {
  private readonly slots: Int32Array;
  private readonly mig: Int32Array;
  /** per channel, the next slot to fill */
  private readonly fillIdx: Int32Array;
  /** the channel round-robin starts from */
  private nextChannel = 0;
  /** slots to wait for once every channel is full (channel-slots.ts: MIG.wakeAt) */
  private readonly wake: number;

  constructor(
    slots: SharedArrayBuffer,
    mig: SharedArrayBuffer,
    private readonly channels: number,
    /** packets a channel may hold at once (channelDepth) */
    private readonly depth: number,
  ) {
    this.slots = new Int32Array(slots);
    this.mig = new Int32Array(mig);
    this.fillIdx = new Int32Array(channels);
    this.wake = wakeBatch(depth, channels);
  }

  /**
   * The base of a free slot on the next channel in round-robin order (as QEMU picks channels),
   * or on channel `only`; -1 when every channel holds `depth` packets.
   */
  tryAcquire(only = -1): number {
    for (let i = 0; i < this.channels; i++) {
      const ch = only >= 0 ? only : (this.nextChannel + i) % this.channels;
      const fill = this.fillIdx[ch];
      const base = slotBase(ch, fill);
      // Slots fill and free in ring order: the one `depth` back is free iff fewer than
      // `depth` packets are in flight.
      const behind = slotBase(ch, (fill + SLOTS_PER_CHANNEL - this.depth) % SLOTS_PER_CHANNEL);
      if (
        Atomics.load(this.slots, base + SLOT.state) === SLOT_FREE &&
        Atomics.load(this.slots, behind + SLOT.state) === SLOT_FREE
      ) {
        if (only < 0) this.nextChannel = (ch + 1) % this.channels;
        this.fillIdx[ch] = (fill + 1) % SLOTS_PER_CHANNEL;
        return base;
      }
      if (only >= 0) break;
    }
    return -1;
  }

  /** tryAcquire, waiting for a channel to free a slot; `check` runs between waits (may throw). */
  acquire(check: () => void, only = -1): number {
    for (;;) {
      check();
      const seq = Atomics.load(this.mig, MIG.freed);
      const base = this.tryAcquire(only);
      if (base >= 0) return base;
      this.askWake(seq);
      Atomics.wait(this.mig, MIG.freed, seq, 100);
      this.clearWake();
    }
  }

  /**
   * No slot was free while MIG.freed was `seq`: ask the channels to wake MIG.freed once a few
   * slots are free (MIG.wakeAt), not at every one. The caller then waits on MIG.freed.
   */
  askWake(seq: number): void {
    Atomics.store(this.mig, MIG.wakeAt, (seq + this.wake) | 0 || 1);
  }

  /** Woken (or timed out): the channels need wake nobody. */
  clearWake(): void {
    Atomics.store(this.mig, MIG.wakeAt, 0);
  }

  /** The slot's header and pages are written: hand it to its channel. */
  publish(base: number): void {
    Atomics.store(this.slots, base + SLOT.state, SLOT_FULL);
    Atomics.notify(this.slots, base + SLOT.state);
  }
}

/** multifdsend_N's end: its own ring, read in order. */
export class SlotConsumer {
  private readonly slots: Int32Array;
  private readonly mig: Int32Array;

  constructor(
    slots: SharedArrayBuffer,
    mig: SharedArrayBuffer,
    private readonly channel: number,
  ) {
    this.slots = new Int32Array(slots);
    this.mig = new Int32Array(mig);
  }

  base(slot: number): number {
    return slotBase(this.channel, slot);
  }

  isFull(slot: number): boolean {
    return Atomics.load(this.slots, this.base(slot) + SLOT.state) === SLOT_FULL;
  }

  /** Until the slot is full (true) or the migration is aborted (false). */
  async waitFull(slot: number): Promise<boolean> {
    const at = this.base(slot) + SLOT.state;
    for (;;) {
      if (Atomics.load(this.mig, MIG.abort) !== 0) return false;
      if (Atomics.load(this.slots, at) === SLOT_FULL) return true;
      const r = Atomics.waitAsync(this.slots, at, SLOT_FREE, 200);
      if (r.async) await r.value;
    }
  }

  /** Whether the slot fills within `ms`. */
  async fillsWithin(slot: number, ms: number): Promise<boolean> {
    const at = this.base(slot) + SLOT.state;
    const r = Atomics.waitAsync(this.slots, at, SLOT_FREE, ms);
    if (r.async) await r.value;
    return Atomics.load(this.slots, at) === SLOT_FULL;
  }

  /** The slot is read: give it back to live_migration. */
  release(slot: number): void {
    Atomics.store(this.slots, this.base(slot) + SLOT.state, SLOT_FREE);
    if (shouldWakeProducer(this.mig, Atomics.add(this.mig, MIG.freed, 1) + 1)) {
      Atomics.notify(this.mig, MIG.freed);
    }
  }
}
