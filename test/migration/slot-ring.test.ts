// The channel slots' two ends (slot-ring.ts): live_migration fills each channel's ring in
// order, round-robin over channels, never more than `depth` packets per channel at once;
// multifdsend_N frees in order. And across real threads: a worker frees what this thread fills.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import {
  MIG,
  SLOT,
  SLOT_FREE,
  SLOT_FULL,
  SLOTS_PER_CHANNEL,
  channelDepth,
  createSlots,
  slotBase,
} from '../../src/migration/source/channel-slots.js';
import { SlotConsumer, SlotProducer } from '../../src/migration/source/slot-ring.js';

function ring(channels: number, depth: number) {
  const slots = createSlots(channels);
  const mig = new SharedArrayBuffer(4 * MIG.size);
  const producer = new SlotProducer(slots, mig, channels, depth);
  const consumers = Array.from({ length: channels }, (_, c) => new SlotConsumer(slots, mig, c));
  return { slots, mig, producer, consumers };
}

test('packets go round-robin over the channels, in ring order within each', () => {
  const { producer } = ring(3, 8);
  const got: number[] = [];
  for (let i = 0; i < 6; i++) {
    const base = producer.tryAcquire();
    producer.publish(base);
    got.push(base);
  }
  assert.deepEqual(got, [
    slotBase(0, 0),
    slotBase(1, 0),
    slotBase(2, 0),
    slotBase(0, 1),
    slotBase(1, 1),
    slotBase(2, 1),
  ]);
});

test('a channel holds at most `depth` packets; freeing the oldest makes room', () => {
  const { producer, consumers } = ring(1, 2);
  producer.publish(producer.tryAcquire());
  producer.publish(producer.tryAcquire());
  assert.equal(producer.tryAcquire(), -1, 'two in flight: full at depth 2');
  assert.ok(consumers[0].isFull(0) && consumers[0].isFull(1));
  consumers[0].release(0);
  assert.equal(producer.tryAcquire(), slotBase(0, 2), 'the next slot in ring order');
});

test('a SYNC for one channel waits for that channel only', () => {
  const { producer, consumers } = ring(2, 1);
  producer.publish(producer.tryAcquire(0));
  assert.equal(producer.tryAcquire(0), -1, 'channel 0 is full');
  assert.equal(producer.tryAcquire(1), slotBase(1, 0), 'channel 1 is not');
  consumers[0].release(0);
  assert.equal(producer.tryAcquire(0), slotBase(0, 1));
});

test('the ring wraps, and release counts in MIG.freed', () => {
  const { producer, consumers, mig } = ring(1, channelDepth('multifd'));
  for (let i = 0; i < 3 * SLOTS_PER_CHANNEL; i++) {
    const base = producer.tryAcquire();
    assert.equal(base, slotBase(0, i % SLOTS_PER_CHANNEL));
    producer.publish(base);
    consumers[0].release(i % SLOTS_PER_CHANNEL);
  }
  assert.equal(Atomics.load(new Int32Array(mig), MIG.freed), 3 * SLOTS_PER_CHANNEL);
});

test('across threads: a worker frees in order what this thread fills, and acquire waits for it', async () => {
  const { slots, mig, producer } = ring(1, 4);
  // The worker plays multifdsend_0: it takes each slot's first page number and frees the slot.
  const worker = new Worker(
    `
    const { workerData, parentPort } = require('node:worker_threads');
    const { slots, mig, n, SLOT, SLOT_WORDS, PER, FULL, FREE, FREED } = workerData;
    const s = new Int32Array(slots), m = new Int32Array(mig);
    const seen = [];
    for (let i = 0; i < n; i++) {
      const base = (i % PER) * SLOT_WORDS;
      while (Atomics.load(s, base + SLOT.state) !== FULL) Atomics.wait(s, base + SLOT.state, FREE, 50);
      seen.push(s[base + SLOT.header]);
      Atomics.store(s, base + SLOT.state, FREE);
      Atomics.add(m, FREED, 1);
      Atomics.notify(m, FREED);
    }
    parentPort.postMessage(seen);
    `,
    {
      eval: true,
      workerData: {
        slots,
        mig,
        n: 200,
        SLOT,
        SLOT_WORDS: slotBase(0, 1),
        PER: SLOTS_PER_CHANNEL,
        FULL: SLOT_FULL,
        FREE: SLOT_FREE,
        FREED: MIG.freed,
      },
    },
  );
  const seen = new Promise<number[]>((resolve) => worker.once('message', resolve));
  const words = new Int32Array(slots);
  for (let i = 0; i < 200; i++) {
    const base = producer.acquire(() => {});
    words[base + SLOT.header] = i;
    producer.publish(base);
  }
  assert.deepEqual(
    await seen,
    Array.from({ length: 200 }, (_, i) => i),
  );
  await worker.terminate();
});
