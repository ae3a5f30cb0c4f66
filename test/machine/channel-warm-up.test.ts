// The channel threads' warm-up on the emulated DSA (channel-warm-up.ts): pooled multifdsend
// threads send their private guest's packets through the device, the accelerator opened for it
// is closed once they are done, and the threads are still there to be taken by a migration.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ChannelWarmUp } from '../../src/machine/channel-warm-up.js';
import { DsaEmu } from '../../src/accel/dsa/emu/device.js';
import { WorkerPool } from '../../src/util/worker-pool.js';
import { SEND_WORKER } from '../../src/migration/source/source-threads.js';

function deviceDescriptors(emu: DsaEmu): number {
  return emu.devices[0].engineStats().reduce((n, e) => n + e.descriptors, 0);
}

test('idle channel threads warm up on the device, then its accelerator is closed', async () => {
  const pool = new WorkerPool();
  const emu = await DsaEmu.start();
  try {
    pool.prespawn(SEND_WORKER, 2);
    let asked = 0;
    await new ChannelWarmUp().start(
      pool,
      async () => {
        asked++;
        return emu;
      },
      2,
    );
    assert.equal(asked, 1);
    // Two threads, each ~64,000 zero pages in runs and ~4,000 normal pages one by one.
    const n = deviceDescriptors(emu);
    assert.ok(n > 2 * 4000, `${n} descriptors on the device`);
    assert.equal(pool.idleCount(SEND_WORKER), 2, 'the threads are still idle, to be taken');
    // No request went wrong (a warm-up that failed would compile error paths).
    assert.equal(
      emu.devices[0].engineStats().reduce((e, s) => e + s.errors + s.faults, 0),
      0,
    );
  } finally {
    await pool.close();
    await emu.close();
  }
});

test('stop() ends the warm-ups early and closes the accelerator', async () => {
  const pool = new WorkerPool();
  const emu = await DsaEmu.start();
  try {
    pool.prespawn(SEND_WORKER, 2);
    const warmUp = new ChannelWarmUp();
    const closed = warmUp.start(pool, async () => emu, 2);
    await warmUp.stop();
    await closed;
    assert.equal(pool.idleCount(SEND_WORKER), 2);
  } finally {
    await pool.close();
    await emu.close();
  }
});

test('an accelerator that cannot be opened leaves the threads as they are', async () => {
  const pool = new WorkerPool();
  try {
    pool.prespawn(SEND_WORKER, 1);
    await new ChannelWarmUp().start(pool, () => Promise.reject(new Error('no such device')), 1);
    assert.equal(pool.idleCount(SEND_WORKER), 1);
  } finally {
    await pool.close();
  }
});
