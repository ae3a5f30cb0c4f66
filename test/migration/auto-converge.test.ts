// The auto-converge arithmetic on its own (QEMU's: migration/ram.c, mig_throttle_guest_down).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AutoConverge,
  autoConvergeParams,
  type AutoConvergeParams,
} from '../../src/migration/source/auto-converge.js';
import { LIVE } from '../../src/migration/source/channel-slots.js';

const QEMU: AutoConvergeParams = {
  enabled: true,
  initial: 20,
  increment: 10,
  max: 99,
  tailslow: false,
  trigger: 50,
};

test('two passes over the trigger start the throttle, then each second one adds the increment', () => {
  const ac = new AutoConverge();
  let t = 0;
  // 600 of 1000 bytes dirtied: over 50 %.
  t = ac.next(QEMU, t, 600, 1000);
  assert.equal(t, 0, 'one pass over is not enough');
  t = ac.next(QEMU, t, 600, 1000);
  assert.equal(t, 20, 'the second: cpu-throttle-initial');
  t = ac.next(QEMU, t, 600, 1000);
  assert.equal(t, 20, 'the count starts again');
  t = ac.next(QEMU, t, 600, 1000);
  assert.equal(t, 30, '+ cpu-throttle-increment');
});

test('a pass at or under the trigger leaves the throttle where it is', () => {
  const ac = new AutoConverge();
  for (let i = 0; i < 5; i++) assert.equal(ac.next(QEMU, 40, 500, 1000), 40);
});

test('the throttle stops at max-cpu-throttle, and off means never', () => {
  const ac = new AutoConverge();
  let t = 90;
  for (let i = 0; i < 6; i++) t = ac.next(QEMU, t, 900, 1000);
  assert.equal(t, 99);
  const off = new AutoConverge();
  for (let i = 0; i < 4; i++) assert.equal(off.next({ ...QEMU, enabled: false }, 0, 900, 1000), 0);
  assert.equal(new AutoConverge().next({ ...QEMU, max: 10 }, 0, 900, 1000), 0);
  const capped = new AutoConverge();
  capped.next({ ...QEMU, max: 10 }, 0, 900, 1000);
  assert.equal(capped.next({ ...QEMU, max: 10 }, 0, 900, 1000), 10, 'initial is capped too');
});

test('tailslow takes only what should bring the dirty rate down to the link', () => {
  const p = { ...QEMU, tailslow: true, increment: 30 };
  const ac = new AutoConverge();
  // Throttle 40 %: the vCPU has 60 %. 1000 bytes sent, threshold 500, 600 dirtied: the ideal CPU
  // is 60 * 500 / 600 = 50 %, so the step is 10 (not the increment's 30).
  ac.next(p, 40, 600, 1000);
  assert.equal(ac.next(p, 40, 600, 1000), 50);
  // Far over: the increment bounds the step.
  ac.next(p, 40, 100_000, 1000);
  assert.equal(ac.next(p, 40, 100_000, 1000), 70);
  // Just over: at least 1.
  ac.next(p, 40, 501, 1000);
  assert.equal(ac.next(p, 40, 501, 1000), 41);
});

test('the parameters are read from the LIVE words', () => {
  const live = new Float64Array(LIVE.size);
  live[LIVE.autoConverge] = 1;
  live[LIVE.throttleInitial] = 5;
  live[LIVE.throttleIncrement] = 7;
  live[LIVE.throttleMax] = 60;
  live[LIVE.throttleTailslow] = 1;
  live[LIVE.throttleTrigger] = 30;
  assert.deepEqual(autoConvergeParams(live), {
    enabled: true,
    initial: 5,
    increment: 7,
    max: 60,
    tailslow: true,
    trigger: 30,
  });
});
