// The emulated device on its own: hand-built descriptors submitted to its work queues, executed
// by real engine worker threads, checked through the completion records they write.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DsaEmu, type EmulatedDevice } from '../../src/accel/dsa/emu/device.js';
import { WqPortal } from './wq-portal.js';
import { SWERR_DWQ_FULL } from '../../src/accel/dsa/emu/wq.js';
import { Flag, Opcode, Status } from '../../src/accel/dsa/opcodes.js';
import {
  batch,
  compare,
  compval,
  drain,
  encodeDescriptor,
  memfill,
  memmove,
  noop,
} from './dsa-builders.js';
import { Dma, eventually, isZero } from './helpers.js';

const F = Flag.CRAV | Flag.RCR;
const MiB = 1024 * 1024;

// dsa0: one engine, two shared WQs weighted 6:2, a small-transfer WQ's limits on wq0.1,
// and a dedicated WQ. dsa2: the built-in WQ shape (max_batch_size 1024, 2 MiB transfers).
const CONFIG = [
  {
    dev: 'dsa0',
    groups: [
      {
        dev: 'group0.0',
        grouped_workqueues: [
          {
            dev: 'wq0.0',
            mode: 'shared',
            size: 16,
            group_id: 0,
            priority: 6,
            max_batch_size: 32,
            max_transfer_size: 2 * MiB,
            type: 'user',
            name: 't',
            threshold: 16,
          },
          {
            dev: 'wq0.1',
            mode: 'shared',
            size: 8,
            group_id: 0,
            priority: 2,
            max_batch_size: 32,
            max_transfer_size: 4096,
            type: 'user',
            name: 't',
            threshold: 8,
          },
          {
            dev: 'wq0.2',
            mode: 'dedicated',
            size: 4,
            group_id: 0,
            priority: 1,
            max_batch_size: 32,
            max_transfer_size: 2 * MiB,
            type: 'user',
            name: 't',
          },
        ],
        grouped_engines: [{ dev: 'engine0.0', group_id: 0 }],
      },
    ],
  },
  {
    dev: 'dsa2',
    groups: [
      {
        dev: 'group2.0',
        grouped_workqueues: [
          {
            dev: 'wq2.0',
            mode: 'shared',
            size: 128,
            group_id: 0,
            priority: 10,
            max_batch_size: 1024,
            max_transfer_size: 2 * MiB,
            type: 'user',
            name: 't',
            threshold: 128,
          },
        ],
        grouped_engines: [{ dev: 'engine2.0', group_id: 0 }],
      },
    ],
  },
];

// Layout of the DMA buffer.
const DATA = 0; // 4 MiB of data
const DESCS = 4 * MiB; // up to 1025 descriptors
const RECS = DESCS + 128 * 1024; // up to 1025 records
const MISC = RECS + 64 * 1024; // stand-alone records
const DMA_SIZE = MISC + 64 * 1024;

let emu: DsaEmu;
let dsa0: EmulatedDevice;
let dsa2: EmulatedDevice;
let dma: Dma;
let wq00: WqPortal;
let wq01: WqPortal;
let wq02: WqPortal;
let wq20: WqPortal;

before(async () => {
  emu = await DsaEmu.start({ config: CONFIG });
  dsa0 = emu.device('dsa0');
  dsa2 = emu.device('dsa2');
  dma = new Dma(emu, DMA_SIZE);
  wq00 = new WqPortal(dsa0.handle, 'wq0.0');
  wq01 = new WqPortal(dsa0.handle, 'wq0.1');
  wq02 = new WqPortal(dsa0.handle, 'wq0.2');
  wq20 = new WqPortal(dsa2.handle, 'wq2.0');
});

after(async () => {
  await emu.close();
});

/** Submit one stand-alone descriptor (record at MISC) and wait for its record. */
async function run(portal: WqPortal, d: Parameters<typeof encodeDescriptor>[2], rec = MISC) {
  dma.clearRecord(rec);
  assert.ok(
    portal.submit(dma.desc(MISC + 1024, { ...d, completionAddr: dma.addr(rec) })),
    'submitted',
  );
  return dma.record(rec);
}

test('engines run as worker threads named after the device', () => {
  assert.deepEqual(
    emu.devices.flatMap((d) => d.handle.engines.map((e) => e.threadName)),
    ['dsa0/engine0.0', 'dsa2/engine2.0'],
  );
  assert.equal(dsa0.state, 'enabled');
});

describe('COMPVAL agrees with the CPU', () => {
  const sizes = [16, 24, 100, 4096, 65536, 2 * MiB];
  for (const size of sizes) {
    test(`${size} bytes: zero, non-zero, and one byte set first, last, in the middle`, async () => {
      const u8 = dma.u8;
      const cases: { name: string; set: (() => void) | null; diff: number }[] = [
        { name: 'zero', set: null, diff: -1 },
        { name: 'all 0xff', set: () => u8.fill(0xff, DATA, DATA + size), diff: 0 },
        { name: 'first byte', set: () => (u8[DATA] = 1), diff: 0 },
        { name: 'last byte', set: () => (u8[DATA + size - 1] = 0x80), diff: size - 1 },
        { name: 'middle', set: () => (u8[DATA + (size >> 1) + 3] = 7), diff: (size >> 1) + 3 },
      ];
      for (const c of cases) {
        u8.fill(0, DATA, DATA + size);
        c.set?.();
        const cpuZero = isZero(u8, DATA, size);
        const r = await run(wq20, compval({ src: dma.addr(DATA), size, flags: F }));
        assert.equal(r.code, Status.SUCCESS, c.name);
        assert.equal(r.result, cpuZero ? 0 : 1, `${c.name}: result`);
        if (!cpuZero) {
          // The start of the first mismatching 8-byte word; exact in the tail below 8 bytes.
          const tail = size - (size % 8);
          const expected = c.diff >= tail ? c.diff : c.diff - (c.diff % 8);
          assert.equal(r.bytesCompleted, expected, `${c.name}: bytes_completed`);
        }
      }
      u8.fill(0, DATA, DATA + size);
    });
  }

  test('a non-zero pattern, filled by MEMFILL (pattern at byte 16, destination at 24)', async () => {
    const pattern = 0x0102_0304_0506_0708n;
    const fill = await run(
      wq20,
      memfill({ pattern, dst: dma.addr(DATA + 8), size: 4096, flags: F }),
    );
    assert.equal(fill.code, Status.SUCCESS);
    assert.deepEqual([...dma.u8.subarray(DATA + 8, DATA + 16)], [8, 7, 6, 5, 4, 3, 2, 1]);
    const same = await run(
      wq20,
      compval({ src: dma.addr(DATA + 8), pattern, size: 4096, flags: F }),
    );
    assert.equal(same.result, 0);
    dma.u8[DATA + 8 + 4000] ^= 0xff;
    const differs = await run(
      wq20,
      compval({ src: dma.addr(DATA + 8), pattern, size: 4096, flags: F }),
    );
    assert.equal(differs.result, 1);
    assert.equal(differs.bytesCompleted, 4000);
    dma.u8.fill(0, DATA, DATA + 8192);
  });

  test('CR flag: result different from expected_res gives SUCCESS_PRED', async () => {
    dma.u8[DATA + 5] = 1;
    const r = await run(
      wq20,
      compval({ src: dma.addr(DATA), size: 64, flags: F | Flag.CR, expectedRes: 0 }),
    );
    assert.equal(r.code, Status.SUCCESS_PRED);
    const r2 = await run(
      wq20,
      compval({ src: dma.addr(DATA), size: 64, flags: F | Flag.CR, expectedRes: 1 }),
    );
    assert.equal(r2.code, Status.SUCCESS);
    dma.u8[DATA + 5] = 0;
  });
});

/** Build a batch of `n` COMPVAL members over consecutive pages; odd pages get a byte. */
function buildBatch(n: number, opts: { memberOp?: (i: number) => number } = {}) {
  dma.u8.fill(0, DATA, DATA + Math.min(n, 1024) * 4096);
  for (let i = 0; i < Math.min(n, 1024); i++) if (i % 2) dma.u8[DATA + i * 4096 + (i % 4096)] = 1;
  for (let i = 0; i < n; i++) {
    const op = opts.memberOp?.(i) ?? Opcode.COMPVAL;
    encodeDescriptor(dma.u8, DESCS + i * 64, {
      opcode: op,
      flags: F,
      completionAddr: dma.addr(RECS + i * 32),
      addr16: dma.addr(DATA + (i % 1024) * 4096),
      size: op === Opcode.COMPVAL ? 4096 : 0,
    });
    dma.clearRecord(RECS + i * 32);
  }
}

async function runBatch(portal: WqPortal, n: number, listOff = DESCS) {
  return run(portal, batch({ descListAddr: dma.addr(listOff), count: n, flags: F }));
}

describe('BATCH', () => {
  for (const n of [2, 3, 64, 1023, 1024]) {
    test(`${n} members: a record per member and descs_completed = ${n}`, async () => {
      buildBatch(n);
      const r = await runBatch(wq20, n);
      assert.equal(r.code, Status.SUCCESS);
      assert.equal(r.bytesCompleted, n, 'descs_completed');
      for (let i = 0; i < n; i++) {
        const status = dma.status(RECS + i * 32);
        assert.equal(status, Status.SUCCESS, `member ${i}`);
        assert.equal(dma.u8[RECS + i * 32 + 1], i % 2, `member ${i} result`);
      }
    });
  }

  test('every size from 2 to the WQ maximum (32) completes; 33 and 1 are refused', async () => {
    for (let n = 2; n <= 32; n++) {
      buildBatch(n);
      const r = await runBatch(wq00, n);
      assert.equal(r.code, Status.SUCCESS, `size ${n}`);
      assert.equal(r.bytesCompleted, n);
      assert.equal(dma.u8[RECS + (n - 1) * 32 + 1], (n - 1) % 2);
    }
    buildBatch(33);
    assert.equal((await runBatch(wq00, 33)).code, Status.DESC_CNT_ERANGE);
    assert.equal(dma.status(RECS), 0, 'no member ran');
    assert.equal((await runBatch(wq00, 1)).code, Status.DESC_CNT_ERANGE);
    buildBatch(1025);
    assert.equal((await runBatch(wq20, 1025)).code, Status.DESC_CNT_ERANGE);
  });

  test('BATCH or DRAIN inside a batch fail that member (BAD_OPCODE) and the batch (BATCH_FAIL)', async () => {
    for (const bad of [Opcode.BATCH, Opcode.DRAIN]) {
      buildBatch(4, { memberOp: (i) => (i === 2 ? bad : Opcode.COMPVAL) });
      const r = await runBatch(wq00, 4);
      assert.equal(r.code, Status.BATCH_FAIL);
      assert.equal(r.result, 1);
      assert.equal(r.bytesCompleted, 4, 'the other members still ran');
      assert.equal(dma.status(RECS + 2 * 32), Status.BAD_OPCODE);
      assert.equal(dma.status(RECS + 3 * 32), Status.SUCCESS);
    }
  });

  test('a FENCE after a failed member stops the batch', async () => {
    buildBatch(4, { memberOp: (i) => (i === 1 ? 0x7e : Opcode.COMPVAL) });
    const d = new DataView(dma.sab);
    d.setUint8(DESCS + 2 * 64 + 4, F | Flag.FENCE);
    const r = await runBatch(wq00, 4);
    assert.equal(r.code, Status.BATCH_FAIL);
    assert.equal(r.bytesCompleted, 2);
    assert.equal(dma.status(RECS + 2 * 32), 0, 'the fenced member did not run');
  });

  test('a descriptor list not 64-byte aligned gives DESCLIST_ALIGN', async () => {
    buildBatch(4);
    assert.equal((await runBatch(wq00, 2, DESCS + 32)).code, Status.DESCLIST_ALIGN);
  });
});

describe('invalid requests get the hardware codes', () => {
  test('unknown opcode → BAD_OPCODE', async () => {
    assert.equal((await run(wq00, { opcode: 0x7e, flags: F })).code, Status.BAD_OPCODE);
  });

  test('xfer_size over the WQ max_transfer_size → XFER_ERANGE', async () => {
    const r = await run(wq01, compval({ src: dma.addr(DATA), size: 8192, flags: F }));
    assert.equal(r.code, Status.XFER_ERANGE);
    assert.equal(
      (await run(wq01, compval({ src: dma.addr(DATA), size: 4096, flags: F }))).code,
      Status.SUCCESS,
    );
  });

  test('an operation-specific flag the operation lacks → INVALID_FLAGS with invalid_flags', async () => {
    const r = await run(wq00, compval({ src: dma.addr(DATA), size: 64, flags: F | 0x10000 }));
    assert.equal(r.code, Status.INVALID_FLAGS);
    assert.equal(r.invalidFlags, 0x10000);
  });

  test('a completion record not 32-byte aligned → no record, CRA_ALIGN in SWERR', async () => {
    dsa0.takeSoftwareError();
    dma.u8.fill(0, MISC, MISC + 64);
    assert.ok(
      wq00.submit(dma.desc(MISC + 1024, noop({ flags: F, completionAddr: dma.addr(MISC + 8) }))),
    );
    await eventually(() => Atomics.load(new Int32Array(dsa0.handle.registers), 8) === 1, 'SWERR');
    const e = dsa0.takeSoftwareError()!;
    assert.equal(e.status, Status.CRA_ALIGN);
    assert.equal(e.opcode, Opcode.NOOP);
    assert.ok(
      dma.u8.subarray(MISC, MISC + 64).every((b) => b === 0),
      'nothing written',
    );
  });

  test('RCI with an unallocated interrupt handle → INT_HANDLE_INVAL', async () => {
    const r = await run(wq00, noop({ flags: F | Flag.RCI, intHandle: 500 }));
    assert.equal(r.code, Status.INT_HANDLE_INVAL);
  });
});

describe('page faults end descriptors with partial completion', () => {
  test('an injected not-present page: PAGE_FAULT_NOBOF, fault_addr, bytes_completed', async () => {
    dma.u8.fill(0, DATA, DATA + 8 * 4096);
    emu.injectPageFault(dma.sab, DATA + 3 * 4096 + 100, 1);
    const r = await run(wq20, compval({ src: dma.addr(DATA), size: 8 * 4096, flags: F }));
    assert.equal(r.code, Status.PAGE_FAULT_NOBOF);
    assert.equal(r.writeFault, false);
    assert.equal(r.bytesCompleted, 3 * 4096);
    assert.equal(r.faultAddr, dma.addr(DATA + 3 * 4096));
    // Injected once: the retry runs through.
    const again = await run(wq20, compval({ src: dma.addr(DATA), size: 8 * 4096, flags: F }));
    assert.equal(again.code, Status.SUCCESS);
    assert.equal(again.result, 0);
  });

  test('a difference before the faulting page wins over the fault', async () => {
    dma.u8[DATA + 100] = 1;
    emu.injectPageFault(dma.sab, DATA + 4096, 1);
    const r = await run(wq20, compval({ src: dma.addr(DATA), size: 8192, flags: F }));
    assert.equal(r.code, Status.SUCCESS);
    assert.equal(r.result, 1);
    assert.equal(r.bytesCompleted, 96);
    emu.clearPageFaults();
    dma.u8[DATA + 100] = 0;
  });

  test('an unregistered address faults at that address; a range past the region end faults there', async () => {
    const r = await run(wq20, compval({ src: 0x5000, size: 4096, flags: F }));
    assert.equal(r.code, Status.PAGE_FAULT_NOBOF);
    assert.equal(r.bytesCompleted, 0);
    assert.equal(r.faultAddr, 0x5000n);
    const near = DMA_SIZE - 1000;
    const r2 = await run(wq20, compval({ src: dma.addr(near), size: 4096, flags: F }));
    assert.equal(r2.code, Status.PAGE_FAULT_NOBOF);
    assert.equal(r2.bytesCompleted, 1000);
    assert.equal(r2.faultAddr, dma.addr(DMA_SIZE));
  });

  test('a faulting batch member fails the batch; the others still complete', async () => {
    buildBatch(8);
    emu.injectPageFault(dma.sab, DATA + 5 * 4096, 1);
    const r = await runBatch(wq20, 8);
    assert.equal(r.code, Status.BATCH_FAIL);
    assert.equal(r.bytesCompleted, 8);
    assert.equal(dma.status(RECS + 5 * 32), Status.PAGE_FAULT_NOBOF);
    assert.equal(dma.status(RECS + 6 * 32), Status.SUCCESS);
  });
});

describe('MEMMOVE, MEMFILL, COMPARE, NOOP, DRAIN', () => {
  test('MEMMOVE copies; overlapping upwards runs descending (result 1)', async () => {
    for (let i = 0; i < 256; i++) dma.u8[DATA + i] = i;
    const r = await run(
      wq00,
      memmove({ src: dma.addr(DATA), dst: dma.addr(DATA + 4096), size: 256, flags: F }),
    );
    assert.equal(r.code, Status.SUCCESS);
    assert.equal(r.result, 0);
    assert.deepEqual(
      dma.u8.subarray(DATA + 4096, DATA + 4096 + 256),
      dma.u8.subarray(DATA, DATA + 256),
    );
    const o = await run(
      wq00,
      memmove({ src: dma.addr(DATA), dst: dma.addr(DATA + 16), size: 256, flags: F }),
    );
    assert.equal(o.result, 1);
    for (let i = 0; i < 256; i++) assert.equal(dma.u8[DATA + 16 + i], i, 'memmove semantics');
    dma.u8.fill(0, DATA, DATA + 8192);
  });

  test('a fault on the destination is a write fault (status bit 7)', async () => {
    emu.injectPageFault(dma.sab, DATA + 4096, 1);
    const r = await run(
      wq00,
      memmove({ src: dma.addr(DATA + 8192), dst: dma.addr(DATA), size: 8192, flags: F }),
    );
    assert.equal(r.code, Status.PAGE_FAULT_NOBOF);
    assert.equal(r.writeFault, true);
    assert.equal(r.bytesCompleted, 4096);
  });

  test('MEMFILL fills with the 8-byte pattern; COMPARE finds the exact first difference', async () => {
    const f = await run(
      wq00,
      memfill({ pattern: 0xffn, dst: dma.addr(DATA), size: 1024, flags: F }),
    );
    assert.equal(f.code, Status.SUCCESS);
    assert.equal(dma.u8[DATA], 0xff);
    assert.equal(dma.u8[DATA + 1], 0);
    assert.equal(dma.u8[DATA + 8], 0xff);
    assert.equal(dma.u8[DATA + 1024], 0);
    dma.u8.copyWithin(DATA + 4096, DATA, DATA + 1024);
    dma.u8[DATA + 4096 + 777] = 9;
    const c = await run(
      wq00,
      compare({ src: dma.addr(DATA), src2: dma.addr(DATA + 4096), size: 1024, flags: F }),
    );
    assert.equal(c.result, 1);
    assert.equal(c.bytesCompleted, 777);
    dma.u8.fill(0, DATA, DATA + 8192);
  });

  test('NOOP and DRAIN complete with SUCCESS', async () => {
    assert.equal((await run(wq00, noop({ flags: F }))).code, Status.SUCCESS);
    buildBatch(32);
    dma.clearRecord(MISC + 32);
    assert.ok(
      wq00.submit(
        dma.desc(
          MISC + 2048,
          batch({
            descListAddr: dma.addr(DESCS),
            count: 32,
            flags: F,
            completionAddr: dma.addr(MISC + 32),
          }),
        ),
      ),
    );
    const d = await run(wq00, drain({ flags: F }));
    assert.equal(d.code, Status.SUCCESS);
    assert.equal(
      dma.status(MISC + 32),
      Status.SUCCESS,
      'the earlier batch completed before the drain',
    );
  });
});

describe('work queues', () => {
  test('a shared WQ refuses ENQCMD at its threshold, and accepts again once engines take work', async () => {
    dsa0.pause();
    let accepted = 0;
    for (let i = 0; i < 20 && wq01.enqcmd(dma.desc(MISC + 1024, noop({ flags: 0 }))); i++)
      accepted++;
    assert.equal(accepted, 8, 'threshold 8');
    assert.equal(dsa0.wqStats()[1].occupancy, 8);
    dsa0.resume();
    await eventually(() => dsa0.wqStats()[1].occupancy === 0, 'the WQ to drain');
    assert.ok(wq01.enqcmd(dma.desc(MISC + 1024, noop({ flags: 0 }))));
  });

  test('injected refusals: ENQCMD says retry, then accepts', async () => {
    dsa0.refuseSubmissions('wq0.0', 2);
    const d = dma.desc(MISC + 1024, noop({ flags: 0 }));
    assert.equal(wq00.enqcmd(d), false);
    assert.equal(wq00.enqcmd(d), false);
    assert.equal(wq00.enqcmd(d), true);
  });

  test('a dedicated WQ gives no feedback: past its size a descriptor is dropped, in SWERR', async () => {
    dsa0.pause();
    dsa0.takeSoftwareError();
    const before = dsa0.wqStats()[2].dropped;
    for (let i = 0; i < 4; i++) {
      dma.clearRecord(RECS + i * 32);
      assert.ok(
        wq02.movdir64b(
          dma.desc(DESCS + i * 64, noop({ flags: F, completionAddr: dma.addr(RECS + i * 32) })),
        ),
      );
    }
    assert.equal(wq02.movdir64b(dma.desc(DESCS + 4 * 64, noop({ flags: 0 }))), false);
    assert.equal(dsa0.wqStats()[2].dropped, before + 1);
    assert.deepEqual(dsa0.takeSoftwareError(), {
      ...{ status: SWERR_DWQ_FULL, opcode: Opcode.NOOP, wq: 2 },
      ...{ addrLo: 0, addrHi: 0, overflow: 0 },
    });
    dsa0.resume();
    for (let i = 0; i < 4; i++)
      assert.equal((await dma.record(RECS + i * 32)).code, Status.SUCCESS);
  });

  test('WQ priority weights dispatch within a group (6:2)', async () => {
    dsa0.pause();
    for (let i = 0; i < 16; i++) dma.clearRecord(RECS + i * 32);
    for (let i = 0; i < 8; i++) {
      assert.ok(
        wq00.enqcmd(
          dma.desc(DESCS + i * 64, noop({ flags: F, completionAddr: dma.addr(RECS + i * 32) })),
        ),
      );
      assert.ok(
        wq01.enqcmd(
          dma.desc(
            DESCS + (8 + i) * 64,
            noop({ flags: F, completionAddr: dma.addr(RECS + (8 + i) * 32) }),
          ),
        ),
      );
    }
    dsa0.haltAfter(8);
    dsa0.resume();
    await eventually(() => dsa0.state === 'halted', 'the halt after 8 descriptors');
    let a = 0;
    let b = 0;
    for (let i = 0; i < 8; i++) a += dma.status(RECS + i * 32) === Status.SUCCESS ? 1 : 0;
    for (let i = 8; i < 16; i++) b += dma.status(RECS + i * 32) === Status.SUCCESS ? 1 : 0;
    assert.deepEqual([a, b], [6, 2]);
    await dsa0.reset();
    assert.equal(dsa0.state, 'enabled');
  });

  test('a halted device refuses submissions; reset brings it back', async () => {
    dsa0.halt();
    assert.equal(dsa0.state, 'halted');
    assert.equal(wq00.enqcmd(dma.desc(MISC + 1024, noop({ flags: 0 }))), false);
    const epoch = dsa0.epoch;
    await dsa0.reset();
    assert.equal(dsa0.epoch, epoch + 1);
    assert.equal((await run(wq00, noop({ flags: F }))).code, Status.SUCCESS);
  });
});

test('engines report descriptors, bytes and their own CPU time', async () => {
  const cpu = await emu.engineCpuMs();
  assert.ok(cpu['dsa0/engine0.0'] > 0);
  assert.ok(cpu['dsa2/engine2.0'] > 0);
  const s = dsa2.engineStats()[0];
  assert.ok(s.descriptors > 1024);
  assert.ok(s.bytes > 0);
  assert.ok(s.faults >= 1);
});
