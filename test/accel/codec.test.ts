// Descriptor and completion-record codecs against byte images computed by hand from the
// layouts in dsa-notes §1–2 (linux include/uapi/linux/idxd.h).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setSourceWords, writeDescriptorWords } from '../../src/accel/dsa/descriptor.js';
import { storeRecordWords } from '../../src/accel/dsa/completion.js';
import { Flag, Opcode, Status, opCapString, statusName } from '../../src/accel/dsa/opcodes.js';
import {
  batch,
  compval,
  decodeCompletionRecord,
  decodeDescriptor,
  encodeDescriptor,
  type DescriptorFields,
  drain,
  encodeCompletionRecord,
  memfill,
  memmove,
  noop,
} from './dsa-builders.js';

/** "00 01 ff" → bytes; '..' marks runs of zero bytes up to the given length. */
function hex(s: string, length = 64): Uint8Array {
  const out = new Uint8Array(length);
  const parts = s.trim().split(/\s+/);
  parts.forEach((p, i) => (out[i] = parseInt(p, 16)));
  return out;
}

function bytesOf(d: DescriptorFields, at = 0, size = 64): Uint8Array {
  const buf = new Uint8Array(size);
  encodeDescriptor(buf, at, d);
  return buf;
}

const REC = 0x1000_0000_0040n; // completion record address
const FLAGS = Flag.CRAV | Flag.RCR; // 0x0c

test('COMPVAL: source at byte 16, pattern at byte 24, size at 32, expected_res at 40', () => {
  const d = compval({
    src: 0x1122_3344_5566_7788n,
    pattern: 0x0102_0304_0506_0708n,
    size: 4096,
    expectedRes: 1,
    flags: FLAGS | Flag.CR,
    completionAddr: REC,
  });
  const expected = hex(`
    00 00 00 00  8c 00 00 06  40 00 00 00 00 10 00 00
    88 77 66 55 44 33 22 11   08 07 06 05 04 03 02 01
    00 10 00 00  00 00 00 00  01`);
  assert.deepEqual(bytesOf(d), expected);
  const back = decodeDescriptor(expected, 0);
  assert.equal(back.opcode, Opcode.COMPVAL);
  assert.equal(back.flags, FLAGS | Flag.CR);
  assert.equal(back.completionAddr, REC);
  assert.equal(back.addr16, 0x1122_3344_5566_7788n);
  assert.equal(back.addr24, 0x0102_0304_0506_0708n);
  assert.equal(back.size, 4096);
  assert.equal(back.expectedRes, 1);
});

test('BATCH: desc_list_addr at 16, desc_count at 32, int_handle at 36', () => {
  const d = batch({
    descListAddr: 0x1000_0000_1000n,
    count: 128,
    flags: FLAGS | Flag.RCI,
    completionAddr: 0x1000_0000_0020n,
    intHandle: 0x0105,
  });
  const expected = hex(`
    00 00 00 00  1c 00 00 01  20 00 00 00 00 10 00 00
    00 10 00 00 00 10 00 00   00 00 00 00 00 00 00 00
    80 00 00 00  05 01 00 00`);
  assert.deepEqual(bytesOf(d), expected);
  const back = decodeDescriptor(expected, 0);
  assert.equal(back.opcode, Opcode.BATCH);
  assert.equal(back.addr16, 0x1000_0000_1000n);
  assert.equal(back.size, 128);
  assert.equal(back.intHandle, 0x105);
});

test('NOOP and DRAIN: opcode byte 7, only flags and completion address', () => {
  assert.deepEqual(
    bytesOf(noop({ flags: FLAGS | Flag.FENCE, completionAddr: REC })),
    hex(`00 00 00 00  0d 00 00 00  40 00 00 00 00 10 00 00`),
  );
  assert.deepEqual(
    bytesOf(drain({ flags: FLAGS, completionAddr: REC })),
    hex(`00 00 00 00  0c 00 00 02  40 00 00 00 00 10 00 00`),
  );
});

test('MEMMOVE: src at 16, dst at 24; MEMFILL: pattern at 16, dst at 24', () => {
  const mv = bytesOf(
    memmove({ src: 0xaa00n, dst: 0xbb00n, size: 0x20000, flags: FLAGS, completionAddr: REC }),
  );
  assert.deepEqual(
    mv,
    hex(`
    00 00 00 00  0c 00 00 03  40 00 00 00 00 10 00 00
    00 aa 00 00 00 00 00 00   00 bb 00 00 00 00 00 00
    00 00 02 00`),
  );
  const fill = bytesOf(
    memfill({
      pattern: 0xdead_beef_cafe_f00dn,
      dst: 0xbb00n,
      size: 64,
      flags: FLAGS,
      completionAddr: REC,
    }),
  );
  assert.deepEqual(
    fill,
    hex(`
    00 00 00 00  0c 00 00 04  40 00 00 00 00 10 00 00
    0d f0 fe ca ef be ad de   00 bb 00 00 00 00 00 00
    40 00 00 00`),
  );
  const back = decodeDescriptor(fill, 0);
  assert.equal(back.opcode, Opcode.MEMFILL);
  assert.equal(back.addr16, 0xdead_beef_cafe_f00dn, 'pattern comes back from byte 16');
  assert.equal(back.addr24, 0xbb00n, 'destination comes back from byte 24');
});

test('pasid and priv live in the first word; encoding at an offset leaves the rest alone', () => {
  const buf = new Uint8Array(192).fill(0xee);
  encodeDescriptor(buf, 64, { opcode: Opcode.NOOP, pasid: 0xabcde, priv: true });
  assert.deepEqual([...buf.subarray(64, 68)], [0xde, 0xbc, 0x0a, 0x80]);
  assert.ok(buf.subarray(0, 64).every((b) => b === 0xee));
  assert.ok(buf.subarray(128).every((b) => b === 0xee));
  const d = decodeDescriptor(new DataView(buf.buffer), 64);
  assert.equal(d.pasid, 0xabcde);
  assert.equal(d.priv, true);
  assert.throws(() => encodeDescriptor(buf, 160, { opcode: 0 }), RangeError);
  assert.throws(() => encodeDescriptor(buf, 0, { opcode: 0, flags: 0x1000000 }), RangeError);
});

test('hot-path word writers produce the same bytes as the encoder', () => {
  const sab = new SharedArrayBuffer(128);
  const w = new Int32Array(sab);
  writeDescriptorWords(w, 16, Opcode.COMPVAL, FLAGS, 0x40, 0x1000, 0, 0, 4096, 0);
  setSourceWords(w, 16, 0x5566_7788, 0x1122_3344);
  const viaEncoder = bytesOf(
    compval({ src: 0x1122_3344_5566_7788n, size: 4096, flags: FLAGS, completionAddr: REC }),
  );
  assert.deepEqual(new Uint8Array(sab, 64, 64), viaEncoder);
  writeDescriptorWords(
    w,
    0,
    Opcode.BATCH,
    FLAGS | Flag.RCI,
    0x20,
    0x1000,
    0x1000,
    0x1000,
    128,
    0x105,
  );
  assert.deepEqual(
    new Uint8Array(sab, 0, 64),
    bytesOf(
      batch({
        descListAddr: 0x1000_0000_1000n,
        count: 128,
        flags: FLAGS | Flag.RCI,
        completionAddr: 0x1000_0000_0020n,
        intHandle: 0x105,
      }),
    ),
  );
});

test('completion record: status at 0, result at 1, bytes_completed at 4, fault_addr at 8', () => {
  const buf = new Uint8Array(32);
  encodeCompletionRecord(buf, 0, {
    status: Status.PAGE_FAULT_NOBOF | 0x80,
    result: 0,
    bytesCompleted: 0x1234,
    faultAddr: 0x1000_0000_2000n,
  });
  assert.deepEqual(buf, hex(`83 00 00 00  34 12 00 00  00 20 00 00 00 10 00 00`, 32));
  const r = decodeCompletionRecord(buf, 0);
  assert.equal(r.code, Status.PAGE_FAULT_NOBOF);
  assert.equal(r.writeFault, true);
  assert.equal(r.bytesCompleted, 0x1234);
  assert.equal(r.faultAddr, 0x1000_0000_2000n);
  assert.equal(statusName(r.status), 'PAGE_FAULT_NOBOF|WRITE');

  // Byte 2 is fault_info (u8), byte 3 rsvd (u8): not one reserved u16.
  buf[3] = 0xee;
  assert.equal(decodeCompletionRecord(buf, 0).faultInfo, 0);
  encodeCompletionRecord(buf, 0, { status: Status.PAGE_FAULT_NOBOF, faultInfo: 0x5a });
  assert.deepEqual(buf.subarray(0, 4), hex(`03 00 5a 00`, 4));
  assert.equal(decodeCompletionRecord(buf, 0).faultInfo, 0x5a);

  encodeCompletionRecord(buf, 0, { status: Status.INVALID_FLAGS, invalidFlags: 0x010000 });
  assert.deepEqual(buf, hex(`11 00 00 00  00 00 00 00  00 00 00 00 00 00 00 00  00 00 01 00`, 32));
  assert.equal(decodeCompletionRecord(buf, 0).invalidFlags, 0x010000);
});

test('storeRecordWords writes the same image, status word last', () => {
  const sab = new SharedArrayBuffer(64);
  const w = new Int32Array(sab);
  storeRecordWords(w, 8, Status.SUCCESS, 1, 24, 0, 0, 0);
  const expected = new Uint8Array(32);
  encodeCompletionRecord(expected, 0, { status: Status.SUCCESS, result: 1, bytesCompleted: 24 });
  assert.deepEqual(new Uint8Array(sab, 32, 32), expected);
  const r = decodeCompletionRecord(new Uint8Array(sab), 32);
  assert.equal(r.code, Status.SUCCESS);
  assert.equal(r.result, 1);
});

test('names of statuses and the op_cap string', () => {
  assert.equal(statusName(0x14), 'DESC_CNT_ERANGE');
  assert.equal(statusName(0x2f), '0x2f');
  assert.equal(
    opCapString([0, 1, 2, 3, 4, 5, 6]),
    '00000000,00000000,00000000,00000000,00000000,00000000,00000000,0000007f',
  );
  assert.equal(opCapString([0x20]).split(',')[6], '00000001');
});
