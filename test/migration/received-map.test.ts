// The received map between the channels that write pages and a machine that takes them in:
// every page written after the machine last took it is taken again, whatever the interleaving.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { RECEIVED, takeWrittenPages } from '../../src/migration/destination/received-map.js';

test('only pages in state DATA are taken, and they become TAKEN', () => {
  const map = new Uint8Array(new SharedArrayBuffer(8));
  map.set([RECEIVED.never, RECEIVED.zero, RECEIVED.data, RECEIVED.taken, RECEIVED.data]);
  const copied: number[] = [];
  assert.equal(
    takeWrittenPages(map, (p) => copied.push(p)),
    2,
  );
  assert.deepEqual(copied, [2, 4]);
  assert.deepEqual([...map.subarray(0, 5)], [0, 1, 3, 3, 3]);
  assert.equal(
    takeWrittenPages(map, () => assert.fail('nothing is left to take')),
    0,
  );
});

test('a page written again while the machine copies it is taken again', () => {
  const map = new Uint8Array(new SharedArrayBuffer(1));
  map[0] = RECEIVED.data;
  let copies = 0;
  takeWrittenPages(map, () => {
    copies++;
    // A channel finishes writing the page during the copy: it stores DATA afterwards.
    Atomics.store(map, 0, RECEIVED.data);
  });
  assert.equal(map[0], RECEIVED.data, 'the page is due again');
  takeWrittenPages(map, () => copies++);
  assert.equal(copies, 2);
  assert.equal(map[0], RECEIVED.taken);
});

test('with a real writer thread, what the machine took last is what was written last', async () => {
  // Pages of 4 int32 words; the writer fills a page with a value, then stores DATA. The taker
  // copies pages into its own memory. After the writer stops and a last take, every copy equals
  // the source: no write was missed.
  const PAGES = 256;
  const WORDS = 4;
  const src = new Int32Array(new SharedArrayBuffer(PAGES * WORDS * 4));
  const map = new Uint8Array(new SharedArrayBuffer(PAGES));
  const dst = new Int32Array(PAGES * WORDS);
  const writer = new Worker(
    `const { workerData: { src, map, rounds } } = require('node:worker_threads');
     const s = new Int32Array(src); const m = new Uint8Array(map);
     for (let r = 1; r <= rounds; r++) {
       for (let p = (r * 7) % 5; p < m.length; p += 3) {
         for (let w = 0; w < 4; w++) Atomics.store(s, p * 4 + w, r);
         Atomics.store(m, p, 2);
       }
     }`,
    { eval: true, workerData: { src: src.buffer, map: map.buffer, rounds: 3000 } },
  );
  const done = new Promise((resolve, reject) => {
    writer.once('exit', resolve);
    writer.once('error', reject);
  });
  let running = true;
  void done.then(() => (running = false));
  const take = (): number =>
    takeWrittenPages(map, (p) => {
      for (let w = 0; w < WORDS; w++) dst[p * WORDS + w] = Atomics.load(src, p * WORDS + w);
    });
  let rounds = 0;
  while (running) {
    take();
    rounds++;
    await new Promise((r) => setImmediate(r));
  }
  await done;
  take();
  assert.ok(rounds > 0);
  assert.deepEqual(dst, Int32Array.from(src), 'every page as last written');
});
