// A channel-like thread for shutdown.test.ts: classifies 1024 pages in eight 128-page
// requests, all in flight at once, says 'started', and on a message stops (client.stop())
// and reports. (Not a test file: run as a Worker; does nothing on a main thread.)

import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { attachAccelerator, type AccelHandle } from '../../src/accel/driver.js';

if (!isMainThread) {
  const { accel, block } = workerData as { accel: AccelHandle; block: SharedArrayBuffer };
  const client = attachAccelerator(accel);
  const task = client.createBatchTask(0, 128);
  const results = new Uint8Array(1024);
  const requests = [0, 1, 2, 3, 4, 5, 6, 7].map((k) =>
    task.zeroPages(
      block,
      Uint32Array.from({ length: 128 }, (_, i) => k * 128 + i),
      128,
      results.subarray(k * 128, k * 128 + 128),
    ),
  );
  parentPort!.postMessage('started');
  parentPort!.once('message', () => {
    void client.stop().then(async () => {
      const settled = (await Promise.all(requests)).length;
      parentPort!.postMessage({ results, settled });
    });
  });
}
