// For warm-up-gate.test.ts: answers each message with what the gate says in this thread; given
// `nested`, starts a thread of its own (a thread started by a pooled thread) and relays for it.
import { parentPort, Worker, workerData } from 'node:worker_threads';
import { warmUpsPaused } from '../../src/util/warm-up-gate.js';

const child = workerData === 'nested' ? new Worker(new URL(import.meta.url)) : null;
parentPort!.on('message', (m: string) => {
  if (m === 'exit') {
    void child?.terminate();
    parentPort!.close();
    return;
  }
  if (!child) return parentPort!.postMessage(warmUpsPaused());
  child.once('message', (paused: boolean) => parentPort!.postMessage([warmUpsPaused(), paused]));
  child.postMessage(m);
});
