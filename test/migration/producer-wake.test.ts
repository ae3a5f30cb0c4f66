// MIG.wakeAt: live_migration asks to be woken once `freed` reaches a count; channels notify only
// then. These tests hold the protocol to its two promises: no wake-up before the count, and
// none lost (a waiter always wakes, at the count or at once if the count passed already).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { MIG, shouldWakeProducer, wakeBatch } from '../../src/migration/source/channel-slots.js';

test('wakeBatch is half of what the channels hold together, between 1 and 8', () => {
  assert.equal(wakeBatch(1, 1), 1);
  assert.equal(wakeBatch(8, 1), 4);
  assert.equal(wakeBatch(8, 2), 8);
  assert.equal(wakeBatch(2, 3), 3);
  assert.equal(wakeBatch(64, 1), 8);
});

test('a channel wakes live_migration only once freed reaches wakeAt, and never when 0', () => {
  const mig = new Int32Array(new SharedArrayBuffer(4 * MIG.size));
  assert.equal(shouldWakeProducer(mig, 123), false, 'nobody waits');
  Atomics.store(mig, MIG.wakeAt, 10);
  assert.equal(shouldWakeProducer(mig, 9), false);
  assert.equal(shouldWakeProducer(mig, 10), true);
  assert.equal(shouldWakeProducer(mig, 11), true, 'a count past wakeAt still wakes');
  // freed wraps around int32: the comparison is modular.
  Atomics.store(mig, MIG.wakeAt, -2147483647);
  assert.equal(shouldWakeProducer(mig, 2147483647), false);
  assert.equal(shouldWakeProducer(mig, -2147483647), true);
});

test('a waiting live_migration is woken by channels freeing slots in another thread', async () => {
  const mig = new Int32Array(new SharedArrayBuffer(4 * MIG.size));
  // The channel side, in a worker: frees 12 slots, notifying as the protocol says.
  const channel = new Worker(new URL('./producer-wake-worker.js', import.meta.url), {
    workerData: mig,
  });
  const wakes: number[] = [];
  // The live_migration side: wait for batches of 4 until all 12 are freed.
  let seq = Atomics.load(mig, MIG.freed);
  while (seq < 12) {
    Atomics.store(mig, MIG.wakeAt, seq + 4);
    Atomics.wait(mig, MIG.freed, seq, 5000);
    Atomics.store(mig, MIG.wakeAt, 0);
    seq = Atomics.load(mig, MIG.freed);
    wakes.push(seq);
  }
  await new Promise((r) => channel.once('exit', r));
  assert.equal(Atomics.load(mig, MIG.freed), 12);
  assert.ok(wakes.length <= 12, `woke ${wakes.length} times`);
  assert.ok(
    wakes.every((n, i) => i === 0 || n > wakes[i - 1]),
    `every wake-up saw progress: ${wakes.join(',')}`,
  );
});
