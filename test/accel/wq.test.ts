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
  SWERR_DWQ_FULL,
  W_ENABLED,
  createRingBuffer,
  dequeue,
  enqcmd,
  movdir64b,
  occupancy,
  openRing,
  resetRing,
  ringReady,
} from '../../src/accel/dsa/emu/wq.js';

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
