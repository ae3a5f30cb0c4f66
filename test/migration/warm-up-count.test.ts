// The channel threads' warm-up count (warm-up-count.ts): the main thread closes an accelerator
// only once every thread it told is done with it, across real threads; a thread that sees
// `stop` before it starts never attaches.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { WARM, WarmUpCount } from '../../src/migration/source/warm-up-count.js';

test('allDone waits for every told thread, and times out without them', async () => {
  const count = new WarmUpCount();
  assert.equal(await count.allDone(0, 10), true, 'none told: done at once');
  assert.equal(await count.allDone(2, 30), false, 'nobody said done');
  count.done();
  const both = count.allDone(2, 5000);
  setTimeout(() => count.done(), 20);
  assert.equal(await both, true);
  assert.equal(count.words[WARM.done], 2);
});

test('askStop is seen by the threads; done counts from another thread wake the main one', async () => {
  const count = new WarmUpCount();
  const code = `
    const { workerData } = require('node:worker_threads');
    const w = new Int32Array(workerData.buffer);
    // As a told channel thread: wait until asked to stop, then say done.
    while (Atomics.load(w, ${WARM.stop}) === 0) Atomics.wait(w, ${WARM.stop}, 0, 10);
    Atomics.add(w, ${WARM.done}, 1);
    Atomics.notify(w, ${WARM.done});
  `;
  const workers = [0, 1, 2].map(
    () => new Worker(code, { eval: true, workerData: { buffer: count.buffer } }),
  );
  try {
    assert.equal(await count.allDone(3, 50), false, 'they wait for stop');
    assert.equal(count.stopAsked, false);
    count.askStop();
    assert.equal(count.stopAsked, true);
    assert.equal(await count.allDone(3, 5000), true);
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
});
