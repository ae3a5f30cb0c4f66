// The thread-CPU report (src/util/cpu-report.ts) between real threads: a thread publishes on
// its own; a reader asks and waits for the answers of several threads; a request made before a
// thread starts answering is still answered; figures stay where their thread wrote them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { CpuReport, cpuReportBytes } from '../../src/util/cpu-report.js';

/** A thread that answers requests in slot k of the report at byte 16 with k * 1000 + n. */
const ANSWERER = `
const { workerData: { sab, k, threads, startSeen } } = require('node:worker_threads');
const words = new Int32Array(sab, 16, 2);
const ms = new Float64Array(sab, 24, threads);
let seen = startSeen;
let n = 0;
for (;;) {
  const req = Atomics.load(words, 0);
  if (req < 0) break; // the test is over
  if (req !== seen) {
    seen = req;
    ms[k] = k * 1000 + ++n;
    Atomics.add(words, 1, 1);
    Atomics.notify(words, 1);
  }
  Atomics.wait(words, 0, req, 50);
}
`;

test('publish and read: each slot holds what its thread wrote', () => {
  const sab = new SharedArrayBuffer(cpuReportBytes(4));
  const r = new CpuReport(sab, 0, 4);
  r.publish(0, 1.5);
  r.publish(3, 7);
  assert.deepEqual(
    [0, 1, 2, 3].map((k) => r.read(k)),
    [1.5, 0, 0, 7],
  );
  assert.throws(() => new CpuReport(sab, 4, 1), /not 8-aligned/);
});

test('answer() answers only a request made since `seen`, and counts it', async () => {
  const sab = new SharedArrayBuffer(cpuReportBytes(1));
  const r = new CpuReport(sab, 0, 1);
  let seen = r.requests();
  seen = r.answer(0, seen, () => 5);
  assert.equal(r.read(0), 0, 'nothing asked: nothing written');
  const before = r.ask();
  seen = r.answer(0, seen, () => 6);
  assert.equal(r.read(0), 6);
  assert.equal(await r.answered(before, 1, 1000), true);
  assert.equal(
    r.answer(0, seen, () => 7),
    seen,
    'answered once per request',
  );
  assert.equal(r.read(0), 6);
});

test('a reader waits for the answers of three threads, at an offset in a larger buffer', async () => {
  const threads = 3;
  const sab = new SharedArrayBuffer(16 + cpuReportBytes(threads));
  const r = new CpuReport(sab, 16, threads);
  // A request made before the threads run is owed: they start from 0, not from the count.
  const before = r.ask();
  const ws = [0, 1, 2].map(
    (k) => new Worker(ANSWERER, { eval: true, workerData: { sab, k, threads, startSeen: 0 } }),
  );
  try {
    assert.equal(await r.answered(before, threads, 60_000), true);
    assert.deepEqual(
      [0, 1, 2].map((k) => r.read(k)),
      [1, 1001, 2001],
    );
    const again = r.ask();
    assert.equal(await r.answered(again, threads, 60_000), true);
    assert.deepEqual(
      [0, 1, 2].map((k) => r.read(k)),
      [2, 1002, 2002],
    );
  } finally {
    Atomics.store(new Int32Array(sab, 16, 1), 0, -1);
    Atomics.notify(new Int32Array(sab, 16, 1), 0);
    await Promise.all(ws.map((w) => new Promise((res) => w.once('exit', res))));
  }
});

test('nobody answers: answered() gives up instead of hanging', async () => {
  const r = new CpuReport(new SharedArrayBuffer(cpuReportBytes(1)), 0, 1);
  assert.equal(await r.answered(r.ask(), 1, 20), false);
});
