// The part of every dsa_completion thread (emulated and hardware) that answers
// Accelerator.threadCpu(): it says it runs, and answers the arena's thread-CPU report
// (src/util/cpu-report.ts) when asked.

import { A_COMPLETION_RUNNING, CPU_REPORT_BYTE, type ArenaView } from './arena.js';
import { CpuReport } from '../util/cpu-report.js';
import { threadCpuMs } from '../util/thread-cpu.js';

export class CompletionCpu {
  private readonly report: CpuReport;
  // 0, not the current count: a report asked for before this thread started is still owed.
  private seen = 0;

  constructor(private readonly a: ArenaView) {
    this.report = completionCpuReport(a.sab);
  }

  /** The thread is up: say so, with its CPU so far. */
  start(): void {
    Atomics.store(this.a.i32, A_COMPLETION_RUNNING, 1);
    this.report.publish(0, threadCpuMs());
  }

  /** Answer a report asked for since the last call, if any. */
  serve(): void {
    this.seen = this.report.answer(0, this.seen, threadCpuMs);
  }

  /** The thread ends: its last figure, then not running. */
  stop(): void {
    this.report.publish(0, threadCpuMs());
    Atomics.store(this.a.i32, A_COMPLETION_RUNNING, 0);
  }
}

/** The arena's report of dsa_completion's CPU (one thread). */
export function completionCpuReport(arena: SharedArrayBuffer): CpuReport {
  return new CpuReport(arena, CPU_REPORT_BYTE, 1);
}
