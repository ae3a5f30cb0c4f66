// The checks a descriptor passes before the emulated device runs it, each ending in the
// completion status hardware gives (dsa-notes §1–2):
//
//   unknown opcode, or BATCH/DRAIN inside a batch              → BAD_OPCODE
//   a reserved flag: bit 6, an operation-specific flag (bits 16–23; none of the emulated
//     operations defines one), or BOF on a WQ whose block_on_fault is 0 (the flag is
//     reserved there)                                          → INVALID_FLAGS (+ invalid_flags)
//   a reserved field not zero                                  → NOZERO_RESERVE
//   priv = 1 on a user WQ (the limited portal of /dev/dsa)     → PRIV_BAD
//   completion record address not 32-byte aligned             → CRA_ALIGN
//   RCI with an invalid interrupt handle                       → INT_HANDLE_INVAL
//
// Reserved fields: PASID-word bits 20–30, rsvd1 (bytes 38–39), the op-specific bytes 40–63
// (COMPARE and COMPVAL use byte 40, expected_res), NOOP's addresses and size, and BATCH's
// second address. A driver that leaves garbage there fails here, as it would on hardware.

import { DESCRIPTOR_WORDS, DescWord } from '../descriptor.js';
import { EMULATED_OPCODES, FLAGS_MASK, Flag, Opcode, Status } from '../opcodes.js';
import type { EmuWqHandle } from './handles.js';
import { imsValid } from './registers.js';

/** Flag bits no emulated operation accepts, whatever the WQ. */
const RESERVED_FLAGS = 0x40 | 0xff0000;
/** PASID word: bits 20–30 reserved (bit 31 is priv). */
const PASID_WORD_RESERVED = 0x7ff00000;

/** What the WQ a descriptor came from allows: its block_on_fault, and its type (a user WQ
 * takes unprivileged descriptors only). */
export type WqRules = Pick<EmuWqHandle, 'blockOnFault' | 'type'>;

/** The flag bits of `flags` that are reserved for this WQ (INVALID_FLAGS' field), or 0. */
export function invalidFlagBits(flags: number, wq: WqRules): number {
  return (flags & RESERVED_FLAGS) | (wq.blockOnFault ? 0 : flags & Flag.BOF);
}

/** True when every reserved field of the descriptor at word `at` is zero. */
export function reservedFieldsZero(d: Int32Array, at: number, op: number): boolean {
  const usesExpectedRes = op === Opcode.COMPARE || op === Opcode.COMPVAL;
  let r =
    (d[at + DescWord.PASID] & PASID_WORD_RESERVED) |
    (d[at + DescWord.INT_HANDLE] >>> 16) |
    (d[at + DescWord.OP_SPECIFIC] & (usesExpectedRes ? ~0xff : ~0));
  for (let i = DescWord.OP_SPECIFIC + 1; i < DESCRIPTOR_WORDS; i++) r |= d[at + i];
  if (op === Opcode.NOOP) {
    for (let i = DescWord.ADDR16_LO; i <= DescWord.SIZE; i++) r |= d[at + i];
  } else if (op === Opcode.BATCH) {
    r |= d[at + DescWord.ADDR24_LO] | d[at + DescWord.ADDR24_HI];
  }
  return r === 0;
}

/** Validation common to all descriptors: an error status, or 0. */
export function checkDescriptor(
  d: Int32Array,
  at: number,
  inBatch: boolean,
  wq: WqRules,
  registers: Int32Array,
): number {
  const fo = d[at + DescWord.FLAGS_OPCODE];
  const op = fo >>> 24;
  const flags = fo & FLAGS_MASK;
  if (!EMULATED_OPCODES.has(op) || (inBatch && (op === Opcode.BATCH || op === Opcode.DRAIN))) {
    return Status.BAD_OPCODE;
  }
  if (invalidFlagBits(flags, wq)) return Status.INVALID_FLAGS;
  if (!reservedFieldsZero(d, at, op)) return Status.NOZERO_RESERVE;
  // Members run with the batch descriptor's privilege; their priv bit is not looked at.
  if (!inBatch && wq.type === 'user' && d[at + DescWord.PASID] < 0) return Status.PRIV_BAD;
  if (flags & Flag.CRAV && d[at + DescWord.COMPLETION_LO] & 31) return Status.CRA_ALIGN;
  if (flags & Flag.RCI && !imsValid(registers, d[at + DescWord.INT_HANDLE] & 0xffff)) {
    return Status.INT_HANDLE_INVAL;
  }
  return 0;
}
