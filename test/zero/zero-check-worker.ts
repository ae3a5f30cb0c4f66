// For zero-check.test.ts: a thread that receives a RAM block the way the engine's workers do.
import { parentPort, workerData } from 'node:worker_threads';
import { segmentViews, type RamBlockDesc } from '../../src/ram/layout.js';
import { isZeroRange } from '../../src/zero/zero-check.js';
import { wasmCheckFor } from '../../src/zero/wasm-zero.js';

const b = workerData as RamBlockDesc;
const [seg] = segmentViews(b);
parentPort!.postMessage([
  wasmCheckFor(seg.buffer) !== undefined,
  isZeroRange(seg, 0, seg.length),
  isZeroRange(seg, 122_880, 4096),
  isZeroRange(seg, 0, 4096),
]);
