// Runs of batch members the emulated device checks together: COMPVAL with pattern 0, the same
// flags and size, over contiguous memory (a packet's consecutive pages), with 32-byte aligned
// records. One zero check covers a whole zero packet; a packet with data is split into groups
// of 64 KiB, then members, so each byte is compared about once. Every member still gets the
// record per-member execution would write: only the emulator's speed differs.

import { joinAddrNumber } from '../address.js';
import { DESCRIPTOR_WORDS, DescWord } from '../descriptor.js';
import { FLAGS_MASK, Flag, Opcode } from '../opcodes.js';
import { Translation, type AddressSpace } from './address-space.js';
import { isZeroRange } from '../../../zero/zero-check.js';
import type { PatternMemory } from './memory-compare.js';
import { invalidFlagBits, reservedFieldsZero } from './validation.js';
import type { EmuWqHandle } from './handles.js';

/** Flags a member may carry and still be part of a run. */
const RUN_FLAGS_OK = Flag.CRAV | Flag.RCR | Flag.CC | Flag.BOF;
const GROUP_BYTES = 65536;

export class ZeroRuns {
  /** Per member of the last run classified: -1 when zero, else its first non-zero byte. */
  results = new Int32Array(1024);
  /** The records of the last run's members are consecutive in memory. */
  recordsContiguous = false;
  // The run found by the last scan, as batch member indices [start, end).
  private start = -1;
  private end = -1;
  private readonly t = new Translation();

  constructor(
    private readonly as: AddressSpace,
    private readonly patterns: PatternMemory,
  ) {}

  /** Forget the last scan (a new batch). */
  reset(): void {
    this.start = -1;
    this.end = -1;
  }

  /**
   * Classify the run starting at member `i` of the list at word `base` (`fetched` members):
   * fills `results` and returns how many members it covered; 0 when member `i` is to run alone
   * (no run of 2 or more, or a fault in reach: those members run one by one).
   */
  classify(list: Int32Array, base: number, i: number, fetched: number, wq: EmuWqHandle): number {
    if (i < this.start || i >= this.end) this.scan(list, base, i, fetched, wq);
    const n = this.end - i;
    if (n < 2) return 0;
    const m = base + i * DESCRIPTOR_WORDS;
    const size = list[m + DescWord.SIZE] >>> 0;
    const t = this.t;
    this.as.translate(list[m + DescWord.ADDR16_LO], list[m + DescWord.ADDR16_HI], n * size, t);
    const count = Math.floor(t.ok / size);
    if (count < n) this.end = i + count;
    if (count < 2) return 0;
    const buf = t.buf;
    const off = t.off;
    const res =
      this.results.length >= count ? this.results : (this.results = new Int32Array(count));
    // A range whose first byte is not zero is not zero: a packet or group that starts with a
    // normal page (half of them, on a half-normal guest) skips the zero check.
    if (buf[off] === 0 && isZeroRange(buf, off, count * size)) {
      res.fill(-1, 0, count);
      return count;
    }
    const group = Math.max(1, Math.floor(GROUP_BYTES / size));
    for (let g0 = 0; g0 < count; g0 += group) {
      const g = Math.min(group, count - g0);
      const at = off + g0 * size;
      if (g > 1 && buf[at] === 0 && isZeroRange(buf, at, g * size)) {
        res.fill(-1, g0, g0 + g);
        continue;
      }
      for (let k = g0; k < g0 + g; k++) {
        res[k] = this.patterns.zeroOrMismatch(buf, off + k * size, size);
      }
    }
    return count;
  }

  /** Find how far from member `i` the members form a run. */
  private scan(list: Int32Array, base: number, i: number, fetched: number, wq: EmuWqHandle) {
    this.start = i;
    this.end = i;
    const m = base + i * DESCRIPTOR_WORDS;
    const fo = list[m + DescWord.FLAGS_OPCODE];
    const flags = fo & FLAGS_MASK;
    if (fo >>> 24 !== Opcode.COMPVAL || flags & ~RUN_FLAGS_OK || invalidFlagBits(flags, wq)) return;
    if (!reservedFieldsZero(list, m, Opcode.COMPVAL)) return;
    if (list[m + DescWord.ADDR24_LO] !== 0 || list[m + DescWord.ADDR24_HI] !== 0) return;
    const size = list[m + DescWord.SIZE] >>> 0;
    if (size === 0 || size > wq.maxTransferSize) return;
    if (fo & Flag.CRAV && list[m + DescWord.COMPLETION_LO] & 31) return;
    const src0 = joinAddrNumber(list[m + DescWord.ADDR16_LO], list[m + DescWord.ADDR16_HI]);
    const rec0 = joinAddrNumber(list[m + DescWord.COMPLETION_LO], list[m + DescWord.COMPLETION_HI]);
    let n = 1;
    let recContig = true;
    const maxRun = Math.min(fetched - i, Math.floor(2 ** 30 / size));
    while (n < maxRun) {
      const k = m + n * DESCRIPTOR_WORDS;
      if (list[k + DescWord.FLAGS_OPCODE] !== fo) break;
      if (list[k + DescWord.ADDR24_LO] !== 0 || list[k + DescWord.ADDR24_HI] !== 0) break;
      if (list[k + DescWord.SIZE] >>> 0 !== size) break;
      if (
        joinAddrNumber(list[k + DescWord.ADDR16_LO], list[k + DescWord.ADDR16_HI]) !==
        src0 + n * size
      )
        break;
      if (list[k + DescWord.COMPLETION_LO] & 31 || !reservedFieldsZero(list, k, Opcode.COMPVAL))
        break;
      if (
        joinAddrNumber(list[k + DescWord.COMPLETION_LO], list[k + DescWord.COMPLETION_HI]) !==
        rec0 + n * 32
      )
        recContig = false;
      n++;
    }
    this.end = i + n;
    this.recordsContiguous = recContig;
  }
}
