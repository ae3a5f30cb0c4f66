// The emulated work queue ring on its own (dsa/emu/wq.ts): the shared-memory protocol between
// submitters and engines, driven directly in one thread and across worker threads.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { DESCRIPTOR_WORDS } from '../../src/accel/dsa/descriptor.js';
import {
  C_STATE,
  DevState,
  createRegisterFile,
  haltDevice,
  openRegisters,
  takeSwerr,
} from '../../src/accel/dsa/emu/registers.js';
import {
  GIVE_UP_MS,
  HeadWatch,
  SWERR_DWQ_FULL,
  W_DEAD,
  W_ENABLED,
  W_OCC,
  createRingBuffer,
  dequeue,
  enqcmd,
  giveUpStuckHead,
  movdir64b,
  occupancy,
  openRing,
  publishAt,
  resetRing,
  ringReady,
  takePosition,
} from '../../src/accel/dsa/emu/wq.js';
import { DsaEmu } from '../../src/accel/dsa/emu/device.js';
import { WqPortal } from './wq-portal.js';
import { noop } from './dsa-builders.js';
import { Flag, Status } from '../../src/accel/dsa/opcodes.js';
import { Dma } from './helpers.js';

function ring(size: number, limit: number, index = 3) {
  const registers = createRegisterFile();
  Atomics.store(openRegisters(registers).words, C_STATE, DevState.ENABLED);
  const sab = createRingBuffer(size, limit, index);
  new Int32Array(sab)[W_ENABLED] = 1;
  return { r: openRing(sab, registers), sab, registers };
}

/** A descriptor whose words are all `n` (opcode byte n & 0xff). */
const desc = (n: number) => new Int32Array(DESCRIPTOR_WORDS).fill(n);

test('descriptors come out whole and in order; occupancy counts the waiting ones', () => {
  const { r } = ring(4, 4);
  assert.equal(ringReady(r), false);
  for (let i = 1; i <= 3; i++) assert.ok(enqcmd(r, desc(i), 0));
  assert.equal(occupancy(r), 3);
  const out = new Int32Array(DESCRIPTOR_WORDS);
  for (let i = 1; i <= 3; i++) {
    assert.equal(dequeue(r, out, 0), i - 1, 'dispatch number');
    assert.deepEqual(out, desc(i));
  }
  assert.equal(dequeue(r, out, 0), -1);
  assert.equal(occupancy(r), 0);
});

test('ENQCMD is refused at the limit, and on a disabled WQ or a halted device', () => {
  const { r, sab, registers } = ring(4, 2);
  assert.ok(enqcmd(r, desc(1), 0));
  assert.ok(enqcmd(r, desc(2), 0));
  assert.equal(enqcmd(r, desc(3), 0), false, 'threshold 2');
  resetRing(r);
  assert.equal(occupancy(r), 0);
  new Int32Array(sab)[W_ENABLED] = 0;
  assert.equal(enqcmd(r, desc(1), 0), false, 'WQ disabled');
  new Int32Array(sab)[W_ENABLED] = 1;
  haltDevice(openRegisters(registers).words);
  assert.equal(enqcmd(r, desc(1), 0), false, 'device halted');
  assert.equal(occupancy(r), 0);
});

test('MOVDIR64B past a full dedicated WQ is dropped and recorded in SWERR', () => {
  const { r, registers } = ring(2, 2, 5);
  const w = openRegisters(registers).words;
  assert.ok(movdir64b(r, desc(0x04000000), 0));
  assert.ok(movdir64b(r, desc(0x04000000), 0));
  assert.equal(takeSwerr(w), undefined);
  assert.equal(movdir64b(r, desc(0x04000000), 0), false);
  const e = takeSwerr(w);
  assert.equal(e?.status, SWERR_DWQ_FULL);
  assert.equal(e?.opcode, 0x04, 'the dropped descriptor opcode');
  assert.equal(e?.wq, 5);
  haltDevice(w);
  assert.equal(movdir64b(r, desc(1), 0), false);
  assert.equal(takeSwerr(w), undefined, 'a halted device records nothing more');
});

test('submitters in several threads and one consumer: every descriptor arrives once', async () => {
  const { r, sab, registers } = ring(8, 8);
  const perWorker = 2000;
  const code = `
    const { workerData } = require('node:worker_threads');
    import(workerData.wq).then(({ enqcmd, openRing }) => {
      const r = openRing(workerData.sab, workerData.registers);
      const d = new Int32Array(16);
      for (let i = 0; i < workerData.n; i++) {
        d.fill(workerData.id * 1e6 + i);
        while (!enqcmd(r, d, 0)) {}
      }
    });`;
  const wqUrl = new URL('../../src/accel/dsa/emu/wq.js', import.meta.url).href;
  const workers = [1, 2].map(
    (id) =>
      new Worker(code, {
        eval: true,
        workerData: { wq: wqUrl, sab, registers, n: perWorker, id },
      }),
  );
  const seen = new Map<number, number>([
    [1, 0],
    [2, 0],
  ]);
  const out = new Int32Array(DESCRIPTOR_WORDS);
  const exited = Promise.all(workers.map((w) => new Promise((ok) => w.once('exit', ok))));
  for (let got = 0; got < 2 * perWorker;) {
    if (dequeue(r, out, 0) < 0) {
      await new Promise((ok) => setImmediate(ok));
      continue;
    }
    assert.ok(
      out.every((v) => v === out[0]),
      'a descriptor is never torn',
    );
    const id = Math.floor(out[0] / 1e6);
    assert.equal(out[0] % 1e6, seen.get(id), `thread ${id}'s descriptors in its order`);
    seen.set(id, seen.get(id)! + 1);
    got++;
  }
  await exited;
  assert.equal(dequeue(r, out, 0), -1);
});

/** A submitter's first half: the occupancy unit (as reserve() takes it) and a position. */
function takeWithoutPublishing(r: ReturnType<typeof ring>['r']): number {
  Atomics.add(r.words, W_OCC, 1);
  return takePosition(r);
}

test('an entry taken and never published is given up; the ring goes on, one slot smaller', () => {
  const { r } = ring(4, 4);
  takeWithoutPublishing(r); // position 0: its submitter was ended here
  for (let i = 1; i <= 2; i++) assert.ok(enqcmd(r, desc(i), 0));
  const out = new Int32Array(DESCRIPTOR_WORDS);
  assert.equal(dequeue(r, out, 0), -1, 'everything waits behind the unpublished entry');
  const watch = new HeadWatch();
  assert.equal(giveUpStuckHead(r, watch, 1000), GIVE_UP_MS, 'first seen now');
  assert.equal(giveUpStuckHead(r, watch, 1000 + GIVE_UP_MS - 1), 1);
  assert.equal(giveUpStuckHead(r, watch, 1000 + GIVE_UP_MS), 0, 'given up');
  assert.equal(Atomics.load(r.words, W_DEAD), 1);
  assert.equal(giveUpStuckHead(r, watch, 1e9), Infinity, 'nothing stuck any more');
  for (let i = 1; i <= 2; i++) {
    assert.ok(ringReady(r));
    assert.ok(dequeue(r, out, 0) >= 0);
    assert.deepEqual(out, desc(i), 'the later entries, in order');
  }
  assert.equal(occupancy(r), 0, "the dead submitter's unit came back");
  // Laps over the dead slot: 3 live slots are left, and the WQ takes no more than 3.
  for (let lap = 0; lap < 3; lap++) {
    for (let i = 0; i < 3; i++) assert.ok(enqcmd(r, desc(10 * lap + i), 0));
    assert.equal(enqcmd(r, desc(99), 0), false, 'one entry fewer while the slot is dead');
    for (let i = 0; i < 3; i++) {
      assert.ok(dequeue(r, out, 0) >= 0);
      assert.deepEqual(out, desc(10 * lap + i));
    }
    assert.equal(dequeue(r, out, 0), -1);
  }
  resetRing(r);
  assert.equal(Atomics.load(r.words, W_DEAD), 0);
  for (let i = 0; i < 4; i++) assert.ok(enqcmd(r, desc(i), 0), 'a reset brings the slot back');
});

test('a submitter slower than the give-up is told its entry was not accepted', () => {
  const { r } = ring(4, 4);
  const pos = takeWithoutPublishing(r);
  const watch = new HeadWatch();
  giveUpStuckHead(r, watch, 0);
  assert.equal(giveUpStuckHead(r, watch, GIVE_UP_MS), 0);
  assert.equal(publishAt(r, pos, desc(7), 0), false);
  const out = new Int32Array(DESCRIPTOR_WORDS);
  assert.equal(dequeue(r, out, 0), -1, 'its descriptor never runs');
  assert.ok(enqcmd(r, desc(8), 0), 'its retry goes in');
  assert.ok(dequeue(r, out, 0) >= 0);
  assert.deepEqual(out, desc(8));
});

test("a worker terminated in the middle of ENQCMD does not stop the device's engines", async () => {
  const emu = await DsaEmu.start({ engines: 1 });
  try {
    const device = emu.devices[0].handle;
    const wq = device.wqs[0];
    const code = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(workerData.wq).then(({ openRing, takePosition, W_OCC }) => {
        const r = openRing(workerData.ring, workerData.registers);
        Atomics.add(r.words, W_OCC, 1);
        takePosition(r);
        parentPort.postMessage('taken');
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0); // never publishes
      });`;
    const worker = new Worker(code, {
      eval: true,
      workerData: {
        wq: new URL('../../src/accel/dsa/emu/wq.js', import.meta.url).href,
        ring: wq.ring,
        registers: device.registers,
      },
    });
    await new Promise((ok) => worker.once('message', ok));
    await worker.terminate();
    const dma = new Dma(emu, 4096);
    const portal = new WqPortal(device, wq.name);
    for (let i = 0; i < 3; i++) {
      const rec = 64 * 8 + 32 * i;
      assert.ok(
        portal.enqcmd(
          dma.desc(64 * i, noop({ flags: Flag.CRAV | Flag.RCR, completionAddr: dma.addr(rec) })),
        ),
      );
    }
    for (let i = 0; i < 3; i++) {
      assert.equal((await dma.record(64 * 8 + 32 * i, 10 * GIVE_UP_MS)).code, Status.SUCCESS);
    }
    assert.equal(emu.devices[0].wqStats()[0].dead, 1);
  } finally {
    await emu.close();
  }
});
