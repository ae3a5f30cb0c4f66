// The warm-up gate (src/util/warm-up-gate.ts): the main thread's pauses reach every thread of
// the process as they happen, threads those threads start included, and pauses nest.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import { pauseWarmUps, warmUpsPaused } from '../../src/util/warm-up-gate.js';

const WORKER = new URL('./warm-up-gate-worker.js', import.meta.url);

async function ask(w: Worker): Promise<unknown> {
  const answer = once(w, 'message');
  w.postMessage('ask');
  return (await answer)[0];
}

test('a thread sees the main thread pause and resume warm-ups, as it happens', async () => {
  const w = new Worker(WORKER);
  try {
    assert.equal(await ask(w), false, 'no migration yet');
    const resume = pauseWarmUps();
    assert.equal(await ask(w), true, 'a migration started after the thread did');
    resume();
    assert.equal(await ask(w), false, 'it ended');
  } finally {
    await w.terminate();
  }
});

test('a thread started by a thread shares the same gate', async () => {
  const w = new Worker(WORKER, { workerData: 'nested' });
  try {
    assert.deepEqual(await ask(w), [false, false]);
    const resume = pauseWarmUps();
    assert.deepEqual(await ask(w), [true, true]);
    resume();
    assert.deepEqual(await ask(w), [false, false]);
  } finally {
    w.postMessage('exit');
    await once(w, 'exit');
  }
});

test('pauses nest: one migration ending does not resume what another still holds', () => {
  assert.equal(warmUpsPaused(), false);
  const first = pauseWarmUps();
  const second = pauseWarmUps();
  first();
  assert.equal(warmUpsPaused(), true, 'the second migration is still under way');
  first();
  assert.equal(warmUpsPaused(), true, 'ending the first again changes nothing');
  second();
  assert.equal(warmUpsPaused(), false);
});
