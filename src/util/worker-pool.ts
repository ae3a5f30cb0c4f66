// Worker threads started ahead of need. Starting a Node worker and loading its modules costs
// tens of milliseconds of CPU; a migration's setup should not pay that (QEMU's thread creation
// costs microseconds). Pooled workers wait idle for a 'bind' message carrying their data.

import { Worker } from 'node:worker_threads';

export class WorkerPool {
  private readonly idle = new Map<string, Worker[]>();

  /** Keep `n` idle workers of `file` ready. */
  prespawn(file: URL, n: number): void {
    const list = this.idle.get(file.href) ?? [];
    this.idle.set(file.href, list);
    while (list.length < n) {
      const w = new Worker(file);
      w.on('error', () => {});
      w.unref();
      list.push(w);
    }
  }

  /** An idle worker of `file` (or a new one), bound to `data`, and given a name. */
  take(file: URL, data: unknown): Worker {
    const w = this.idle.get(file.href)?.shift() ?? new Worker(file);
    w.ref();
    w.postMessage({ type: 'bind', data });
    return w;
  }

  /** Idle workers of `file` ready to be taken. */
  idleCount(file: URL): number {
    return this.idle.get(file.href)?.length ?? 0;
  }

  async close(): Promise<void> {
    const all = [...this.idle.values()].flat();
    this.idle.clear();
    await Promise.all(all.map((w) => w.terminate()));
  }
}
