// The driver's shared memory (src/accel/arena.ts) and the slot protocol over it
// (src/accel/slots.ts, src/accel/credits.ts): header words that do not overlap, slot memory
// that is aligned as the device needs and disjoint between slots, and slots that go FREE ->
// BUSY -> SUBMITTED -> FREE or ABANDONED -> FREE with their credits coming back.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  A_COMP_IMS,
  A_COMPLETION_HANDLED,
  A_COMPLETION_RUNNING,
  A_CREDITS,
  A_IRQ,
  A_MAGIC,
  A_RR,
  A_SHUTDOWN,
  ArenaView,
  CPU_REPORT_BYTE,
  G_CLOSING,
  G_INSIDE,
  HEADER_WORDS,
  M_CREDITS,
  M_NSUB,
  M_STATE,
  M_WATCH,
  MAX_DEVICES,
  MAX_TARGETS,
  MAX_TASKS,
  SLOT_ABANDONED,
  SLOT_BUSY,
  SLOT_FREE,
  arenaLayout,
  type ArenaLayout,
} from '../../src/accel/arena.js';
import { A_HW_KICK, A_HW_SLEEPING } from '../../src/accel/hw/completion-shared.js';
import { cpuReportBytes } from '../../src/util/cpu-report.js';
import { COUNTER_FIELDS } from '../../src/accel/counters.js';
import {
  acquireSlot,
  reclaimStoppedSlots,
  releaseSlot,
  slotReclaimable,
  stampSlot,
} from '../../src/accel/slots.js';
import { giveCredits, takeCredits } from '../../src/accel/credits.js';
import { C_EPOCH } from '../../src/accel/dsa/emu/registers.js';

test('header words: each field has its own word, inside the header', () => {
  const used = new Map<number, string>();
  const claim = (name: string, from: number, count = 1): void => {
    for (let w = from; w < from + count; w++) {
      assert.ok(w >= 0 && w < HEADER_WORDS, `${name} word ${w} is outside the header`);
      assert.equal(used.get(w), undefined, `${name} and ${used.get(w)} share word ${w}`);
      used.set(w, name);
    }
  };
  claim('A_MAGIC', A_MAGIC);
  claim('A_SHUTDOWN', A_SHUTDOWN);
  claim('A_IRQ', A_IRQ);
  claim('A_RR', A_RR);
  claim('G_INSIDE', G_INSIDE);
  claim('G_CLOSING', G_CLOSING);
  claim('A_COMPLETION_HANDLED', A_COMPLETION_HANDLED);
  claim('A_COMPLETION_RUNNING', A_COMPLETION_RUNNING);
  claim('A_HW_SLEEPING', A_HW_SLEEPING);
  claim('A_HW_KICK', A_HW_KICK);
  assert.equal(CPU_REPORT_BYTE % 8, 0, 'the CPU report holds Float64s');
  claim('CPU report', CPU_REPORT_BYTE / 4, cpuReportBytes(1) / 4);
  claim('A_CREDITS', A_CREDITS, MAX_TARGETS);
  claim('A_COMP_IMS', A_COMP_IMS, MAX_DEVICES);
});

function assertLayout(l: ArenaLayout): void {
  const view = new ArenaView(new SharedArrayBuffer(l.totalBytes), l);
  // Task state words and counters come after the header and do not meet.
  assert.ok(l.taskStateWord >= HEADER_WORDS);
  assert.ok((l.taskStateWord + MAX_TASKS) * 4 <= l.taskCounters * 8);
  assert.ok((l.taskCounters + MAX_TASKS * COUNTER_FIELDS) * 8 <= l.slotMetaWord * 4);
  // A slot's metadata holds its watched records and one IMS handle per device.
  assert.ok(M_WATCH + l.maxSub <= l.slotImsOffset);
  assert.ok(l.slotImsOffset + l.devices <= l.slotMetaStride);
  assert.ok((l.slotMetaWord + l.slots * l.slotMetaStride) * 4 <= l.slotMemByte);
  let end = l.slotMemByte;
  for (let s = 0; s < l.slots; s++) {
    const first = view.descByte(s, 0);
    assert.equal(first, end, `slot ${s} starts where the previous one ends`);
    for (let i = 0; i < l.maxPages; i++) assert.equal(view.descByte(s, i) % 64, 0);
    assert.equal(view.recordByte(s, 0), view.descByte(s, l.maxPages - 1) + 64);
    for (let i = 0; i < l.maxPages; i++) assert.equal(view.recordByte(s, i) % 32, 0);
    assert.equal(view.batchRecordByte(s, 0), view.recordByte(s, l.maxPages - 1) + 32);
    const last = view.batchRecordByte(s, l.maxSub - 1) + 32;
    assert.ok(last <= first + l.slotMemStride, `slot ${s} overruns its stride`);
    end = first + l.slotMemStride;
  }
  assert.equal(end, l.totalBytes);
}

test('layout: aligned descriptors and records, slots disjoint, all inside the buffer', () => {
  assertLayout(arenaLayout(1, 1, 1, 1));
  assertLayout(arenaLayout(8, 128, 1, 2));
  assertLayout(arenaLayout(5, 1024, 8, 3));
  assertLayout(arenaLayout(3, 7, 3, 64));
});

function arena(slots: number): { a: ArenaView; device: { words: Int32Array } } {
  const l = arenaLayout(slots, 4, 2, 1);
  const a = new ArenaView(new SharedArrayBuffer(l.totalBytes), l);
  return { a, device: { words: new Int32Array(C_EPOCH + 1) } };
}

test('slots: taken once each, given back FREE, ABANDONED ones come back when the device is done', () => {
  const { a, device } = arena(2);
  const devices = [device];
  const s0 = acquireSlot(a, devices, 0);
  const s1 = acquireSlot(a, devices, 0);
  assert.deepEqual([s0, s1].sort(), [0, 1]);
  assert.equal(acquireSlot(a, devices, 0), -1, 'no third slot');
  assert.equal(a.i32[a.meta(s0, M_STATE)], SLOT_BUSY);

  // s0: one watched record, not written yet; abandoned at its deadline.
  stampSlot(a, s0, 0, 0, 0);
  const rec = a.recordByte(s0, 0) / 4;
  a.i32[a.meta(s0, M_WATCH)] = rec;
  Atomics.store(a.i32, a.meta(s0, M_NSUB), 1);
  releaseSlot(a, s0, false);
  assert.equal(a.i32[a.meta(s0, M_STATE)], SLOT_ABANDONED);
  assert.equal(slotReclaimable(a, devices, s0), false, 'the device may still write the record');
  assert.equal(acquireSlot(a, devices, s0), -1, 'an abandoned slot is not handed out early');
  // The device writes the record's status: the slot may be taken again.
  Atomics.store(a.i32, rec, 1);
  assert.equal(slotReclaimable(a, devices, s0), true);
  assert.equal(acquireSlot(a, devices, s0), s0);

  releaseSlot(a, s1, true);
  assert.equal(a.i32[a.meta(s1, M_STATE)], SLOT_FREE);
});

test('slots: a WQ that stopped (epoch moved on) frees its abandoned slots and their credits', () => {
  const { a, device } = arena(1);
  const devices = [device];
  const target = 3;
  giveCredits(a.i32, target, 8);
  const s = acquireSlot(a, devices, 0);
  stampSlot(a, s, target, 0, Atomics.load(device.words, C_EPOCH));
  const took = takeCredits(a.i32, target, 5);
  assert.equal(took, 5);
  assert.equal(takeCredits(a.i32, target, 5), 3, 'only what is left');
  giveCredits(a.i32, target, 3);
  Atomics.add(a.i32, a.meta(s, M_CREDITS), took);
  a.i32[a.meta(s, M_WATCH)] = a.recordByte(s, 0) / 4;
  Atomics.store(a.i32, a.meta(s, M_NSUB), 1);
  releaseSlot(a, s, false);
  assert.equal(reclaimStoppedSlots(a, devices), 0, 'the WQ is still running');
  assert.equal(a.i32[A_CREDITS + target], 3, 'the slot still holds 5 credits');
  Atomics.add(device.words, C_EPOCH, 1); // the WQ was disabled or reset
  assert.equal(reclaimStoppedSlots(a, devices), 1);
  assert.equal(a.i32[a.meta(s, M_STATE)], SLOT_FREE);
  assert.equal(a.i32[a.meta(s, M_CREDITS)], 0);
  assert.equal(a.i32[A_CREDITS + target], 8, 'every credit is back');
});
