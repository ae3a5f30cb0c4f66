// Process-level and thread-level CPU and memory from /proc, for any process (livemig or QEMU),
// and a sampler of a process's threads for peers that do not account CPU per thread themselves.

import { readdirSync, readFileSync } from 'node:fs';

export { processCpuMs, procStatusKiB } from '../util/proc.js';

/** Every thread of a process: tid, name (comm, at most 15 characters) and CPU ms. */
export function processThreads(pid: number): { tid: number; name: string; ms: number }[] {
  const out: { tid: number; name: string; ms: number }[] = [];
  let tids: string[];
  try {
    tids = readdirSync(`/proc/${pid}/task`);
  } catch {
    return out;
  }
  for (const t of tids) {
    try {
      const name = readFileSync(`/proc/${pid}/task/${t}/comm`, 'utf8').trim();
      const s = readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'latin1');
      out.push({ tid: Number(t), name, ms: Number(s.slice(0, s.indexOf(' '))) / 1e6 });
    } catch {
      // the thread exited between readdir and read
    }
  }
  return out;
}

/**
 * Samples a process's threads every `intervalMs` and keeps each thread's last CPU figure, so
 * that threads which exit before the end (QEMU's migration threads do) are still counted, up
 * to their last sample. The CPU a thread spent after its last sample is missed: at most one
 * interval per thread, and the process total (which counts it) shows the difference.
 */
export class ThreadSampler {
  private readonly seen = new Map<number, { name: string; base: number; ms: number }>();
  private readonly timer: NodeJS.Timeout;

  constructor(
    readonly pid: number,
    intervalMs = 10,
  ) {
    // Threads alive now start from their current CPU: only CPU spent from here on counts.
    for (const t of processThreads(pid))
      this.seen.set(t.tid, { name: t.name, base: t.ms, ms: t.ms });
    this.timer = setInterval(() => this.sample(), intervalMs);
  }

  sample(): void {
    for (const t of processThreads(this.pid)) {
      const s = this.seen.get(t.tid);
      if (s) {
        s.ms = t.ms;
        s.name = t.name;
      } else this.seen.set(t.tid, { name: t.name, base: 0, ms: t.ms });
    }
  }

  /** Stop sampling; CPU ms per thread name (threads of the same name summed). */
  stop(): Map<string, number> {
    this.sample();
    clearInterval(this.timer);
    const out = new Map<string, number>();
    for (const s of this.seen.values()) out.set(s.name, (out.get(s.name) ?? 0) + s.ms - s.base);
    return out;
  }
}
