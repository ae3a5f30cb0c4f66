// Descriptors and completion records as tests build and read them by hand. livemig's own code
// builds only COMPVAL and BATCH descriptors (through word views, or `compval` in the selftest)
// and only reads records, so the other operations' constructors, the descriptor decoder and the
// record encoder live here, beside the tests that use them. Layouts: src/accel/dsa/descriptor.ts
// and src/accel/dsa/completion.ts.

import { asView, checkFits } from '../../src/accel/dsa/byte-view.js';
import { addrHi, addrLo, joinAddr, type Address } from '../../src/accel/dsa/address.js';
import { RecOff } from '../../src/accel/dsa/completion.js';
import {
  DescOff,
  type CommonFields,
  type DescriptorFields,
} from '../../src/accel/dsa/descriptor.js';
import {
  COMPLETION_RECORD_SIZE,
  DESCRIPTOR_SIZE,
  FLAGS_MASK,
  Opcode,
} from '../../src/accel/dsa/opcodes.js';

/** NOOP: completes at once; with FENCE inside a batch it is a barrier. */
export function noop(o: CommonFields = {}): DescriptorFields {
  return { ...o, opcode: Opcode.NOOP };
}

/** BATCH: `count` descriptors at `descListAddr` (64-byte aligned, 2..max_batch_size). */
export function batch(
  o: CommonFields & { descListAddr: Address; count: number },
): DescriptorFields {
  const { descListAddr, count, ...c } = o;
  return { ...c, opcode: Opcode.BATCH, addr16: descListAddr, size: count };
}

/** DRAIN: completes once every earlier descriptor of the WQ has completed. */
export function drain(
  o: CommonFields & { readbackAddr?: Address; readbackAddr2?: Address } = {},
): DescriptorFields {
  const { readbackAddr, readbackAddr2, ...c } = o;
  return { ...c, opcode: Opcode.DRAIN, addr16: readbackAddr ?? 0, addr24: readbackAddr2 ?? 0 };
}

/** MEMMOVE: copy `size` bytes from `src` (byte 16) to `dst` (byte 24); overlap allowed. */
export function memmove(
  o: CommonFields & { src: Address; dst: Address; size: number },
): DescriptorFields {
  const { src, dst, size, ...c } = o;
  return { ...c, opcode: Opcode.MEMMOVE, addr16: src, addr24: dst, size };
}

/** MEMFILL: fill `size` bytes at `dst` (byte 24) with the 8-byte `pattern` (byte 16). */
export function memfill(
  o: CommonFields & { pattern: Address; dst: Address; size: number },
): DescriptorFields {
  const { pattern, dst, size, ...c } = o;
  return { ...c, opcode: Opcode.MEMFILL, addr16: pattern, addr24: dst, size };
}

/** COMPARE: compare `size` bytes at `src` (byte 16) and `src2` (byte 24). */
export function compare(
  o: CommonFields & { src: Address; src2: Address; size: number; expectedRes?: number },
): DescriptorFields {
  const { src, src2, size, expectedRes, ...c } = o;
  return { ...c, opcode: Opcode.COMPARE, addr16: src, addr24: src2, size, expectedRes };
}

/** A decoded descriptor: every field, addresses as bigint. */
export interface Descriptor {
  opcode: number;
  flags: number;
  pasid: number;
  priv: boolean;
  completionAddr: bigint;
  addr16: bigint;
  addr24: bigint;
  size: number;
  intHandle: number;
  expectedRes: number;
  opSpecific: Uint8Array;
}

/** Read a descriptor from `source` at byte `offset`. */
export function decodeDescriptor(source: DataView | Uint8Array, offset: number): Descriptor {
  const v = asView(source);
  checkFits(v, offset, DESCRIPTOR_SIZE, 'descriptor');
  const w0 = v.getUint32(offset, true);
  const w1 = v.getUint32(offset + 4, true);
  const opSpecific = new Uint8Array(24);
  for (let i = 0; i < 24; i++) opSpecific[i] = v.getUint8(offset + DescOff.OP_SPECIFIC + i);
  return {
    opcode: w1 >>> 24,
    flags: w1 & FLAGS_MASK,
    pasid: w0 & 0xfffff,
    priv: w0 >>> 31 === 1,
    completionAddr: getAddr(v, offset + DescOff.COMPLETION_ADDR),
    addr16: getAddr(v, offset + DescOff.ADDR16),
    addr24: getAddr(v, offset + DescOff.ADDR24),
    size: v.getUint32(offset + DescOff.SIZE, true),
    intHandle: v.getUint16(offset + DescOff.INT_HANDLE, true),
    expectedRes: opSpecific[0],
    opSpecific,
  };
}

function getAddr(v: DataView, at: number): bigint {
  return joinAddr(v.getUint32(at, true), v.getUint32(at + 4, true));
}

export interface CompletionRecordFields {
  /** Full status byte, including bit 7 (write fault). */
  status: number;
  result?: number;
  /** Byte 2: details of a page fault (the emulator leaves it 0; status bit 7 says write). */
  faultInfo?: number;
  /** bytes_completed, or descs_completed for BATCH. */
  bytesCompleted?: number;
  faultAddr?: Address;
  /** 24 bits, with INVALID_FLAGS. */
  invalidFlags?: number;
}

/** Write a whole record (status byte last, as the device does) into `target` at `offset`. */
export function encodeCompletionRecord(
  target: DataView | Uint8Array,
  offset: number,
  r: CompletionRecordFields,
): void {
  const v = asView(target);
  checkFits(v, offset, COMPLETION_RECORD_SIZE, 'completion record');
  for (let i = 1; i < COMPLETION_RECORD_SIZE; i++) v.setUint8(offset + i, 0);
  v.setUint8(offset + RecOff.RESULT, r.result ?? 0);
  v.setUint8(offset + RecOff.FAULT_INFO, r.faultInfo ?? 0);
  v.setUint32(offset + RecOff.BYTES_COMPLETED, (r.bytesCompleted ?? 0) >>> 0, true);
  const fa = r.faultAddr ?? 0;
  v.setUint32(offset + RecOff.FAULT_ADDR, addrLo(fa), true);
  v.setUint32(offset + RecOff.FAULT_ADDR + 4, addrHi(fa), true);
  if (r.invalidFlags) v.setUint32(offset + RecOff.INVALID_FLAGS, r.invalidFlags & 0xffffff, true);
  v.setUint8(offset + RecOff.STATUS, r.status);
}
