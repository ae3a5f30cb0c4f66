// The emulated device's register file on its own (dsa/emu/registers.ts): SWERR, IMS entries,
// halts and doorbells, as the words other threads see them.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  C_DOORBELL,
  C_HALT_GEN,
  C_SLEEPERS,
  C_STATE,
  DevState,
  E_ERRORS,
  IMS_ENTRIES,
  IMS_MISC,
  MAX_ENGINES,
  addEngineStat,
  allocIms,
  createRegisterFile,
  engineCounts,
  freeIms,
  haltDevice,
  imsAddrHi,
  imsAddrLo,
  imsValid,
  miscImsHandles,
  openRegisters,
  recordSwerr,
  ringDoorbell,
  takeSwerr,
} from '../../src/accel/dsa/emu/registers.js';

const words = () => openRegisters(createRegisterFile()).words;

test('SWERR keeps the first error; later ones only count as overflow until it is read', () => {
  const w = words();
  assert.equal(takeSwerr(w), undefined);
  recordSwerr(w, 0x1b, 0x06, 2, 0x1000, 0x20);
  recordSwerr(w, 0x1a, 0x03, 1, 0, 0);
  recordSwerr(w, 0x1a, 0x03, 1, 0, 0);
  assert.deepEqual(takeSwerr(w), {
    ...{ status: 0x1b, opcode: 0x06, wq: 2 },
    ...{ addrLo: 0x1000, addrHi: 0x20, overflow: 2 },
  });
  assert.equal(takeSwerr(w), undefined, 'reading clears it');
  recordSwerr(w, 0x1a, 0x03, 1, 0xffffffff | 0, 0);
  assert.equal(takeSwerr(w)?.addrLo, 0xffffffff, 'addresses read back unsigned');
});

test('IMS entries: allocated valid with their address, freed, reused; the table can fill', () => {
  const w = words();
  const a = allocIms(w, 0x40, 0x1001, 0);
  const b = allocIms(w, 0x80, 0x1001, IMS_MISC);
  assert.notEqual(a, b);
  assert.ok(a > 0, 'handle 0 is never given out');
  assert.ok(imsValid(w, a) && imsValid(w, b));
  assert.deepEqual([imsAddrLo(w, b), imsAddrHi(w, b)], [0x80, 0x1001]);
  assert.deepEqual(miscImsHandles(w), [b]);
  freeIms(w, a);
  assert.equal(imsValid(w, a), false);
  assert.equal(allocIms(w, 0, 0, 0), a, 'a freed entry is reused');
  assert.equal(imsValid(w, 0), false);
  assert.equal(imsValid(w, IMS_ENTRIES), false);
  for (let i = 3; i < IMS_ENTRIES; i++) allocIms(w, 0, 0, 0);
  assert.throws(() => allocIms(w, 0, 0, 0), /interrupt message storage is full/);
});

test('a halt bumps the generation before the state, once; doorbells count rings', () => {
  const w = words();
  Atomics.store(w, C_STATE, DevState.ENABLED);
  assert.equal(haltDevice(w), true);
  assert.equal(Atomics.load(w, C_STATE), DevState.HALTED);
  assert.equal(Atomics.load(w, C_HALT_GEN), 1);
  assert.equal(Atomics.load(w, C_DOORBELL + 3), 1, 'every group is woken');
  assert.equal(haltDevice(w), false, 'already halted');
  assert.equal(Atomics.load(w, C_HALT_GEN), 1);
  Atomics.store(w, C_SLEEPERS + 1, 1);
  ringDoorbell(w, 1);
  ringDoorbell(w, 1);
  assert.equal(Atomics.load(w, C_DOORBELL + 1), 3);
  assert.equal(Atomics.load(w, C_DOORBELL + 0), 1, 'other groups are left alone');
});

test("the engines' CPU report is the thread-CPU report, in the register file, beside the stats", () => {
  const file = createRegisterFile();
  const reader = openRegisters(file);
  const engine = openRegisters(file); // another thread's view of the same memory
  addEngineStat(engine, MAX_ENGINES - 1, E_ERRORS, 7);
  let seen = engine.cpu.requests();
  const before = reader.cpu.ask();
  seen = engine.cpu.answer(MAX_ENGINES - 1, seen, () => 12.5);
  assert.equal(reader.cpu.read(MAX_ENGINES - 1), 12.5);
  assert.equal(engineCounts(reader, MAX_ENGINES - 1).errors, 7, 'the report overlaps no stat');
  assert.equal(
    engine.cpu.answer(MAX_ENGINES - 1, seen, () => 99),
    seen,
    'answered once',
  );
  assert.equal(reader.cpu.read(MAX_ENGINES - 1), 12.5);
  return reader.cpu.answered(before, 1, 1000).then((ok) => assert.ok(ok));
});
