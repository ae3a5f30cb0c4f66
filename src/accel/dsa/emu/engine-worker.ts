// Entry point of a `dsaN/engineN.M` worker thread of the emulated device.

import { parentPort, workerData } from 'node:worker_threads';
import { Engine, type EngineWorkerData } from './engine.js';

const data = workerData as EngineWorkerData;
const engine = new Engine(data.device, data.engine);
parentPort?.postMessage({ ready: true });
engine.run();
