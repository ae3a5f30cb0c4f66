// The part of every dsa_completion thread (emulated and hardware) that answers
// Accelerator.threadCpu(): it says it runs, publishes its own CPU time when a report is asked
// for (A_CPU_REQ), and acknowledges (A_CPU_ACK).

import {
  A_COMPLETION_RUNNING,
  A_CPU_ACK,
  A_CPU_REQ,
  F_COMPLETION_CPU_MS,
  type ArenaView,
} from './arena.js';
import { threadCpuMs } from '../util/thread-cpu.js';

export class CompletionCpu {
  // 0, not the current count: a report asked for before this thread started is still owed.
  private seen = 0;

  constructor(private readonly a: ArenaView) {}

  /** The thread is up: say so, with its CPU so far. */
  start(): void {
    Atomics.store(this.a.i32, A_COMPLETION_RUNNING, 1);
    this.publish();
  }

  /** Answer a report asked for since the last call, if any. */
  serve(): void {
    const w = this.a.i32;
    const req = Atomics.load(w, A_CPU_REQ);
    if (req === this.seen) return;
    this.seen = req;
    this.publish();
    Atomics.add(w, A_CPU_ACK, 1);
    Atomics.notify(w, A_CPU_ACK);
  }

  /** The thread ends: its last figure, then not running. */
  stop(): void {
    this.publish();
    Atomics.store(this.a.i32, A_COMPLETION_RUNNING, 0);
  }

  private publish(): void {
    this.a.setHeaderF64(F_COMPLETION_CPU_MS, threadCpuMs());
  }
}
