// Worker threads started ahead of need. Starting a Node worker and loading its modules costs
// tens of milliseconds of CPU; a migration's setup should not pay that (QEMU's thread creation
// costs microseconds). Pooled workers wait idle for a 'bind' message carrying their data; what
// an idle one says before it is taken (a receive thread's port) is kept for its taker.

import { Worker } from 'node:worker_threads';
// Loaded before any pooled thread starts, so that they all share the main thread's gate.
import './warm-up-gate.js';

export class WorkerPool {
  private readonly idle = new Map<string, Worker[]>();
  /** the last message each idle worker posted, and the listener that keeps it */
  private readonly said = new Map<Worker, { message?: unknown; listen(m: unknown): void }>();
  /** what taken workers said while idle, until their taker asks */
  private readonly saidBeforeTaken = new WeakMap<Worker, unknown>();

  /** Keep `n` idle workers of `file` ready, started with `workerData`. */
  prespawn(file: URL, n: number, workerData?: unknown): void {
    const list = this.idle.get(file.href) ?? [];
    this.idle.set(file.href, list);
    while (list.length < n) {
      const w = new Worker(file, { workerData });
      w.on('error', () => {});
      const said: { message?: unknown; listen(m: unknown): void } = {
        listen: (m) => (said.message = m),
      };
      w.on('message', said.listen);
      this.said.set(w, said);
      w.unref();
      list.push(w);
    }
  }

  /** An idle worker of `file` (or a new one), bound to `data`, and given a name. */
  take(file: URL, data: unknown): Worker {
    const w = this.idle.get(file.href)?.shift() ?? new Worker(file);
    const said = this.said.get(w);
    if (said) {
      this.said.delete(w);
      w.off('message', said.listen);
      if (said.message !== undefined) this.saidBeforeTaken.set(w, said.message);
    }
    w.ref();
    w.postMessage({ type: 'bind', data });
    return w;
  }

  /**
   * Post `message` to the idle workers of `file`; returns how many there were (the channel
   * threads' warm-up on the emulated DSA: src/machine/channel-warm-up.ts).
   */
  postIdle(file: URL, message: unknown): number {
    const idle = this.idle.get(file.href) ?? [];
    for (const w of idle) w.postMessage(message);
    return idle.length;
  }

  /** What `w` said while it was idle in this pool (its last message), for its taker. */
  saidWhileIdle(w: Worker): unknown {
    return this.saidBeforeTaken.get(w);
  }

  /** Stop the idle workers of `file` (they were started for settings that changed). */
  async drain(file: URL): Promise<void> {
    const list = this.idle.get(file.href) ?? [];
    this.idle.delete(file.href);
    for (const w of list) this.said.delete(w);
    await Promise.all(list.map((w) => w.terminate()));
  }

  /** Idle workers of `file` ready to be taken. */
  idleCount(file: URL): number {
    return this.idle.get(file.href)?.length ?? 0;
  }

  async close(): Promise<void> {
    const all = [...this.idle.values()].flat();
    this.idle.clear();
    this.said.clear();
    await Promise.all(all.map((w) => w.terminate()));
  }
}
