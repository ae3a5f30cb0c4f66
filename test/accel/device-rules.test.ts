// The emulated device enforces the rules hardware enforces on what a descriptor may carry:
// reserved fields zero, no privileged descriptors through a user portal, BOF only where the WQ
// allows block-on-fault (and there the device waits out a fault instead of stopping).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { DsaEmu } from '../../src/accel/dsa/emu/device.js';
import { WqPortal } from './wq-portal.js';
import { Flag, Status } from '../../src/accel/dsa/opcodes.js';
import { batch, compval, encodeDescriptor, noop } from './dsa-builders.js';
import { Dma } from './helpers.js';

const F = Flag.CRAV | Flag.RCR;
const wq = (id: number, bof: number) => ({
  dev: `wq0.${id}`,
  mode: 'shared',
  size: 8,
  threshold: 8,
  group_id: 0,
  block_on_fault: bof,
  max_batch_size: 32,
  type: 'user',
  name: 't',
});
const CONFIG = [
  {
    dev: 'dsa0',
    groups: [
      {
        dev: 'group0.0',
        grouped_workqueues: [wq(0, 0), wq(1, 1)],
        grouped_engines: [{ dev: 'engine0.0', group_id: 0 }],
      },
    ],
  },
];
const DATA = 0;
const DESCS = 64 * 1024;
const RECS = 128 * 1024;
const REC = 192 * 1024;

let emu: DsaEmu;
let dma: Dma;
let plain: WqPortal;
let blocking: WqPortal;

before(async () => {
  emu = await DsaEmu.start({ config: CONFIG });
  dma = new Dma(emu, 256 * 1024);
  plain = new WqPortal(emu.device('dsa0').handle, 'wq0.0');
  blocking = new WqPortal(emu.device('dsa0').handle, 'wq0.1');
});

after(async () => {
  await emu.close();
});

/** Submit the descriptor image `desc` (its record at REC) and wait for the record. */
async function runImage(portal: WqPortal, desc: Uint8Array) {
  dma.clearRecord(REC);
  assert.ok(portal.submit(desc), 'submitted');
  return dma.record(REC);
}

function image(fields: Parameters<typeof encodeDescriptor>[2], off = DESCS): Uint8Array {
  return dma.desc(off, { ...fields, completionAddr: dma.addr(REC) });
}

const zeroCheck = () => compval({ src: dma.addr(DATA), size: 4096, flags: F });

describe('reserved fields must be zero (NOZERO_RESERVE)', () => {
  for (const [what, byte, value] of [
    ['PASID-word reserved bits 20–30', 3, 0x01],
    ['rsvd1 (bytes 38–39)', 38, 0x01],
    ['op-specific byte 41 of COMPVAL', 41, 0x80],
    ['op-specific byte 63', 63, 0x01],
  ] as const) {
    test(what, async () => {
      const d = image(zeroCheck());
      d[byte] |= value;
      assert.equal((await runImage(plain, d)).code, Status.NOZERO_RESERVE);
      d[byte] &= ~value;
      assert.equal((await runImage(plain, d)).code, Status.SUCCESS);
    });
  }

  test('NOOP carries no addresses or size', async () => {
    const d = image({ ...noop({ flags: F }), size: 64 });
    assert.equal((await runImage(plain, d)).code, Status.NOZERO_RESERVE);
  });

  test('a batch member with a reserved byte set fails alone; its zero-check neighbours run', async () => {
    dma.u8.fill(0, DATA, DATA + 8 * 4096);
    for (let i = 0; i < 8; i++) {
      encodeDescriptor(dma.u8, DESCS + i * 64, {
        ...compval({ src: dma.addr(DATA + i * 4096), size: 4096, flags: F }),
        completionAddr: dma.addr(RECS + i * 32),
      });
      dma.clearRecord(RECS + i * 32);
    }
    dma.u8[DESCS + 5 * 64 + 50] = 1;
    const r = await runImage(
      plain,
      image(batch({ descListAddr: dma.addr(DESCS), count: 8, flags: F }), DESCS + 4096),
    );
    assert.equal(r.code, Status.BATCH_FAIL);
    assert.equal(r.bytesCompleted, 8);
    const statuses = Array.from({ length: 8 }, (_, i) => dma.status(RECS + i * 32));
    assert.deepEqual(statuses, [1, 1, 1, 1, 1, Status.NOZERO_RESERVE, 1, 1]);
  });
});

describe('privilege and block-on-fault', () => {
  test('priv = 1 through a user WQ → PRIV_BAD', async () => {
    const r = await runImage(plain, image({ ...zeroCheck(), priv: true }));
    assert.equal(r.code, Status.PRIV_BAD);
  });

  test('BOF on a WQ with block_on_fault 0 is a reserved flag → INVALID_FLAGS', async () => {
    const r = await runImage(plain, image({ ...zeroCheck(), flags: F | Flag.BOF }));
    assert.equal(r.code, Status.INVALID_FLAGS);
    assert.equal(r.invalidFlags, Flag.BOF);
  });

  test('with BOF on a block_on_fault WQ a not-present page is waited out, not reported', async () => {
    dma.u8.fill(0, DATA, DATA + 4 * 4096);
    emu.injectPageFault(dma.sab, DATA + 2 * 4096);
    const fields = compval({ src: dma.addr(DATA), size: 4 * 4096, flags: F });
    const stopped = await runImage(blocking, image(fields));
    assert.equal(stopped.code, Status.PAGE_FAULT_NOBOF, 'without BOF the descriptor stops');
    assert.equal(stopped.bytesCompleted, 2 * 4096);
    const waited = await runImage(blocking, image({ ...fields, flags: F | Flag.BOF }));
    assert.equal(waited.code, Status.SUCCESS);
    assert.equal(waited.result, 0);
    emu.clearPageFaults();
    // Memory that is not mapped at all cannot be made present: Invalid Request.
    const unmapped = await runImage(
      blocking,
      image({ ...compval({ src: 0x5000, size: 64 }), flags: F | Flag.BOF }),
    );
    assert.equal(unmapped.code, Status.PAGE_FAULT_IR);
  });
});
