// dsa_completion's estimate of how long a hardware request takes (completion-latency.ts), and
// the choice of its wait (completion-shared.ts chooseHwWait).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CompletionLatency } from '../../src/accel/hw/completion-latency.js';
import { chooseHwWait } from '../../src/accel/hw/completion-shared.js';

test('no sample: look soon, backing off; then sleep through 3/4 of what the mean request has left, and back off when late', () => {
  const l = new CompletionLatency(4);
  l.start(0, 100);
  assert.equal(l.sleepUs(0, 100), 5, 'nothing learnt yet: look soon');
  assert.equal(l.sleepUs(0, 101), 500, 'then back off as it waits');
  l.done(0, 102); // 2 ms
  assert.equal(l.meanMs, 2);
  l.start(1, 200);
  assert.equal(l.sleepUs(1, 200), 1500);
  assert.equal(l.sleepUs(1, 201), 750);
  assert.equal(l.sleepUs(1, 202.004), 5, 'just late: look soon');
  assert.equal(Math.round(l.sleepUs(1, 202.4)), 200, 'late: half as long as it has been late');
  assert.equal(l.sleepUs(1, 205), 1000, 'long late (a lost record): at most 1 ms');
  assert.equal(l.sleepUs(2, 205), 0, 'a slot not started');
  l.done(1, 210); // 10 ms: the mean moves by 1/8 of the difference
  assert.equal(l.meanMs, 3);
  l.start(2, 300);
  l.forget(2);
  l.done(2, 400);
  assert.equal(l.meanMs, 3, 'a halted request is no sample');
});

test('the wait: sleep by default; LIVEMIG_DSA_WAIT picks another, checked', () => {
  assert.equal(chooseHwWait(undefined, false), 'sleep');
  assert.equal(chooseHwWait('', true), 'sleep');
  assert.equal(chooseHwWait('pause', false), 'pause');
  assert.equal(chooseHwWait('umwait', true), 'umwait');
  assert.throws(() => chooseHwWait('umwait', false), /needs WAITPKG/);
  assert.throws(
    () => chooseHwWait('spin', true),
    /LIVEMIG_DSA_WAIT=spin is not a completion wait: use sleep, umwait, pause/,
  );
});
