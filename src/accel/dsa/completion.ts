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

import { asView, checkFits } from './byte-view.js';
import { joinAddr } from './address.js';
import { COMPLETION_RECORD_SIZE, STATUS_MASK, STATUS_WRITE_FAULT } from './opcodes.js';

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

/** u32 word indices. */
export const RecWord = {
  /** status (bits 0–7) | result << 8 | fault_info << 16 | rsvd << 24 */
  STATUS_RESULT: 0,
  BYTES_COMPLETED: 1,
  FAULT_LO: 2,
  FAULT_HI: 3,
  OP_SPECIFIC: 4,
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
  const v = asView(source);
  checkFits(v, offset, COMPLETION_RECORD_SIZE, 'completion record');
  const status = v.getUint8(offset);
  const opSpecific = new Uint8Array(16);
  for (let i = 0; i < 16; i++) opSpecific[i] = v.getUint8(offset + RecOff.OP_SPECIFIC + i);
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
  w[word + 5] = 0;
  w[word + 6] = 0;
  w[word + 7] = 0;
  Atomics.store(w, word + RecWord.STATUS_RESULT, (status & 0xff) | ((result & 0xff) << 8));
}
