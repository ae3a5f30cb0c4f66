// A pooled multifdsend_N thread's warm-up (send-warm-up.ts): it sends its private guest's
// packets through the real SendChannel (so every shape of packet was built and written), with
// the CPU check or an emulated DSA's, stops when its thread is bound, and leaves no socket or
// server behind.

import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  WARM_UP_PACKET_PAGES,
  warmUpSendChannel,
} from '../../src/migration/source/send-warm-up.js';
import { DsaEmu } from '../../src/accel/dsa/emu/device.js';
import { openAccelerator } from '../../src/accel/driver.js';
import { pauseWarmUps } from '../../src/util/warm-up-gate.js';

/** TCP sockets and servers this thread holds, once those closing are gone (at most 2 s). */
async function tcpHandles(): Promise<string[]> {
  const tcp = (): string[] => process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP'));
  for (let i = 0; i < 200 && tcp().length > 0; i++) await sleep(10);
  return tcp();
}

test('the warm-up sends every pass of its private guest through the channel', async () => {
  const r = await warmUpSendChannel(() => false);
  assert.equal(r.stopped, false);
  // 80 passes of 1,024 pages in packets of 16: 60 of every page (64 packets), 20 of every
  // third page but the last five (337 pages, 22 packets, the last of one page); every eighth
  // page of each block's second half has data.
  assert.equal(r.packets, 60 * 64 + 20 * 22);
  assert.equal(r.normal + r.zero, 60 * 1024 + 20 * 337);
  assert.equal(r.normal, 60 * 64 + 20 * 21);
  assert.deepEqual(await tcpHandles(), []);
});

test('the warm-up stops at its next packet once its thread is bound', async () => {
  let asked = 0;
  const r = await warmUpSendChannel(() => ++asked > 100);
  assert.equal(r.stopped, true);
  assert.ok(r.packets > 0 && r.packets <= 100, `${r.packets} packets`);
  assert.deepEqual(await tcpHandles(), []);
});

test('the warm-up sends nothing while a migration of the process is under way', async () => {
  const resume = pauseWarmUps();
  try {
    const r = await warmUpSendChannel(() => false);
    assert.equal(r.stopped, true);
    assert.equal(r.packets, 0);
  } finally {
    resume();
  }
  assert.deepEqual(await tcpHandles(), []);
});

test('a warm-up bound before it connects sends nothing', async () => {
  const r = await warmUpSendChannel(() => true);
  assert.deepEqual({ packets: r.packets, stopped: r.stopped }, { packets: 0, stopped: true });
});

test('with an accelerator, the device checks the warm-up packets, and its verdicts are right', async () => {
  const emu = await DsaEmu.start();
  try {
    const accel = await openAccelerator(['dsa-emu:dsa0/wq0.0'], {
      devices: emu,
      maxPages: WARM_UP_PACKET_PAGES,
    });
    try {
      const r = await warmUpSendChannel(() => false, accel.handle);
      assert.equal(r.stopped, false);
      assert.equal(r.packets, 60 * 64 + 20 * 22);
      // The same split as the CPU check's: the verdicts came from the device.
      assert.equal(r.normal, 60 * 64 + 20 * 21);
      assert.equal(r.normal + r.zero, 60 * 1024 + 20 * 337);
      // The one-page packet of each dirty pass the device checks (10: the other 10 are the
      // legacy mode's, classified already) went as a lone descriptor, the rest in batches.
      const c = accel.counters();
      assert.ok(c.singleDescriptors >= 10, `${c.singleDescriptors} lone descriptors`);
      assert.ok(c.batches > 0, `${c.batches} batches`);
      const device = emu.devices[0].engineStats().reduce((n, e) => n + e.descriptors, 0);
      assert.ok(device > 1000, `${device} descriptors on the device`);
      assert.equal(
        emu.devices[0].engineStats().reduce((n, e) => n + e.errors + e.faults, 0),
        0,
      );
    } finally {
      await accel.close();
    }
  } finally {
    await emu.close();
  }
  assert.deepEqual(await tcpHandles(), []);
});
