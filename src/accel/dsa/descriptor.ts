// The 64-byte DSA descriptor (`struct dsa_hw_desc`). Layout (little-endian; dsa-notes §1):
//
//   0  pasid:20 rsvd:11 priv:1      4  flags:24        7  opcode
//   8  completion_addr (u64)
//  16  src_addr | pattern (MEMFILL) | desc_list_addr (BATCH) | rdback_addr (DRAIN)
//  24  dst_addr | src2_addr (COMPARE) | comp_pattern (COMPVAL) | rdback_addr2
//  32  xfer_size | desc_count (BATCH) (u32)
//  36  int_handle (u16)   38 rsvd (u16)
//  40  op-specific, 24 bytes: expected_res (u8) for COMPARE/COMPVAL, ...
//
// livemig writes descriptors through u32 word views (no allocation, no BigInt): word `w` of a
// descriptor at byte offset `b` is index `b/4 + w` of an Int32Array over the same memory. Tests
// build and read them byte by byte with test/accel/dsa-builders.ts.

import { DESCRIPTOR_SIZE, FLAGS_MASK } from './opcodes.js';

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
