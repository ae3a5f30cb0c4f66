// The submit gate (src/accel/submit-gate.ts) between real threads: the closer waits for a
// submitter inside, a submitter that comes after the close is turned away, and a submitter
// ended inside makes closeGate give up (false) instead of hanging.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { G_CLOSING, G_INSIDE, HEADER_WORDS } from '../../src/accel/arena.js';
import { closeGate, enterGate, leaveGate } from '../../src/accel/submit-gate.js';

/** A thread that enters the gate, reports, then waits for word 200 before it leaves. */
const INSIDE_THEN_LEAVE = `
const { workerData, parentPort } = require('node:worker_threads');
const w = new Int32Array(workerData);
Atomics.add(w, ${G_INSIDE}, 1);
const ok = Atomics.load(w, ${G_CLOSING}) === 0;
parentPort.postMessage(ok);
Atomics.wait(w, 200, 0);
Atomics.sub(w, ${G_INSIDE}, 1);
Atomics.notify(w, ${G_INSIDE});
`;

function words(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(HEADER_WORDS * 4));
}

test('one thread: enter and leave balance; after closeGate nobody enters', async () => {
  const w = words();
  assert.equal(enterGate(w), true);
  assert.equal(enterGate(w), true);
  assert.equal(Atomics.load(w, G_INSIDE), 2);
  leaveGate(w);
  leaveGate(w);
  assert.equal(await closeGate(w, 1000), true);
  assert.equal(enterGate(w), false, 'closing: the request goes to the CPU');
  assert.equal(Atomics.load(w, G_INSIDE), 0, 'a turned-away submitter took its count back');
});

test('the closer waits for a submitter inside another thread until it leaves', async () => {
  const w = words();
  const t = new Worker(INSIDE_THEN_LEAVE, { eval: true, workerData: w.buffer });
  // Listened for from the start: the thread may be gone before the last await below returns.
  const exited = new Promise((r) => t.once('exit', r));
  assert.equal(await new Promise((r) => t.once('message', r)), true);
  let closed = false;
  const closing = closeGate(w, 60_000).then((v) => ((closed = true), v));
  await new Promise((r) => setImmediate(r));
  assert.equal(closed, false, 'still inside');
  assert.equal(Atomics.load(w, G_CLOSING), 1);
  Atomics.store(w, 200, 1);
  Atomics.notify(w, 200);
  assert.equal(await closing, true);
  assert.equal(Atomics.load(w, G_INSIDE), 0);
  await exited;
});

test('a submitter ended inside: closeGate gives up (false) instead of hanging', async () => {
  const w = words();
  const t = new Worker(INSIDE_THEN_LEAVE, { eval: true, workerData: w.buffer });
  await new Promise((r) => t.once('message', r));
  await t.terminate();
  assert.equal(Atomics.load(w, G_INSIDE), 1, 'the count it left behind');
  assert.equal(await closeGate(w, 50), false);
});
