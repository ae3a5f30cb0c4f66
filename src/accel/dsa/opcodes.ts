// Intel DSA opcodes, descriptor flags and completion status codes, with the values of
// linux include/uapi/linux/idxd.h (see /work/shared/reference/dsa-notes.md §1–2): every status
// code (statusName names them), the opcodes and flags the emulated device implements or checks.

/** `enum dsa_opcode`: the operations the emulated device runs. */
export const Opcode = {
  NOOP: 0x00,
  BATCH: 0x01,
  DRAIN: 0x02,
  MEMMOVE: 0x03,
  MEMFILL: 0x04,
  COMPARE: 0x05,
  /** Compare pattern: source at byte 16, 8-byte pattern at byte 24. */
  COMPVAL: 0x06,
} as const;

/** `IDXD_OP_FLAG_*` (descriptor bytes 4–6). */
export const Flag = {
  FENCE: 0x0001,
  /** Block on fault. */
  BOF: 0x0002,
  /** Completion record address valid. */
  CRAV: 0x0004,
  /** Request completion record. */
  RCR: 0x0008,
  /** Request completion interrupt (uses `int_handle`). */
  RCI: 0x0010,
  /** Check result: compare `result` with `expected_res`, SUCCESS_PRED on a false predicate. */
  CR: 0x0080,
  /** Cache control: allocate destination writes in the LLC. */
  CC: 0x0100,
} as const;

/** The 24 flag bits; bits 16–23 are operation-specific. */
export const FLAGS_MASK = 0xffffff;

/** Completion record status codes (`DSA_COMP_*`), byte 0 of the record, masked with 0x7f. */
export const Status = {
  NONE: 0x00,
  SUCCESS: 0x01,
  SUCCESS_PRED: 0x02,
  PAGE_FAULT_NOBOF: 0x03,
  PAGE_FAULT_IR: 0x04,
  BATCH_FAIL: 0x05,
  BATCH_PAGE_FAULT: 0x06,
  DR_OFFSET_NOINC: 0x07,
  DR_OFFSET_ERANGE: 0x08,
  DIF_ERR: 0x09,
  BAD_OPCODE: 0x10,
  INVALID_FLAGS: 0x11,
  NOZERO_RESERVE: 0x12,
  XFER_ERANGE: 0x13,
  DESC_CNT_ERANGE: 0x14,
  DR_ERANGE: 0x15,
  OVERLAP_BUFFERS: 0x16,
  DCAST_ERR: 0x17,
  DESCLIST_ALIGN: 0x18,
  INT_HANDLE_INVAL: 0x19,
  CRA_XLAT: 0x1a,
  CRA_ALIGN: 0x1b,
  ADDR_ALIGN: 0x1c,
  PRIV_BAD: 0x1d,
  TRAFFIC_CLASS_CONF: 0x1e,
  PFAULT_RDBA: 0x1f,
  HW_ERR1: 0x20,
  HW_ERR_DRB: 0x21,
  TRANSLATION_FAIL: 0x22,
  DRAIN_EVL: 0x26,
  BATCH_EVL_ERR: 0x27,
} as const;

/** `DSA_COMP_STATUS_MASK`: the code without bit 7. */
export const STATUS_MASK = 0x7f;
/** `DSA_COMP_STATUS_WRITE`: bit 7 marks a page fault on a write access. */
export const STATUS_WRITE_FAULT = 0x80;

/** Sizes and alignments the hardware enforces. */
export const DESCRIPTOR_SIZE = 64;
export const COMPLETION_RECORD_SIZE = 32;
export const COMPLETION_RECORD_ALIGN = 32;
export const DESCRIPTOR_LIST_ALIGN = 64;
/** Hardware batch limits: at least 2 descriptors, at most 1024 (DML hardware_limits.h). */
export const MIN_BATCH_SIZE = 2;
export const MAX_BATCH_SIZE = 1024;

const statusNames = new Map<number, string>(Object.entries(Status).map(([k, v]) => [v, k]));

/** "PAGE_FAULT_NOBOF" for 0x03 (and 0x83, a write fault), "0x2f" for an unknown code. */
export function statusName(status: number): string {
  const code = status & STATUS_MASK;
  const name = statusNames.get(code) ?? `0x${code.toString(16).padStart(2, '0')}`;
  return status & STATUS_WRITE_FAULT ? `${name}|WRITE` : name;
}

/**
 * Operations the emulated device implements, as an OPCAP-style set: every Opcode. Any other
 * opcode completes with BAD_OPCODE, as an unsupported opcode does on hardware.
 */
export const EMULATED_OPCODES: ReadonlySet<number> = new Set(Object.values(Opcode));

/**
 * The `op_cap` string sysfs shows (eight 32-bit words, most significant first) for a set of
 * opcodes, e.g. "00000000,…,0000007f" for NOOP..COMPVAL.
 */
export function opCapString(ops: Iterable<number>): string {
  const words = new Array<number>(8).fill(0);
  for (const op of ops) words[op >> 5] |= 1 << (op & 31);
  return words
    .reverse()
    .map((w) => (w >>> 0).toString(16).padStart(8, '0'))
    .join(',');
}
