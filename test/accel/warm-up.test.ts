// The emulated devices' warm-up: it runs real requests through every group's engines, leaves
// the device as it found it (queues empty, memory unregistered), and skips dedicated WQs,
// which belong to a single user.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DsaEmu } from '../../src/accel/dsa/emu/device.js';
import { openAccelerator } from '../../src/accel/driver.js';
import { warmUpEmulatedDevices } from '../../src/accel/warm-up.js';
import { devConf, eventually, expectedZeros, mixedBlock, wqConf } from './helpers.js';

function device(id: number, mode: 'shared' | 'dedicated') {
  const extra = mode === 'shared' ? {} : { mode, threshold: 0 };
  return devConf(id, [wqConf(id, 0, extra)], 2);
}

test('warm-up: shared WQs get requests through their engines; dedicated ones are left alone', async () => {
  const emu = await DsaEmu.start({ config: [device(0, 'shared'), device(1, 'dedicated')] });
  try {
    const rounds = 20;
    await warmUpEmulatedDevices(emu, rounds);
    const shared = emu.device('dsa0');
    const stats = shared.engineStats();
    const batches = stats.reduce((n, e) => n + e.batches, 0);
    assert.ok(batches >= rounds * 3, `${batches} batches for ${rounds} rounds of 3 requests`);
    assert.equal(
      stats.reduce((n, e) => n + e.errors + e.faults, 0),
      0,
      'no errors or faults',
    );
    assert.equal(shared.wqStats()[0].occupancy, 0);
    const dedicated = emu.device('dsa1');
    assert.equal(
      dedicated.engineStats().reduce((n, e) => n + e.descriptors, 0),
      0,
      'a dedicated WQ is not opened by the warm-up',
    );
    // Both devices are usable afterwards, the dedicated WQ too (its claim was never taken).
    for (const path of ['dsa-emu:dsa0/wq0.0', 'dsa-emu:dsa1/wq1.0']) {
      const accel = await openAccelerator([path], { devices: emu, maxPages: 128 });
      try {
        const block = mixedBlock(128, 5);
        const pages = Uint32Array.from({ length: 128 }, (_, i) => i);
        const r = new Uint8Array(128);
        await accel.zeroPages(block, pages, 128, r);
        assert.deepEqual(r, expectedZeros(block, pages, 128));
        assert.equal(accel.counters().pagesDevice, 128);
      } finally {
        await accel.close();
      }
    }
  } finally {
    await emu.close();
  }
});

test('warm-up: stopped, it ends after its current round and leaves the queues empty', async () => {
  const emu = await DsaEmu.start({ config: [device(0, 'shared')] });
  try {
    const dev = emu.device('dsa0');
    const batches = () => dev.engineStats().reduce((n, e) => n + e.batches, 0);
    const stop = new AbortController();
    // Far more rounds than a test could wait for: only the stop ends it.
    const done = warmUpEmulatedDevices(emu, 10_000_000, stop.signal);
    await eventually(() => batches() > 0, 'the first warm-up requests');
    stop.abort();
    await done;
    assert.equal(dev.wqStats()[0].occupancy, 0, 'every request it sent was taken');
  } finally {
    await emu.close();
  }
});
