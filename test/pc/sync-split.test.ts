// The words between the PC's dirty_sync thread and its helper (sync-split.ts): a job handed out
// is answered with the helper's pages, one job at a time; a helper that does not answer in time
// leaves dirty_sync to do the part itself. With a real helper thread, and on one thread.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { SPLIT, SyncSplit } from '../../src/machine/pc/sync-split.js';

test('a job is answered with the pages and CPU the helper stored before it said done', () => {
  const s = new SyncSplit();
  const job = s.handOut();
  assert.equal(job, 1);
  assert.equal(s.requested, 1, 'the helper sees the job');
  s.finish(job, 7, 1234.6);
  assert.deepEqual(s.awaitJob(job, 1000), { pages: 7, cpuMicros: 1235 });
  assert.equal(s.handOut(), 2, 'the next job has the next number');
  assert.equal(s.awaitJob(2, 20), null, 'an unanswered job times out: dirty_sync does the part');
  // A late answer to an older job does not count for the newer one.
  s.finish(1, 99, 0);
  assert.equal(s.awaitJob(2, 20), null);
  s.finish(2, 3, 10);
  assert.deepEqual(s.awaitJob(2, 20), { pages: 3, cpuMicros: 10 });
});

test('a helper on its own thread answers each job as it comes', async () => {
  const s = new SyncSplit();
  // The helper's loop, as dirty-sync-helper.ts runs it: wait for a new job, answer job * 10.
  const helper = new Worker(
    `
    const { workerData } = require('node:worker_threads');
    const w = new Int32Array(workerData);
    let last = Atomics.load(w, ${SPLIT.done});
    for (;;) {
      const job = Atomics.load(w, ${SPLIT.request});
      if (job === last) {
        Atomics.wait(w, ${SPLIT.request}, last);
        continue;
      }
      if (job < 0) break;
      last = job;
      Atomics.store(w, ${SPLIT.pages}, job * 10);
      Atomics.store(w, ${SPLIT.cpuMicros}, job);
      Atomics.store(w, ${SPLIT.done}, job);
      Atomics.notify(w, ${SPLIT.done});
    }
    `,
    { eval: true, workerData: s.buffer },
  );
  try {
    // The first job goes out before the helper has started: it is done when the helper starts.
    for (let i = 1; i <= 50; i++) {
      const job = s.handOut();
      assert.deepEqual(s.awaitJob(job, 5000), { pages: job * 10, cpuMicros: job }, `job ${job}`);
    }
  } finally {
    Atomics.store(s.words, SPLIT.request, -1);
    Atomics.notify(s.words, SPLIT.request);
    await helper.terminate();
  }
});
