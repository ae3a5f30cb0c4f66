// Submission: how a request's descriptors reach a work queue. One submitter per portal kind,
// behind one interface:
//   - emulated ENQCMD (a shared WQ of the emulated device: its ring, then the doorbell);
//   - hardware ENQCMD (a shared kernel WQ's mmapped portal, through the addon);
//   - dedicated-WQ credits (MOVDIR64B gives no feedback, so the driver sends at most the WQ's
//     free entries; the emulated ring, the hardware portal, or write() carries the descriptor);
//   - hardware write() (the kernel node: each page its own descriptor, see hw-write.ts).
// A refused submission is retried, backing off on the word that says there is room.

import { A_CREDITS, M_CREDITS } from './arena.js';
import { K } from './counters.js';
import { giveCredits, takeCredits } from './credits.js';
import { enqcmd, movdir64b, W_DEQ_COUNT, type WqRing } from './dsa/emu/wq.js';
import { ringDoorbell } from './dsa/emu/registers.js';
import { submitPortal, tryWriteWq, type HwWqHandle } from './hw/wq.js';
import type { PageRequest } from './page-request.js';
import type { TaskCounters } from './counters.js';
import { backoff, sleepWord, SPIN_RETRIES, type WaitingTask } from './wait.js';
import { HwWriteSubmitter } from './hw-write.js';

export interface Submitter {
  /**
   * Submit the request's sub-requests in order; resolves to how many the WQ took (the rest are
   * checked on the CPU). Never rejects because of the device.
   */
  submit(r: PageRequest, count: number): Promise<number>;
}

/** What a submitter asks of the task it submits for. */
export interface SubmittingTask extends WaitingTask {
  readonly taskCounters: TaskCounters;
  /** Index of the task's WQ in the accelerator's targets (its DWQ credit word). */
  readonly targetIndex: number;
  /** Refused submissions tolerated per descriptor. */
  readonly maxRetries: number;
  /** Write sub-request `s` into `r.bd` and watch its completion record. */
  prepareSub(r: PageRequest, s: number, count: number): void;
}

/** ENQCMD attempts per submission in the addon before the driver backs off. */
const ENQCMD_TRIES = 4;

/** Submitters of one descriptor per sub-request (a BATCH, or a single COMPVAL). */
abstract class DescriptorSubmitter implements Submitter {
  constructor(
    protected readonly t: SubmittingTask,
    /** where a refused submitter waits for room (a word that changes when there is some) */
    private readonly room: Int32Array = sleepWord,
    private readonly roomIndex = 0,
    /** `room` is an emulated WQ ring (the submitter says it waits) */
    private readonly ringWaiter = false,
  ) {}

  /** One attempt: true when the WQ took `r.bd`. */
  protected abstract tryOnce(r: PageRequest): boolean;

  async submit(r: PageRequest, count: number): Promise<number> {
    const nsub = r.nsubTotal;
    for (let s = 0; s < nsub; s++) {
      this.t.prepareSub(r, s, count);
      if (!this.once(r) && !(await this.retry(r))) return s;
    }
    return nsub;
  }

  private once(r: PageRequest): boolean {
    const ok = this.tryOnce(r);
    this.t.taskCounters.add(ok ? K.submissions : K.submitRetries, 1);
    return ok;
  }

  private async retry(r: PageRequest): Promise<boolean> {
    for (let attempt = 1; attempt <= this.t.maxRetries; attempt++) {
      if (!this.t.deviceUsable(r.epoch)) return false;
      if (attempt > SPIN_RETRIES)
        await backoff(this.room, this.roomIndex, attempt, this.ringWaiter);
      if (this.once(r)) return true;
    }
    return false;
  }
}

/** A shared WQ of the emulated device: its ring, then the doorbell. */
class EmuEnqcmdSubmitter extends DescriptorSubmitter {
  constructor(
    t: SubmittingTask,
    private readonly emu: EmuWq,
  ) {
    super(t, emu.ring.words, W_DEQ_COUNT, true);
  }

  protected tryOnce(r: PageRequest): boolean {
    if (!enqcmd(this.emu.ring, r.bd, 0)) return false;
    ringDoorbell(this.emu.regs, this.emu.group);
    return true;
  }
}

/** A shared kernel WQ's portal (a hardware SWQ says nothing about room: backoff sleeps). */
class HwEnqcmdSubmitter extends DescriptorSubmitter {
  constructor(
    t: SubmittingTask,
    private readonly hw: HwWqHandle,
  ) {
    super(t);
  }

  protected tryOnce(r: PageRequest): boolean {
    // The addon retries ENQCMD a few times while ZF says "not accepted".
    const got = submitPortal(this.hw, 0, r.bd, ENQCMD_TRIES);
    this.t.taskCounters.add(K.submitRetries, got > 0 ? got - 1 : ENQCMD_TRIES - 1);
    return got > 0;
  }
}

/** A shared kernel WQ fed BATCH descriptors over write() (tests; see HwOpenOptions). */
class HwWriteOneSubmitter extends DescriptorSubmitter {
  constructor(
    t: SubmittingTask,
    private readonly hw: HwWqHandle,
  ) {
    super(t);
  }

  protected tryOnce(r: PageRequest): boolean {
    return tryWriteWq(this.hw, r.bd, 0, 64) === 64;
  }
}

/** A dedicated WQ: a descriptor goes only with one of the WQ's free entries (a credit). */
class DedicatedSubmitter extends DescriptorSubmitter {
  constructor(
    t: SubmittingTask,
    /** MOVDIR64B (or write()) of one descriptor */
    private readonly send: (bd: Int32Array) => boolean,
  ) {
    super(t, t.arena.i32, A_CREDITS + t.targetIndex);
  }

  protected tryOnce(r: PageRequest): boolean {
    const w = this.t.arena.i32;
    if (takeCredits(w, this.t.targetIndex, 1) === 0) return false;
    const ok = this.send(r.bd);
    if (ok) Atomics.add(w, this.t.arena.meta(r.slot, M_CREDITS), 1);
    else giveCredits(w, this.t.targetIndex, 1);
    return ok;
  }
}

/** An emulated WQ as a task sees it. */
interface EmuWq {
  ring: WqRing;
  /** the device's registers (doorbells) */
  regs: Int32Array;
  group: number;
}

/** The submitter for a task's work queue. */
export function submitterFor(
  t: SubmittingTask,
  shared: boolean,
  hw: HwWqHandle | undefined,
  emu: EmuWq | undefined,
): Submitter {
  if (hw) {
    if (hw.submit === 'write' && !hw.batchOverWrite) return new HwWriteSubmitter(t, hw, shared);
    if (shared)
      return hw.batchOverWrite ? new HwWriteOneSubmitter(t, hw) : new HwEnqcmdSubmitter(t, hw);
    return new DedicatedSubmitter(t, (bd) =>
      hw.batchOverWrite ? tryWriteWq(hw, bd, 0, 64) === 64 : submitPortal(hw, 1, bd, 1) > 0,
    );
  }
  if (shared) return new EmuEnqcmdSubmitter(t, emu!);
  const { ring, regs, group } = emu!;
  return new DedicatedSubmitter(t, (bd) => {
    const ok = movdir64b(ring, bd, 0);
    if (ok) ringDoorbell(regs, group);
    return ok;
  });
}
