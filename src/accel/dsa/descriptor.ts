// The 64-byte DSA descriptor (`struct dsa_hw_desc`), encoded into and decoded from
// caller-provided memory. Layout (little-endian; dsa-notes §1):
//
//   0  pasid:20 rsvd:11 priv:1      4  flags:24        7  opcode
//   8  completion_addr (u64)
//  16  src_addr | pattern (MEMFILL) | desc_list_addr (BATCH) | rdback_addr (DRAIN)
//  24  dst_addr | src2_addr (COMPARE) | comp_pattern (COMPVAL) | rdback_addr2
//  32  xfer_size | desc_count (BATCH) (u32)
//  36  int_handle (u16)   38 rsvd (u16)
//  40  op-specific, 24 bytes: expected_res (u8) for COMPARE/COMPVAL, ...
//
// Encoders never allocate: they write into a DataView/Uint8Array at an offset. The functions
// working on u32 word views (`*Words`) are the hot-path form; word `w` of a descriptor at
// byte offset `b` is index `b/4 + w` of a Uint32Array/Int32Array over the same memory.

import { asView, checkFits } from './byte-view.js';
import { addrHi, addrLo, type Address } from './address.js';
import { DESCRIPTOR_SIZE, FLAGS_MASK, Opcode } from './opcodes.js';

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

/** u32 word indices of the fields, for the word-view hot path. */
export const DescWord = {
  PASID: 0,
  /** flags (bits 0–23) | opcode << 24 */
  FLAGS_OPCODE: 1,
  COMPLETION_LO: 2,
  COMPLETION_HI: 3,
  ADDR16_LO: 4,
  ADDR16_HI: 5,
  ADDR24_LO: 6,
  ADDR24_HI: 7,
  SIZE: 8,
  /** int_handle (bits 0–15) | rsvd1 << 16 */
  INT_HANDLE: 9,
  /** expected_res is the low byte */
  OP_SPECIFIC: 10,
} as const;

export const DESCRIPTOR_WORDS = DESCRIPTOR_SIZE / 4;

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
  const v = asView(target);
  checkFits(v, offset, DESCRIPTOR_SIZE, 'descriptor');
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

// ---- Slow path: COMPVAL, the one operation livemig builds as DescriptorFields (the selftest) ----

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

// ---- Hot path: word views ----

/**
 * Write a whole descriptor whose byte-24 address is 0, as the driver's are: a COMPVAL with
 * pattern 0 (its source words are then set per page with setSourceWords) or a BATCH.
 */
export function writeDescriptorWords(
  w: Int32Array | Uint32Array,
  word: number,
  opcode: number,
  flags: number,
  completionLo: number,
  completionHi: number,
  addr16Lo: number,
  addr16Hi: number,
  size: number,
  intHandle: number,
): void {
  w[word + DescWord.PASID] = 0;
  w[word + DescWord.FLAGS_OPCODE] = (flags & FLAGS_MASK) | (opcode << 24);
  w[word + DescWord.COMPLETION_LO] = completionLo;
  w[word + DescWord.COMPLETION_HI] = completionHi;
  setSourceWords(w, word, addr16Lo, addr16Hi);
  w[word + DescWord.ADDR24_LO] = 0;
  w[word + DescWord.ADDR24_HI] = 0;
  w[word + DescWord.SIZE] = size;
  w[word + DescWord.INT_HANDLE] = intHandle & 0xffff;
  for (let i = DescWord.OP_SPECIFIC; i < DESCRIPTOR_WORDS; i++) w[word + i] = 0;
}

/** Set the source address (byte 16) of the descriptor starting at `word`. */
export function setSourceWords(
  w: Int32Array | Uint32Array,
  word: number,
  lo: number,
  hi: number,
): void {
  w[word + DescWord.ADDR16_LO] = lo;
  w[word + DescWord.ADDR16_HI] = hi;
}
