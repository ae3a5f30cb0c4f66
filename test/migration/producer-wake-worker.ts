// For producer-wake.test.ts: a channel freeing 12 slots, one every 2 ms, as multifdsend_N does.
import { workerData } from 'node:worker_threads';
import { MIG, shouldWakeProducer } from '../../src/migration/source/channel-slots.js';

const mig = workerData as Int32Array;
const pause = new Int32Array(new SharedArrayBuffer(4));
for (let i = 0; i < 12; i++) {
  Atomics.wait(pause, 0, 0, 2);
  if (shouldWakeProducer(mig, Atomics.add(mig, MIG.freed, 1) + 1)) Atomics.notify(mig, MIG.freed);
}
