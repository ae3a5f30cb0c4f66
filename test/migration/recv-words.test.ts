// The destination's shared words (recv-words.ts): channels meet at a pass, an abort wakes
// every waiter, a late channel is named, and the main thread reads progress, all across real
// threads where it matters.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import {
  ChannelBarrier,
  RECV_BARRIER,
  RECV_STAT,
  RecvProgress,
  channelStats,
  createRecvBarrier,
  createRecvStats,
} from '../../src/migration/destination/recv-words.js';

const FAR = () => performance.now() + 60_000;

test('channels that each reach a pass all pass the barrier', async () => {
  const buf = createRecvBarrier(3);
  const channels = [0, 1, 2].map((c) => new ChannelBarrier(buf, c, 3));
  const progress = new RecvProgress(buf, createRecvStats(3), 3);
  channels[0].reached(1);
  const first = channels[0].waitAll(1, FAR(), () => assert.fail('not late'));
  channels[1].reached(1);
  assert.equal(progress.syncedPass(1), 1);
  assert.equal(progress.syncedPass(2), 0, 'channel 2 has not');
  channels[2].reached(1);
  assert.equal(await first, true);
});

test('a channel that never arrives is named once the deadline has passed', async () => {
  const buf = createRecvBarrier(2);
  const me = new ChannelBarrier(buf, 0, 2);
  me.reached(4);
  let late = -1;
  assert.equal(await me.waitAll(4, performance.now() - 1, (c) => (late = c)), false);
  assert.equal(late, 1);
});

test('abort wakes a channel waiting in another thread, and every waiter sees it', async () => {
  const buf = createRecvBarrier(2);
  const progress = new RecvProgress(buf, createRecvStats(2), 2);
  // Channel 1, in a worker, waits at pass 1 for channel 0, which never comes.
  const worker = new Worker(
    `
    const { workerData, parentPort } = require('node:worker_threads');
    const w = new Int32Array(workerData.buf);
    Atomics.store(w, 1, 1);
    parentPort.postMessage('waiting');
    while (Atomics.load(w, workerData.abort) === 0 && Atomics.load(w, 0) < 1) Atomics.wait(w, 0, 0);
    parentPort.postMessage(Atomics.load(w, workerData.abort) === 1 ? 'aborted' : 'passed');
    `,
    { eval: true, workerData: { buf, abort: RECV_BARRIER.abort(2) } },
  );
  const messages: string[] = [];
  const done = new Promise<void>((resolve) =>
    worker.on('message', (m: string) => {
      messages.push(m);
      if (m === 'waiting') progress.abort();
      else resolve();
    }),
  );
  await done;
  assert.deepEqual(messages, ['waiting', 'aborted']);
  assert.ok(progress.aborted);
  assert.ok(new ChannelBarrier(buf, 0, 2).aborted);
  assert.equal(await new ChannelBarrier(buf, 0, 2).waitAll(1, FAR(), () => {}), false);
  await worker.terminate();
});

test('stats: each channel writes its own fields, the main thread sums them', () => {
  const stats = createRecvStats(2);
  const progress = new RecvProgress(createRecvBarrier(2), stats, 2);
  const a = channelStats(stats, 0);
  const b = channelStats(stats, 1);
  a[RECV_STAT.bytes] = 100;
  a[RECV_STAT.normal] = 3;
  b[RECV_STAT.bytes] = 50;
  b[RECV_STAT.zero] = 7;
  b[RECV_STAT.packets] = 2;
  assert.equal(progress.total('bytes'), 150);
  assert.equal(progress.total('normal'), 3);
  assert.equal(progress.total('zero'), 7);
  assert.equal(progress.total('packets'), 2);
  assert.equal(stats.byteLength, 2 * RECV_STAT.size * 8);
});
