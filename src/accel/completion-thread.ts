// What every dsa_completion thread (the emulated device's and the hardware one) does besides
// waiting its own way: end submitted slots and wake their channels, and answer
// Accelerator.threadCpu() through the arena's thread-CPU report (src/util/cpu-report.ts).

import {
  A_COMPLETION_HANDLED,
  A_COMPLETION_RUNNING,
  A_IRQ,
  A_SHUTDOWN,
  CPU_REPORT_BYTE,
  M_DEVICE,
  M_EPOCH,
  M_IRQ,
  M_STATE,
  SLOT_HALTED,
  SLOT_SUBMITTED,
  type ArenaView,
} from './arena.js';
import { enabledIn } from './dsa/emu/registers.js';
import { CpuReport } from '../util/cpu-report.js';
import { threadCpuMs } from '../util/thread-cpu.js';

export class CompletionThread {
  private readonly report: CpuReport;
  // 0, not the current count: a report asked for before this thread started is still owed.
  private seen = 0;

  constructor(
    private readonly a: ArenaView,
    /** The devices' state words (registers, or kernel WQs'), by arena device index. */
    private readonly devices: readonly Int32Array[],
  ) {
    this.report = completionCpuReport(a.sab);
  }

  /**
   * The thread's life: say it runs (with its CPU so far), then until shutdown answer CPU reports
   * and call `round` with the interrupt word's value read before it (round waits: on that word
   * from that value, or otherwise); at the end, the last figure, then not running.
   */
  run(round: (seen: number) => void): void {
    const w = this.a.i32;
    Atomics.store(w, A_COMPLETION_RUNNING, 1);
    this.report.publish(0, threadCpuMs());
    for (;;) {
      const seen = Atomics.load(w, A_IRQ);
      if (Atomics.load(w, A_SHUTDOWN)) break;
      this.seen = this.report.answer(0, this.seen, threadCpuMs);
      round(seen);
    }
    this.report.publish(0, threadCpuMs());
    Atomics.store(w, A_COMPLETION_RUNNING, 0);
  }

  /** A submitted slot whose device stopped or was reset is ended HALTED; true when it was. */
  haltIfStopped(s: number): boolean {
    const w = this.a.i32;
    const dev = this.devices[Atomics.load(w, this.a.meta(s, M_DEVICE))];
    if (!dev || enabledIn(dev, Atomics.load(w, this.a.meta(s, M_EPOCH)))) return false;
    this.end(s, SLOT_HALTED);
    return true;
  }

  /** SUBMITTED -> `state` (COMPLETED or HALTED), then wake the channel; once per request. */
  end(s: number, state: number): void {
    const w = this.a.i32;
    if (
      Atomics.compareExchange(w, this.a.meta(s, M_STATE), SLOT_SUBMITTED, state) !== SLOT_SUBMITTED
    )
      return;
    Atomics.add(w, A_COMPLETION_HANDLED, 1);
    const irq = this.a.meta(s, M_IRQ);
    Atomics.add(w, irq, 1);
    Atomics.notify(w, irq);
  }
}

/** The arena's report of dsa_completion's CPU (one thread). */
export function completionCpuReport(arena: SharedArrayBuffer): CpuReport {
  return new CpuReport(arena, CPU_REPORT_BYTE, 1);
}
