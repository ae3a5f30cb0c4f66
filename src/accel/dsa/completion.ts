// The 32-byte DSA completion record (`struct dsa_completion_record`). Layout (dsa-notes §2):
//
//   0  status (volatile; software clears it to 0 before submitting, polls it, masks 0x7f)
//   1  result (COMPARE/COMPVAL: 0 equal, 1 different; MEMMOVE: direction)
//   2  fault_info (u8)   3  rsvd (u8)
//   4  bytes_completed | descs_completed (BATCH) (u32)
//   8  fault_addr (u64)
//  16  op-specific: invalid_flags:24 (INVALID_FLAGS), delta_rec_size, crc_val, ...
//
// The device writes every other byte first and the status byte last. In this emulation the
// first u32 word (status | result << 8) is written with one Atomics.store on an Int32Array, so a
// reader that sees a non-zero status with Atomics.load also sees the rest of the record.

/** u32 word indices. */
export const RecWord = {
  /** status (bits 0–7) | result << 8 | fault_info << 16 | rsvd << 24 */
  STATUS_RESULT: 0,
  BYTES_COMPLETED: 1,
  FAULT_LO: 2,
  FAULT_HI: 3,
  OP_SPECIFIC: 4,
  /** the op-specific area's last word; the record ends after it */
  LAST: 7,
} as const;

/**
 * Write a record through an Int32Array word view, status word last with Atomics.store, so a
 * reader polling word 0 with Atomics.load sees a complete record. `word` is the record's
 * index in `w` (byte offset / 4, 32-byte aligned). Allocation-free: the engine's form.
 */
export function storeRecordWords(
  w: Int32Array,
  word: number,
  status: number,
  result: number,
  bytesCompleted: number,
  faultLo: number,
  faultHi: number,
  opSpecific0: number,
): void {
  w[word + RecWord.BYTES_COMPLETED] = bytesCompleted | 0;
  w[word + RecWord.FAULT_LO] = faultLo | 0;
  w[word + RecWord.FAULT_HI] = faultHi | 0;
  w[word + RecWord.OP_SPECIFIC] = opSpecific0 | 0;
  for (let i = RecWord.OP_SPECIFIC + 1; i <= RecWord.LAST; i++) w[word + i] = 0;
  Atomics.store(w, word + RecWord.STATUS_RESULT, (status & 0xff) | ((result & 0xff) << 8));
}
