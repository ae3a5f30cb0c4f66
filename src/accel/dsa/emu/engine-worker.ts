// Entry point of a `dsaN/engineN.M` worker thread of the emulated device: bound to its engine
// by workerData, or, started ahead in a WorkerPool, warmed up (engine-warm-up.ts) and then bound
// by a 'bind' message.

import { parentPort, workerData } from 'node:worker_threads';
import { Engine, type EngineWorkerData } from './engine.js';
import { warmUpEngine } from './engine-warm-up.js';
import { nameThread } from '../../../util/thread-priority.js';

function run(data: EngineWorkerData): void {
  nameThread(data.device.engines[data.engine].threadName);
  const engine = new Engine(data.device, data.engine);
  parentPort!.postMessage({ ready: true });
  engine.run();
}

if (workerData) run(workerData as EngineWorkerData);
else {
  warmUpEngine();
  parentPort!.once('message', (m: { type: 'bind'; data: EngineWorkerData }) => run(m.data));
}
