// Orderly shutdown of the accelerator: a thread stops cooperatively with requests in flight,
// a thread ended in the middle does not make close() hang or lose counts, and an open that
// fails part-way gives back everything it took.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { DsaEmu } from '../../src/accel/dsa/emu/device.js';
import { IMS_ENTRIES, imsValid, openRegisters } from '../../src/accel/dsa/emu/registers.js';
import { openAccelerator } from '../../src/accel/driver.js';
import { devConf, expectedZeros, mixedBlock, wqConf } from './helpers.js';

let emu: DsaEmu;

before(async () => {
  emu = await DsaEmu.start({ config: [devConf(0, [wqConf(0, 0)], 1)] });
});

after(async () => {
  await emu.close();
});

/** Valid interrupt handles of dsa0. */
function imsInUse(): number {
  const regs = openRegisters(emu.handle.devices[0].registers).words;
  let n = 0;
  for (let h = 1; h < IMS_ENTRIES; h++) if (imsValid(regs, h)) n++;
  return n;
}

function startChannel(accel: { handle: unknown }, block: SharedArrayBuffer): Worker {
  return new Worker(new URL('./stopping-worker.js', import.meta.url), {
    workerData: { accel: accel.handle, block },
  });
}

test('a thread asked to stop mid-way finishes its requests in flight, then closes', async () => {
  const accel = await openAccelerator(['dsa-emu:dsa0/wq0.0'], { devices: emu });
  const block = mixedBlock(1024, 21);
  emu.device('dsa0').setEngineDelay(5_000); // requests are still in flight when asked to stop
  try {
    const t = startChannel(accel, block);
    await new Promise((r) => t.once('message', r));
    t.postMessage('stop');
    const m = await new Promise<{ results: Uint8Array; settled: number }>((r) =>
      t.once('message', r),
    );
    assert.equal(m.settled, 8);
    const all = Uint32Array.from({ length: 1024 }, (_, i) => i);
    assert.deepEqual(m.results, expectedZeros(block, all, 1024));
    await t.terminate();
    await accel.close();
    const c = accel.counters();
    assert.equal(c.pages, 1024, 'the closed task counts in the totals');
    assert.equal(c.pagesDevice + c.pagesCpu, 1024);
  } finally {
    emu.device('dsa0').setEngineDelay(0);
  }
});

test('a thread ended with a task open: close() completes, the counts stay, the entry is reused', async () => {
  const accel = await openAccelerator(['dsa-emu:dsa0/wq0.0'], { devices: emu });
  const block = mixedBlock(1024, 22);
  const t = startChannel(accel, block);
  await new Promise((r) => t.once('message', r));
  await t.terminate(); // in the middle: no stop()
  // This thread's tasks are unaffected, and retired tasks' counts add up.
  for (let k = 0; k < 3; k++) {
    const task = accel.createBatchTask(1, 128);
    const r = new Uint8Array(128);
    const p = Uint32Array.from({ length: 128 }, (_, i) => i);
    await task.zeroPages(block, p, 128, r);
    assert.deepEqual(r, expectedZeros(block, p, 128));
    assert.equal(task.counters().pages, 128, "a task's own counts, not its entry's history");
    task.close();
  }
  // More tasks than the table holds (128), one after another: closed entries are taken again.
  const one = new Uint8Array(1);
  for (let k = 0; k < 130; k++) {
    const task = accel.createBatchTask(1, 1);
    await task.zeroPages(block, Uint32Array.of(k), 1, one);
    assert.equal(task.counters().pages, 1);
    task.close();
  }
  // The ended thread's entry still counts the 1024 pages it asked for.
  assert.equal(accel.counters().pages, 1024 + 3 * 128 + 130);
  await accel.close(); // nothing to wait for that cannot end
  assert.equal(imsInUse(), 0, 'interrupt handles given back');
});

test('an open that fails part-way (interrupt handles run out) gives back what it took', async () => {
  const before = imsInUse();
  // 1024 slots need 1025 handles in direct mode; the device has 511.
  for (let k = 0; k < 3; k++) {
    await assert.rejects(
      openAccelerator(['dsa-emu:dsa0/wq0.0'], { devices: emu, slots: 1024, maxPages: 8 }),
      /interrupt message storage is full/,
    );
    assert.equal(imsInUse(), before, 'no interrupt handle leaked');
  }
  // Had the handles leaked, this one (501 of them) would not fit.
  const accel = await openAccelerator(['dsa-emu:dsa0/wq0.0'], {
    devices: emu,
    slots: 500,
    maxPages: 8,
  });
  assert.equal(imsInUse(), before + 501);
  await accel.close();
  assert.equal(imsInUse(), before);
});
