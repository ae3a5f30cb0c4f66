// A pooled engine thread's warm-up: the driver's request shapes through a device of its own,
// every descriptor completed without error (a warm-up that failed would compile error paths).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { warmUpEngine } from '../../src/accel/dsa/emu/engine-warm-up.js';
import { DsaEmu, engineWorkerFile } from '../../src/accel/dsa/emu/device.js';
import { openAccelerator } from '../../src/accel/driver.js';
import { WorkerPool } from '../../src/util/worker-pool.js';
import { expectedZeros, mixedBlock } from './helpers.js';
import { pauseWarmUps } from '../../src/util/warm-up-gate.js';

test('engine warm-up: page batches, packet batches and single packets, all without error', () => {
  const rounds = 4;
  const c = warmUpEngine(rounds);
  assert.equal(c.batches, 2 * rounds, 'two BATCHes a round');
  // 128 page members + 2 packet members + 1 packet alone; a zero run counts each member.
  assert.equal(c.descriptors, rounds * (128 + 2 + 1));
  assert.equal(c.errors + c.faults, 0, 'no errors or faults');
  assert.equal(c.bytes > 0, true);
});

test('engine warm-up: no round while a migration of the process is under way', () => {
  const resume = pauseWarmUps();
  try {
    const c = warmUpEngine(4);
    assert.equal(c.descriptors, 0, 'it gave the cores to the migration');
  } finally {
    resume();
  }
  assert.equal(warmUpEngine(1).descriptors, 128 + 2 + 1, 'and runs again once it ended');
});

test('engines taken from a pool (warmed up there) run a device', async () => {
  const pool = new WorkerPool();
  pool.prespawn(engineWorkerFile(), 2);
  const emu = await DsaEmu.start({ engines: 2, threads: pool });
  try {
    assert.equal(pool.idleCount(engineWorkerFile()), 0, 'both engines came from the pool');
    const accel = await openAccelerator(['dsa-emu:dsa0/wq0.0'], { devices: emu, maxPages: 128 });
    try {
      const block = mixedBlock(128, 3);
      const pages = Uint32Array.from({ length: 128 }, (_, i) => i);
      const r = new Uint8Array(128);
      await accel.zeroPages(block, pages, 128, r);
      assert.deepEqual(r, expectedZeros(block, pages, 128));
      assert.equal(accel.counters().pagesDevice, 128);
    } finally {
      await accel.close();
    }
  } finally {
    await emu.close();
    await pool.close();
  }
});
