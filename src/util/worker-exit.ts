// Waiting for a worker thread that was told to stop (through shared memory) to leave by itself.

import type { Worker } from 'node:worker_threads';

/** Resolve once `worker` has exited; terminate it if it has not after `graceMs`. */
export function awaitExit(worker: Worker, graceMs: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const t = setTimeout(() => void worker.terminate().then(() => resolve()), graceMs);
    worker.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    worker.ref(); // an unref'd worker would let the process end before it exits
  });
}
