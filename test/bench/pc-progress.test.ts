// The guest's progress across a migration: the rate before, the shortest window of whole copies
// that contains the migration, the bench's own RAM check taken out, and the cp loop's command.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyLoopCommand, parseCpWorkload } from '../../src/bench/pc-guest.js';
import { KERNEL_FAULT } from '../../src/bench/pc-run.js';
import {
  COPY_LINE,
  progressAcross,
  progressPrecopy,
  rateWithin,
  steady,
  type Completion,
} from '../../src/bench/pc-progress.js';

/** Copies every `every` ms from n = first at time t0. */
function copies(first: number, count: number, t0: number, every: number): Completion[] {
  return Array.from({ length: count }, (_, i) => ({ n: first + i, t: t0 + i * every }));
}

test('rate within a window: between the first and last completion in it', () => {
  const cs = copies(1, 31, 0, 100); // 10 copies/s
  assert.deepEqual(rateWithin(cs, 0, 3000), { copies: 30, ms: 3000, rate: 10 });
  assert.deepEqual(rateWithin(cs, 1050, 2050), { copies: 9, ms: 900, rate: 10 });
  assert.equal(rateWithin(cs, 1050, 1120), null, 'one completion is no rate');
});

test('a guest that keeps its rate through the migration: ratio 1', () => {
  const src = copies(1, 40, 0, 100); // last at 3900
  const dst = copies(41, 20, 4000, 100);
  const before = rateWithin(src, 900, 3900)!;
  const p = progressAcross(src, dst, before, 3950, 3990, 0)!;
  assert.equal(p.duringCopies, 1);
  assert.equal(p.windowMs, 100);
  assert.equal(p.ratio, 1);
});

test('a guest stopped for 400 ms of a 500 ms window: ratio 0.25', () => {
  const src = copies(1, 40, 0, 100); // ... 39@3800, 40@3900
  // stopped from 3950 to 4350; copy 41 completes 400 ms late.
  const dst = [{ n: 41, t: 4400 }, ...copies(42, 5, 4500, 100)];
  const before = rateWithin(src, 900, 3900)!;
  const p = progressAcross(src, dst, before, 3920, 4350, 0)!;
  assert.equal(p.duringCopies, 1);
  assert.equal(p.windowMs, 500);
  assert.equal(p.ratio, 0.2);
  // The bench's own 300 ms RAM check comes out of the window.
  const q = progressAcross(src, dst, before, 3920, 4350, 300)!;
  assert.equal(q.excludedMs, 300);
  assert.equal(q.ratio, 0.5);
});

test("a line printed before the stop and delivered after it is not the destination's progress", () => {
  const src = copies(1, 40, 0, 100);
  // 40 is seen again on the destination's console (held in the UART), then 41 comes later.
  const dst = [
    { n: 40, t: 4010 },
    { n: 41, t: 4600 },
  ];
  const before = rateWithin(src, 900, 3900)!;
  const p = progressAcross(src, dst, before, 3950, 4000, 0)!;
  assert.equal(p.duringCopies, 1);
  assert.equal(p.windowMs, 700);
});

test('no progress figure without a copy on either side of the migration', () => {
  const src = copies(1, 40, 0, 100);
  const before = rateWithin(src, 900, 3900)!;
  assert.equal(progressAcross(src, [], before, 3950, 4000, 0), null);
  assert.equal(progressAcross([], copies(1, 3, 5000, 100), before, 3950, 4000, 0), null);
  assert.equal(
    progressAcross(src, copies(41, 3, 4000, 100), { ...before, rate: 0 }, 3950, 3990, 0),
    null,
  );
});

test("the cp loop: livemig-workload's cp, with a line per copy", () => {
  assert.deepEqual(parseCpWorkload('cp:8M'), { count: 8, blockSize: 1048576 });
  assert.deepEqual(parseCpWorkload('cp:512K'), { count: 512, blockSize: 1024 });
  for (const bad of ['cp:0M', 'cp:8G', 'cp:8', 'counter', 'cp:08M']) {
    assert.throws(() => parseCpWorkload(bad), /expected cp:SIZE with SIZE like 8M or 512K/, bad);
  }
  const cmd = copyLoopCommand('cp:8M');
  assert.match(cmd, /dd if=\/dev\/urandom of=\/tmp\/livemig-src bs=1048576 count=8/);
  assert.match(cmd, /cp \/tmp\/livemig-src \/tmp\/livemig-dst/);
  assert.match(cmd, /&$/);
  // The typed command, echoed back, must not look like a completed copy.
  assert.equal(COPY_LINE.test(cmd + '\r\n'), false);
  assert.equal(COPY_LINE.exec('lm-copy 12\r\n')?.[1], '12');
});

test('steady: two rates within a fraction of the larger', () => {
  assert.equal(steady(10, 9, 0.2), true);
  assert.equal(steady(10, 7.9, 0.2), false);
  assert.equal(steady(1, 10, 0.2), false, 'a guest still warming up is not steady');
  assert.equal(steady(0, 0, 0.2), false, 'no copies is not a rate');
});

test("a guest kernel's oops or panic is recognised on the console", () => {
  const oops =
    '[   13.1] BUG: kernel NULL pointer dereference, address: 00000000\r\n[   13.2] Oops: 0000 [#1]';
  assert.equal(
    KERNEL_FAULT.exec(oops)?.[0],
    'BUG: kernel NULL pointer dereference, address: 00000000',
  );
  const panic = 'x\r\n[ 13.128473] Kernel panic - not syncing: Fatal exception in interrupt\r\n';
  assert.equal(
    KERNEL_FAULT.exec(panic)?.[0],
    'Kernel panic - not syncing: Fatal exception in interrupt',
  );
  assert.equal(
    KERNEL_FAULT.exec('lm-copy 12\r\nlivemig# echo lm-alive-$((4+1))\r\nlm-alive-5\r\n'),
    null,
  );
});

test('precopy progress: whole copies when no copy completed before migrate or inside the window', () => {
  // 10 copies/s before; 250 ms of precopy would see 2.5 copies; 2 came, the first copy seen
  // is inside the window: whole copies, 80%.
  const src = [1100, 1200, 1300, 1400].map((t, n) => ({ n, t }));
  assert.deepEqual(progressPrecopy(src, { rate: 10 }, 1000, 1250), {
    precopyMs: 250,
    precopyCopies: 2,
    precopyRatio: 0.8,
  });
  // A guest that completed nothing in 300 ms: 0%, not "unknown".
  const stalled = [{ n: 0, t: 950 }];
  assert.equal(progressPrecopy(stalled, { rate: 10 }, 1000, 1300)?.precopyRatio, 0);
  assert.equal(progressPrecopy(src, { rate: 10 }, 1000, 1000), null, 'no window, no figure');
  assert.equal(progressPrecopy(src, { rate: 0 }, 1000, 1250), null, 'no rate before, no figure');
});

test('precopy progress counts the copy under way at migrate by the share left of it', () => {
  // 10 copies/s before (100 ms a copy), 8/s while migrated (125 ms): copy 0 completed at 950,
  // half of copy 1 was left at migrate (1000) and took 62.5 ms; copy 2 came at 1187.5, copy 3
  // (1312.5) after the stop (1300). Work: 2 copies less the half done before, in 187.5 ms: 8/s.
  const src = [950, 1062.5, 1187.5, 1312.5].map((t, n) => ({ n, t }));
  const p = progressPrecopy(src, { rate: 10 }, 1000, 1300);
  assert.deepEqual(p, {
    precopyMs: 300,
    precopyCopies: 2,
    precopyRatio: 0.8,
    precopyWork: 1.5,
    precopyWorkMs: 187.5,
  });
  // Whole copies over the whole window would have said 2 of 3: 67%.
  // A copy under way for longer than the rate before allows counts as done (no negative work).
  const slow = [{ n: 0, t: 700 }, ...[1050, 1150].map((t, i) => ({ n: i + 1, t }))];
  assert.equal(progressPrecopy(slow, { rate: 10 }, 1000, 1200)?.precopyWork, 1);
});
