// Hardware submission through write() on the WQ's node: the kernel refuses BATCH there, so
// each page's COMPVAL is its own descriptor, written straight from the arena, several per
// write(). A dedicated WQ gives no feedback (the kernel submits with MOVDIR64B), so at most its
// free entries (credits) go, and a request returns its credits as its records come in.

import { A_CREDITS, M_CREDITS, M_NSUB, M_WATCH } from './arena.js';
import { K } from './counters.js';
import { giveCredits, takeCredits } from './credits.js';
import { tryWriteWq, type HwWqHandle } from './hw/wq.js';
import type { PageRequest } from './page-request.js';
import type { Submitter, SubmittingTask } from './submit.js';
import { backoff, sleepWord, SPIN_RETRIES } from './wait.js';

export class HwWriteSubmitter implements Submitter {
  private readonly u8: Uint8Array;
  private readonly creditWord: number;

  constructor(
    private readonly t: SubmittingTask,
    private readonly hw: HwWqHandle,
    private readonly shared: boolean,
  ) {
    this.u8 = new Uint8Array(t.arena.sab);
    this.creditWord = A_CREDITS + t.targetIndex;
  }

  /** Submit `count` members, retrying refusals: the number submitted. */
  async submit(r: PageRequest, count: number): Promise<number> {
    this.watchMembers(r, count);
    r.credCursor = 0;
    let done = 0;
    let attempt = 0;
    const max = this.t.maxRetries;
    while (done < count && this.t.deviceUsable(r.epoch)) {
      const n = this.writeStep(r, done, count);
      if (n < 0) break;
      if (n > 0) {
        done += n;
        attempt = 0;
        this.t.taskCounters.add(K.submissions, n);
        continue;
      }
      this.t.taskCounters.add(K.submitRetries, 1);
      if (++attempt > max) break;
      if (attempt > SPIN_RETRIES) {
        if (this.shared) await backoff(sleepWord, 0, attempt);
        else await backoff(this.t.arena.i32, this.creditWord, attempt);
      }
    }
    Atomics.store(this.t.arena.i32, this.t.arena.meta(r.slot, M_NSUB), done);
    return done;
  }

  /** Watch every member record of the request (write() submits no BATCH). */
  private watchMembers(r: PageRequest, count: number): void {
    const a = this.t.arena;
    const w = a.i32;
    const r0 = a.recordByte(r.slot, 0) >> 2;
    for (let i = 0; i < count; i++) w[a.meta(r.slot, M_WATCH + i)] = r0 + i * 8;
    Atomics.store(w, a.meta(r.slot, M_NSUB), count);
    this.t.taskCounters.add(K.singleDescriptors, count);
  }

  /**
   * One write() of members [done, count): how many the kernel took (0: refused, or no DWQ
   * credit), or -1 when the WQ failed for good.
   */
  private writeStep(r: PageRequest, done: number, count: number): number {
    let k = count - done;
    if (!this.shared) {
      this.reclaimOwnCredits(r, done);
      k = takeCredits(this.t.arena.i32, this.t.targetIndex, k);
      if (k === 0) return 0;
    }
    const n = this.writeDescriptors(r.slot, done, k);
    if (!this.shared) {
      const used = Math.max(0, n);
      if (used) Atomics.add(this.t.arena.i32, this.t.arena.meta(r.slot, M_CREDITS), used);
      if (k > used) giveCredits(this.t.arena.i32, this.t.targetIndex, k - used);
    }
    return n;
  }

  /**
   * write() descriptors [from, from+n) of the slot, straight from the arena: the number the
   * kernel took (0: the WQ refused, EAGAIN), or -1 when the WQ failed for good (it is halted
   * then, and its pages go to the CPU).
   */
  private writeDescriptors(slot: number, from: number, n: number): number {
    const off = this.t.arena.descByte(slot, from);
    let written = tryWriteWq(this.hw, this.u8, off, n * 64);
    // The kernel takes whole descriptors; a pipe standing in for it may not: finish the last.
    while (written > 0 && written % 64 !== 0) {
      const more = tryWriteWq(this.hw, this.u8, off + written, 64 - (written % 64));
      if (more < 0) return -1;
      written += more;
    }
    return written < 0 ? -1 : written / 64;
  }

  /** Return the credits of this request's descriptors the device has finished, in order. */
  private reclaimOwnCredits(r: PageRequest, done: number): void {
    const a = this.t.arena;
    const w = a.i32;
    const r0 = a.recordByte(r.slot, 0) >> 2;
    let k = r.credCursor;
    while (k < done && (Atomics.load(w, r0 + k * 8) & 0xff) !== 0) k++;
    const n = k - r.credCursor;
    if (n > 0) {
      r.credCursor = k;
      Atomics.sub(w, a.meta(r.slot, M_CREDITS), n);
      giveCredits(w, this.t.targetIndex, n);
    }
  }
}
