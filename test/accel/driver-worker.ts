// A stand-in for a multifdsend_N worker: attach with the handle, classify, report.
// (Not a test file: run as a Worker by driver.test.ts; does nothing on a main thread.)

import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { attachAccelerator, type AccelHandle } from '../../src/accel/driver.js';

async function main(): Promise<void> {
  const { accel, block, channel, keep } = workerData as {
    accel: AccelHandle;
    block: SharedArrayBuffer;
    channel: number;
    /** Leave without closeClient (the opener's close must clean up). */
    keep?: boolean;
  };
  const client = attachAccelerator(accel);
  const task = client.createBatchTask(channel, 128);
  const pages = new Uint32Array(128);
  const results = new Uint8Array(1024);
  for (let first = 0; first < 1024; first += 128) {
    for (let i = 0; i < 128; i++) pages[i] = first + i;
    await task.zeroPages(block, pages, 128, results.subarray(first, first + 128));
  }
  const cpu = await client.threadCpu();
  if (!keep) client.closeClient();
  parentPort!.postMessage({ results, cpu });
}

if (!isMainThread) await main();
