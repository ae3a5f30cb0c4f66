// A kernel WQ's shared state words (src/accel/hw/wq-state.ts), what sysfs says about a halt
// (wq-monitor.ts sysfsHalt), and giving back a stopped WQ's slots and credits (slots.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  A_CREDITS,
  ArenaView,
  M_CREDITS,
  M_DEVICE,
  M_EPOCH,
  M_STATE,
  M_TARGET,
  SLOT_ABANDONED,
  SLOT_FREE,
  SLOT_SUBMITTED,
  arenaLayout,
} from '../../src/accel/arena.js';
import { DevState } from '../../src/accel/dsa/emu/registers.js';
import { reclaimStoppedSlots } from '../../src/accel/slots.js';
import { sysfsHalt } from '../../src/accel/hw/wq-monitor.js';
import {
  H_CAUSE,
  H_EPOCH,
  H_STATE,
  H_TROUBLE,
  HaltCause,
  haltReason,
  haltedWorkQueues,
  isHalted,
  markHalted,
  newWqState,
  noteTrouble,
  stopped,
  sysfsStateIndex,
} from '../../src/accel/hw/wq-state.js';

const Q = { text: 'dsa:/dev/dsa/wq0.0', device: 'dsa0', wq: 'wq0.0' };

test('a new WQ is enabled; the first halt owns the cause, later ones keep it', () => {
  const sab = newWqState();
  const w = new Int32Array(sab);
  assert.equal(w[H_STATE], DevState.ENABLED);
  assert.equal(isHalted(w), false);
  assert.equal(haltReason(w, Q), undefined);
  assert.deepEqual(haltedWorkQueues([{ ...Q, state: sab }]), {});
  noteTrouble(w);
  noteTrouble(w);
  assert.equal(w[H_TROUBLE], 2);
  assert.equal(markHalted(w, HaltCause.WQ_STATE, sysfsStateIndex('disabled\n')), true);
  assert.equal(markHalted(w, HaltCause.SUBMISSION, 0, 6), false, 'the cause is already set');
  assert.equal(w[H_CAUSE], HaltCause.WQ_STATE);
  assert.equal(isHalted(w), true);
  assert.equal(
    haltReason(w, Q),
    "work queue dsa0/wq0.0 halted: its sysfs state is 'disabled' (/sys/bus/dsa/devices/wq0.0/state); its pages are checked on the CPU",
  );
  assert.deepEqual(Object.keys(haltedWorkQueues([{ ...Q, state: sab }])['halted-work-queues']!), [
    Q.text,
  ]);
  stopped(w);
  assert.equal(w[H_EPOCH], 1);
});

test('each halt cause is explained', () => {
  const cases: [number, number, number, RegExp][] = [
    [HaltCause.SUBMISSION, 0, 6, /refused its descriptors \(ENXIO\)/],
    [HaltCause.DEVICE_STATE, sysfsStateIndex('halted'), 0, /device dsa0 is 'halted'/],
    [HaltCause.SYSFS_GONE, 0, 0, /sysfs entry \/sys\/bus\/dsa\/devices\/wq0.0 is gone/],
  ];
  for (const [cause, detail, errno, re] of cases) {
    const w = new Int32Array(newWqState());
    markHalted(w, cause as 1, detail, errno);
    assert.match(haltReason(w, Q)!, re);
  }
  assert.equal(sysfsStateIndex('something new'), sysfsStateIndex('unknown'));
});

test('sysfs decides: the WQ state, then the device state, then a missing entry', () => {
  const files = { wq: 'W', device: 'D' };
  const fs = (wq: string | undefined, dev: string | undefined) => (p: string) => {
    const v = p === 'W' ? wq : dev;
    if (v === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
    return `${v}\n`;
  };
  assert.equal(sysfsHalt(files, fs('enabled', 'enabled')), undefined);
  assert.deepEqual(sysfsHalt(files, fs('disabled', 'enabled')), {
    cause: HaltCause.WQ_STATE,
    detail: sysfsStateIndex('disabled'),
  });
  assert.deepEqual(sysfsHalt(files, fs('enabled', 'halted')), {
    cause: HaltCause.DEVICE_STATE,
    detail: sysfsStateIndex('halted'),
  });
  assert.deepEqual(sysfsHalt(files, fs(undefined, 'enabled')), {
    cause: HaltCause.SYSFS_GONE,
    detail: 0,
  });
});

test("a stopped WQ's abandoned slots are freed and their credits given back; others stay", () => {
  const layout = arenaLayout(4, 8, 1, 2);
  const a = new ArenaView(new SharedArrayBuffer(layout.totalBytes), layout);
  const w = a.i32;
  const states = [new Int32Array(newWqState()), new Int32Array(newWqState())];
  const devices = states.map((words) => ({ words }));
  w[A_CREDITS + 0] = 10;
  w[A_CREDITS + 1] = 10;
  // slot 0: WQ 0, abandoned with 3 credits; slot 1: WQ 1, abandoned with 2; slot 2: WQ 0, in
  // flight; slot 3: free.
  const put = (s: number, dev: number, st: number, credits: number) => {
    w[a.meta(s, M_DEVICE)] = dev;
    w[a.meta(s, M_TARGET)] = dev;
    w[a.meta(s, M_EPOCH)] = 0;
    w[a.meta(s, M_CREDITS)] = credits;
    w[a.meta(s, M_STATE)] = st;
  };
  put(0, 0, SLOT_ABANDONED, 3);
  put(1, 1, SLOT_ABANDONED, 2);
  put(2, 0, SLOT_SUBMITTED, 1);
  assert.equal(reclaimStoppedSlots(a, devices), 0, 'nothing stopped yet');
  stopped(states[0]);
  assert.equal(reclaimStoppedSlots(a, devices), 1);
  assert.equal(w[a.meta(0, M_STATE)], SLOT_FREE);
  assert.equal(w[a.meta(0, M_CREDITS)], 0);
  assert.equal(w[A_CREDITS + 0], 13);
  assert.equal(w[a.meta(1, M_STATE)], SLOT_ABANDONED, "the other WQ's slot waits");
  assert.equal(w[A_CREDITS + 1], 10);
  assert.equal(w[a.meta(2, M_STATE)], SLOT_SUBMITTED, 'an in-flight slot is its owner’s');
  assert.equal(reclaimStoppedSlots(a, devices), 0, 'once');
});
