// Per-thread CPU accounting: each migration thread publishes its own CPU milliseconds in its
// slot of a thread-CPU report (cpu-report.ts) on its own schedule; the main thread reads the
// slots when asked (query-migrate, benchmarks).

import { CpuReport, cpuReportBytes } from './cpu-report.js';
import { threadCpuMs } from './thread-cpu.js';

export const MAX_CPU_SLOTS = 256;

export function createCpuSlots(): SharedArrayBuffer {
  return new SharedArrayBuffer(cpuReportBytes(MAX_CPU_SLOTS));
}

/** This thread's view of each report it publishes in. */
const reports = new WeakMap<SharedArrayBuffer, CpuReport>();
function reportOf(slots: SharedArrayBuffer): CpuReport {
  let r = reports.get(slots);
  if (!r) reports.set(slots, (r = new CpuReport(slots, 0, MAX_CPU_SLOTS)));
  return r;
}

/** CPU the calling thread had used before its current task (start-up of a pooled worker). */
let base = 0;

/** A pooled thread taking a task: from now on, its figures count this task only. */
export function resetThreadCpu(): void {
  base = threadCpuMs() || 0;
}

/** Record the calling thread's CPU time in `slot` (its only writer). */
export function publishThreadCpu(slots: SharedArrayBuffer, slot: number): void {
  // Where /proc is missing the figure is NaN; report 0 rather than a non-JSON number.
  const ms = threadCpuMs();
  reportOf(slots).publish(slot, Number.isNaN(ms) ? 0 : ms - base);
}

/** Names slots by thread (live_migration, multifdsend_0, ...), owned by the main thread. */
export class CpuRegistry {
  readonly slots = createCpuSlots();
  private readonly names = new Map<string, number>();
  private readonly report = reportOf(this.slots);

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
      out[name] = Math.round(this.report.read(s) * 10) / 10;
    }
    return out;
  }

  /** Before the slot's thread (re)starts, so not while it writes. */
  reset(name: string): void {
    const s = this.names.get(name);
    if (s !== undefined) this.report.publish(s, 0);
  }
}
