// Per-thread CPU accounting: each thread writes its own CPU milliseconds into a slot of a
// shared Float64Array; the main thread reads the slots when asked (query-migrate, benchmarks).

import { threadCpuMs } from './thread-cpu.js';

export const MAX_CPU_SLOTS = 256;

export function createCpuSlots(): SharedArrayBuffer {
  return new SharedArrayBuffer(MAX_CPU_SLOTS * 8);
}

/** CPU the calling thread had used before its current task (start-up of a pooled worker). */
let base = 0;

/** A pooled thread taking a task: from now on, its figures count this task only. */
export function resetThreadCpu(): void {
  base = threadCpuMs() || 0;
}

/** Record the calling thread's CPU time in `slot`. Single writer per slot, so no atomics. */
export function publishThreadCpu(slots: SharedArrayBuffer, slot: number): void {
  // Where /proc is missing the figure is NaN; report 0 rather than a non-JSON number.
  const ms = threadCpuMs();
  new Float64Array(slots)[slot] = Number.isNaN(ms) ? 0 : ms - base;
}

/** Names slots by thread (live_migration, multifdsend_0, ...), owned by the main thread. */
export class CpuRegistry {
  readonly slots = createCpuSlots();
  private readonly names = new Map<string, number>();
  private readonly view = new Float64Array(this.slots);

  slot(name: string): number {
    let s = this.names.get(name);
    if (s === undefined) {
      s = this.names.size;
      if (s >= MAX_CPU_SLOTS) throw new Error('too many threads to account CPU for');
      this.names.set(name, s);
    }
    return s;
  }

  /** Thread name -> CPU ms, rounded to 0.1 ms, for the names given (all if omitted). */
  snapshot(names?: string[]): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [name, s] of this.names) {
      if (names && !names.includes(name)) continue;
      out[name] = Math.round(this.view[s] * 10) / 10;
    }
    return out;
  }

  reset(name: string): void {
    const s = this.names.get(name);
    if (s !== undefined) this.view[s] = 0;
  }
}
