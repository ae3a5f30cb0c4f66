// Descriptors and completion records as tests build and read them, byte by byte: livemig's own
// code writes only COMPVAL and BATCH descriptors, through word views (DescWord,
// writeDescriptorWords), and reads records by word (RecWord), so the byte-level codec, every
// operation's constructor, the descriptor decoder and the record encoder live here, beside the
// tests that use them. Layouts: src/accel/dsa/descriptor.ts and src/accel/dsa/completion.ts.

import { TWO_32, type Address } from '../../src/accel/dsa/address.js';
import {
  COMPLETION_RECORD_SIZE,
  DESCRIPTOR_SIZE,
  FLAGS_MASK,
  Opcode,
  STATUS_MASK,
  STATUS_WRITE_FAULT,
} from '../../src/accel/dsa/opcodes.js';

/** A DataView of `target` where `size` bytes of a `what` at byte `offset` fit (else throws). */
function viewAt(
  target: DataView | Uint8Array,
  offset: number,
  size: number,
  what: string,
): DataView {
  const v =
    target instanceof DataView
      ? target
      : new DataView(target.buffer, target.byteOffset, target.byteLength);
  if (!Number.isInteger(offset) || offset < 0 || offset + size > v.byteLength) {
    throw new RangeError(`${what} at byte ${offset} does not fit in a ${v.byteLength}-byte buffer`);
  }
  return v;
}

/** A copy of `n` bytes of `v` from byte `at`. */
function bytesAt(v: DataView, at: number, n: number): Uint8Array {
  return Uint8Array.from(new Uint8Array(v.buffer, v.byteOffset + at, n));
}

/** Low 32 bits of a non-negative safe integer or bigint, as an unsigned number. */
export function addrLo(a: Address): number {
  return typeof a === 'bigint' ? Number(a & 0xffffffffn) : a >>> 0;
}

/** High 32 bits of a non-negative safe integer or bigint, as an unsigned number. */
export function addrHi(a: Address): number {
  return typeof a === 'bigint' ? Number((a >> 32n) & 0xffffffffn) : Math.floor(a / TWO_32) >>> 0;
}

/** Join two u32 halves into a bigint (exact for all 64-bit values). */
export function joinAddr(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** Byte offsets of the fields. */
export const DescOff = {
  PASID: 0,
  FLAGS: 4,
  OPCODE: 7,
  COMPLETION_ADDR: 8,
  /** src_addr / pattern (MEMFILL) / desc_list_addr (BATCH) / rdback_addr (DRAIN) */
  ADDR16: 16,
  /** dst_addr / src2_addr (COMPARE) / comp_pattern (COMPVAL) / rdback_addr2 */
  ADDR24: 24,
  /** xfer_size / desc_count (BATCH) */
  SIZE: 32,
  INT_HANDLE: 36,
  RSVD1: 38,
  OP_SPECIFIC: 40,
  EXPECTED_RES: 40,
} as const;

/** Raw field values; the generic form every encoder goes through. */
export interface DescriptorFields {
  opcode: number;
  /** `IDXD_OP_FLAG_*`, 24 bits. */
  flags?: number;
  /** 20 bits; filled in by ENQCMD on hardware. */
  pasid?: number;
  priv?: boolean;
  completionAddr?: Address;
  /** Byte 16: src_addr, MEMFILL pattern, BATCH desc_list_addr, DRAIN rdback_addr. */
  addr16?: Address;
  /** Byte 24: dst_addr, COMPARE src2_addr, COMPVAL comp_pattern. */
  addr24?: Address;
  /** Byte 32: xfer_size, or desc_count for BATCH. */
  size?: number;
  intHandle?: number;
  /** Byte 40 (COMPARE, COMPVAL): the expected result checked with the CR flag. */
  expectedRes?: number;
  /** Bytes 40–63 verbatim; overrides `expectedRes` when given. */
  opSpecific?: Uint8Array;
}

/**
 * Write a descriptor into `target` at byte `offset` (all 64 bytes, reserved ones zeroed).
 * Off the hot path only: a DataView is made when given a Uint8Array.
 */
export function encodeDescriptor(
  target: DataView | Uint8Array,
  offset: number,
  d: DescriptorFields,
): void {
  const v = viewAt(target, offset, DESCRIPTOR_SIZE, 'descriptor');
  const flags = d.flags ?? 0;
  if (flags & ~FLAGS_MASK) throw new RangeError(`flags 0x${flags.toString(16)} exceed 24 bits`);
  if (!Number.isInteger(d.opcode) || d.opcode < 0 || d.opcode > 0xff) {
    throw new RangeError(`opcode ${d.opcode} is not a byte`);
  }
  const pasid = d.pasid ?? 0;
  if (pasid < 0 || pasid > 0xfffff) throw new RangeError(`pasid ${pasid} exceeds 20 bits`);
  v.setUint32(offset + 0, (pasid | ((d.priv ? 1 : 0) << 31)) >>> 0, true);
  v.setUint32(offset + 4, (flags | (d.opcode << 24)) >>> 0, true);
  setAddr(v, offset + DescOff.COMPLETION_ADDR, d.completionAddr ?? 0);
  setAddr(v, offset + DescOff.ADDR16, d.addr16 ?? 0);
  setAddr(v, offset + DescOff.ADDR24, d.addr24 ?? 0);
  v.setUint32(offset + DescOff.SIZE, (d.size ?? 0) >>> 0, true);
  v.setUint16(offset + DescOff.INT_HANDLE, d.intHandle ?? 0, true);
  v.setUint16(offset + DescOff.RSVD1, 0, true);
  for (let i = DescOff.OP_SPECIFIC; i < DESCRIPTOR_SIZE; i++) v.setUint8(offset + i, 0);
  if (d.opSpecific) {
    if (d.opSpecific.length > 24) throw new RangeError('op-specific part is 24 bytes');
    for (let i = 0; i < d.opSpecific.length; i++) {
      v.setUint8(offset + DescOff.OP_SPECIFIC + i, d.opSpecific[i]);
    }
  } else if (d.expectedRes !== undefined) {
    v.setUint8(offset + DescOff.EXPECTED_RES, d.expectedRes);
  }
}

function setAddr(v: DataView, at: number, a: Address): void {
  v.setUint32(at, addrLo(a), true);
  v.setUint32(at + 4, addrHi(a), true);
}

/** The fields every operation's constructor takes. */
export interface CommonFields {
  flags?: number;
  completionAddr?: Address;
  intHandle?: number;
  pasid?: number;
}

/** COMPVAL (compare pattern): `size` bytes at `src` (byte 16) against `pattern` (byte 24). */
export function compval(
  o: CommonFields & { src: Address; pattern?: Address; size: number; expectedRes?: number },
): DescriptorFields {
  const { src, pattern, size, expectedRes, ...c } = o;
  return { ...c, opcode: Opcode.COMPVAL, addr16: src, addr24: pattern ?? 0, size, expectedRes };
}

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
  const v = viewAt(source, offset, DESCRIPTOR_SIZE, 'descriptor');
  const w0 = v.getUint32(offset, true);
  const w1 = v.getUint32(offset + 4, true);
  const opSpecific = bytesAt(v, offset + DescOff.OP_SPECIFIC, 24);
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
  const v = viewAt(target, offset, COMPLETION_RECORD_SIZE, 'completion record');
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

export const RecOff = {
  STATUS: 0,
  RESULT: 1,
  FAULT_INFO: 2,
  RSVD: 3,
  BYTES_COMPLETED: 4,
  FAULT_ADDR: 8,
  OP_SPECIFIC: 16,
  INVALID_FLAGS: 16,
} as const;

export interface CompletionRecord {
  /** Raw status byte. */
  status: number;
  /** `status & 0x7f`. */
  code: number;
  /** Bit 7: the page fault happened on a write. */
  writeFault: boolean;
  result: number;
  faultInfo: number;
  bytesCompleted: number;
  faultAddr: bigint;
  invalidFlags: number;
  opSpecific: Uint8Array;
}

/** Read a record from `source` at byte `offset`. */
export function decodeCompletionRecord(
  source: DataView | Uint8Array,
  offset: number,
): CompletionRecord {
  const v = viewAt(source, offset, COMPLETION_RECORD_SIZE, 'completion record');
  const status = v.getUint8(offset);
  const opSpecific = bytesAt(v, offset + RecOff.OP_SPECIFIC, 16);
  return {
    status,
    code: status & STATUS_MASK,
    writeFault: (status & STATUS_WRITE_FAULT) !== 0,
    result: v.getUint8(offset + RecOff.RESULT),
    faultInfo: v.getUint8(offset + RecOff.FAULT_INFO),
    bytesCompleted: v.getUint32(offset + RecOff.BYTES_COMPLETED, true),
    faultAddr: joinAddr(
      v.getUint32(offset + RecOff.FAULT_ADDR, true),
      v.getUint32(offset + RecOff.FAULT_ADDR + 4, true),
    ),
    invalidFlags: v.getUint32(offset + RecOff.INVALID_FLAGS, true) & 0xffffff,
    opSpecific,
  };
}
