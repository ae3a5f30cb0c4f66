// The checks a descriptor passes before the emulated device runs it, each ending in the
// completion status hardware gives (dsa-notes §1–2):
//
//   unknown opcode, or BATCH/DRAIN inside a batch              → BAD_OPCODE
//   an operation-specific flag (bits 16–23; none of the emulated
//     operations defines one)                                  → INVALID_FLAGS (+ invalid_flags)
//   completion record address not 32-byte aligned             → CRA_ALIGN
//   RCI with an invalid interrupt handle                       → INT_HANDLE_INVAL

import { DescWord } from '../descriptor.js';
import { EMULATED_OPCODES, FLAGS_MASK, Flag, Opcode, Status } from '../opcodes.js';
import { imsValid } from './registers.js';

/** Flag bits no emulated operation accepts. */
const RESERVED_FLAGS = 0xff0000;

/** The flag bits of `flags` that are reserved (INVALID_FLAGS' field), or 0. */
export function invalidFlagBits(flags: number): number {
  return flags & RESERVED_FLAGS;
}

/** Validation common to all descriptors: an error status, or 0. */
export function checkDescriptor(
  d: Int32Array,
  at: number,
  inBatch: boolean,
  registers: Int32Array,
): number {
  const fo = d[at + DescWord.FLAGS_OPCODE];
  const op = fo >>> 24;
  const flags = fo & FLAGS_MASK;
  if (!EMULATED_OPCODES.has(op) || (inBatch && (op === Opcode.BATCH || op === Opcode.DRAIN))) {
    return Status.BAD_OPCODE;
  }
  if (invalidFlagBits(flags)) return Status.INVALID_FLAGS;
  if (flags & Flag.CRAV && d[at + DescWord.COMPLETION_LO] & 31) return Status.CRA_ALIGN;
  if (flags & Flag.RCI && !imsValid(registers, d[at + DescWord.INT_HANDLE] & 0xffff)) {
    return Status.INT_HANDLE_INVAL;
  }
  return 0;
}
