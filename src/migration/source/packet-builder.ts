// One multifd packet (docs/protocol.md, "Multifd packets") for the job in a channel slot: the
// header, the normal pages' offsets, the zero pages as ranges, then the normal pages, either as
// views of guest RAM for a vector write or copied after the table (TLS needs one buffer).
//
// A packet of consecutive pages that is all zero (every packet of an all-zero guest) is checked
// with one compare and written as one range: no list of its pages is built, and the destination
// marks it received with one fill. Such runs that follow one another in a write go into one zero
// packet, a range each (protocol 5): an all-zero 4 GiB guest's packets took ~51 KiB instead of
// 320 KiB (8192 packets), and the destination's per-packet work went with them.

import {
  FLAG_SYNC,
  PACKET_HEADER_SIZE,
  PACKET_MAGIC,
  PAGE_SIZE,
  PH,
  ZERO_RANGES_SHIFT,
  offsetHi,
  offsetLo,
  packetHeaderBytes,
} from '../protocol.js';
import {
  offsetInSegment,
  segmentBytes,
  segmentOf,
  segmentViews,
  segmentWords,
} from '../../ram/layout.js';
import { runEnd, runView } from '../../ram/page-runs.js';
import { classifyEachPage, isZeroRun } from '../../zero/zero-check.js';
import { CHAN_STAT, JOB_CLASSIFIED, JOB_KNOWN_ZERO, JOB_SYNC, MIG, SLOT } from './channel-slots.js';
import type { DsaZeroCheck } from './dsa-check.js';
import type { SendWorkerData } from './worker-data.js';
import type { VectorWriter } from './vector-writer.js';

const HEADER_WORDS = PACKET_HEADER_SIZE >>> 2;

export class PacketBuilder {
  private readonly slots: Int32Array;
  private readonly pagesView: Uint32Array;
  private readonly segs: Buffer[][];
  private readonly segWords: Int32Array[][];
  private readonly segBytes: Uint8Array[][];
  /** the pages of a packet sorted by the CPU check or the device: normal first, zero after */
  private readonly classified: Uint32Array;
  /** a packet's table holds at most this many entries (the destination's limit) */
  private readonly packetPages: number;
  /** the packet last built: its block, and its normal pages (list[listOff, listOff + normal)) */
  private block = 0;
  private normal = 0;
  private list: Uint32Array;
  private listOff = 0;
  /**
   * The zero packet (no normal pages) last built: where its header is (u32 word `zeroAt` of
   * `zeroHdr`), where it ends (byte `zeroEnd`), and its block and pass. A run built right
   * after it, in the same staging buffer, joins it.
   */
  private zeroHdr: Uint32Array | null = null;
  private zeroAt = 0;
  private zeroEnd = -1;
  private zeroBlock = -1;
  private zeroPass = -1;

  constructor(
    d: SendWorkerData,
    private readonly mig: Int32Array,
    private readonly stats: Float64Array,
    private readonly dsa: DsaZeroCheck | null,
  ) {
    this.slots = new Int32Array(d.slots);
    this.pagesView = new Uint32Array(d.slots);
    this.segs = d.blocks.map((b) => segmentViews(b));
    this.segWords = d.blocks.map((b) => segmentWords(b));
    this.segBytes = d.blocks.map((b) => segmentBytes(b));
    this.classified = new Uint32Array(d.packetPages);
    this.list = this.classified;
    this.packetPages = d.packetPages;
  }

  /** Bytes of the normal pages of the packet last built. */
  get payloadBytes(): number {
    return this.normal * PAGE_SIZE;
  }

  /**
   * Write the header and table of the packet for the slot at `base` into `hdr` (the staging
   * buffer's u32 words) at byte `at`; returns where they end. Its pages follow with pushPages
   * or copyPages.
   */
  build(base: number, slot: number, hdr: Uint32Array, at: number): number {
    const h = at >>> 2;
    const flags = this.slots[base + SLOT.flags];
    this.normal = 0;
    if (flags & JOB_SYNC) {
      this.zeroEnd = -1; // nothing joins a zero packet across a SYNC or a packet with data
      this.writeFixed(hdr, h, base, flags);
      hdr[h + PH.flags] = FLAG_SYNC;
      hdr[h + PH.normal] = 0;
      hdr[h + PH.zero] = 0;
      return at + PACKET_HEADER_SIZE;
    }
    const count = this.slots[base + SLOT.count];
    this.block = this.slots[base + SLOT.block];
    if (this.wholeRunZero(base, slot, flags, count)) {
      const first = this.pagesView[base + SLOT.header];
      this.stats[CHAN_STAT.zero] += count;
      if (this.joinsZeroPacket(hdr, at, base)) return this.addZeroRun(hdr, at, first, count);
      return this.startZeroPacket(hdr, at, base, flags, first, count);
    }
    this.zeroEnd = -1;
    this.writeFixed(hdr, h, base, flags);
    this.normal = this.classify(base, slot, flags, count);
    const w = this.writeOffsets(hdr, h + HEADER_WORDS);
    const ranges = this.writeZeroRanges(hdr, w, count);
    hdr[h + PH.flags] = ranges << ZERO_RANGES_SHIFT;
    hdr[h + PH.normal] = this.normal;
    hdr[h + PH.zero] = count - this.normal;
    this.stats[CHAN_STAT.normal] += this.normal;
    this.stats[CHAN_STAT.zero] += count - this.normal;
    return at + packetHeaderBytes(this.normal + ranges);
  }

  /**
   * Whether an all-zero run for the slot at `base`, to be laid out at byte `at` of `hdr`, can
   * join the zero packet before it: that packet ends right there (nothing was built after it
   * in this staging buffer), it is of the same block and pass, and its table has room.
   */
  private joinsZeroPacket(hdr: Uint32Array, at: number, base: number): boolean {
    return (
      hdr === this.zeroHdr &&
      at === this.zeroEnd &&
      this.block === this.zeroBlock &&
      this.slots[base + SLOT.pass] === this.zeroPass &&
      hdr[this.zeroAt + PH.flags] >>> ZERO_RANGES_SHIFT < this.packetPages
    );
  }

  /** A zero packet of one range at byte `at` of `hdr`, open for runs to join; returns its end. */
  private startZeroPacket(
    hdr: Uint32Array,
    at: number,
    base: number,
    flags: number,
    first: number,
    count: number,
  ): number {
    const h = at >>> 2;
    this.writeFixed(hdr, h, base, flags);
    hdr[h + PH.flags] = 1 << ZERO_RANGES_SHIFT;
    hdr[h + PH.normal] = 0;
    hdr[h + PH.zero] = count;
    hdr[h + HEADER_WORDS] = first;
    hdr[h + HEADER_WORDS + 1] = count;
    this.zeroHdr = hdr;
    this.zeroAt = h;
    this.zeroEnd = at + packetHeaderBytes(1);
    this.zeroBlock = this.block;
    this.zeroPass = hdr[h + PH.pass];
    return this.zeroEnd;
  }

  /** Add pages [first, first + count) to the zero packet that ends at `at`; returns its end. */
  private addZeroRun(hdr: Uint32Array, at: number, first: number, count: number): number {
    const z = this.zeroAt;
    hdr[z + PH.zero] += count;
    const last = (at >>> 2) - 2;
    if (hdr[last] + hdr[last + 1] === first) {
      hdr[last + 1] += count; // the run continues the last range (one channel)
      return at;
    }
    hdr[last + 2] = first;
    hdr[last + 3] = count;
    hdr[z + PH.flags] += 1 << ZERO_RANGES_SHIFT;
    this.zeroEnd = at + 8;
    return this.zeroEnd;
  }

  /**
   * The normal pages of the packet last built, as views for a vector write: one per run of
   * consecutive pages (the payload's order is the table's, so a run is one piece of it).
   */
  pushPages(vec: VectorWriter): void {
    const bytes = this.segBytes[this.block];
    const list = this.list;
    const end = this.listOff + this.normal;
    for (let i = this.listOff; i < end;) {
      const j = runEnd(list, i, end);
      vec.push(runView(bytes, list[i], j - i));
      i = j;
    }
  }

  /** The normal pages of the packet last built, copied into `buf` at `out`; returns the end. */
  copyPages(buf: Buffer, out: number): number {
    const segs = this.segs[this.block];
    for (let i = 0; i < this.normal; i++) {
      const page = this.list[this.listOff + i];
      const off = offsetInSegment(page);
      segs[segmentOf(page)].copy(buf, out, off, off + PAGE_SIZE);
      out += PAGE_SIZE;
    }
    return out;
  }

  /** Magic, block, pass and packet number: the fields every packet has. */
  private writeFixed(hdr: Uint32Array, h: number, base: number, flags: number): void {
    this.stats[CHAN_STAT.packets]++;
    hdr[h + PH.magic] = PACKET_MAGIC;
    hdr[h + PH.block] = flags & JOB_SYNC ? 0 : this.slots[base + SLOT.block];
    hdr[h + PH.pass] = this.slots[base + SLOT.pass];
    hdr[h + PH.packetNumLo] = Atomics.add(this.mig, MIG.packetNum, 1);
    hdr[h + PH.packetNumHi] = 0;
  }

  /**
   * A job of consecutive pages (what pass 1 cuts) that is all zero: known so without reading
   * it (JOB_KNOWN_ZERO), for zero-page-detection=multifd found with one compare, for dsa-accel by
   * the device's verdicts. Such a job joins the zero packet before it.
   */
  private wholeRunZero(base: number, slot: number, flags: number, count: number): boolean {
    if (flags & JOB_KNOWN_ZERO) return true;
    if (flags & JOB_CLASSIFIED) return false;
    const off = base + SLOT.header;
    if (!this.dsa) return isZeroRun(this.segs[this.block], this.pagesView, off, count);
    // dsa-accel: the device's verdicts, for a run of consecutive pages (as isZeroRun's)
    const pages = this.pagesView;
    if (count < 1 || pages[off + count - 1] !== pages[off] + count - 1) return false;
    const res = this.dsa.results(slot);
    for (let i = 0; i < count; i++) if (res[i] === 0) return false;
    return true;
  }

  /** Sort the job's pages, normal first; returns how many are normal. */
  private classify(base: number, slot: number, flags: number, count: number): number {
    const pagesOff = base + SLOT.header;
    if (flags & JOB_CLASSIFIED) {
      // legacy and none: live_migration sorted them already
      this.list = this.pagesView;
      this.listOff = pagesOff;
      return this.slots[base + SLOT.normal];
    }
    this.list = this.classified;
    this.listOff = 0;
    if (this.dsa) return this.sortByVerdicts(slot, pagesOff, count);
    const b = this.block;
    return classifyEachPage(
      this.segs[b],
      this.segWords[b],
      this.pagesView,
      pagesOff,
      count,
      this.classified,
      0,
    );
  }

  /** dsa-accel: the device's verdicts, normal pages to the front, zero pages to the back. */
  private sortByVerdicts(slot: number, pagesOff: number, count: number): number {
    const res = this.dsa!.results(slot);
    let normal = 0;
    let zeroAt = count;
    for (let i = 0; i < count; i++) {
      const page = this.pagesView[pagesOff + i];
      if (res[i] === 0) this.classified[normal++] = page;
      else this.classified[--zeroAt] = page;
    }
    return normal;
  }

  /** The normal pages' u64 byte offsets from word `w` on; returns the word after them. */
  private writeOffsets(hdr: Uint32Array, w: number): number {
    for (let i = 0; i < this.normal; i++) {
      const page = this.list[this.listOff + i];
      hdr[w++] = offsetLo(page);
      hdr[w++] = offsetHi(page);
    }
    return w;
  }

  /**
   * The zero pages (list[normal, count), filled from the back, so in descending order when the
   * job's pages ascend) as ranges of consecutive pages from word `w` on; returns how many.
   */
  private writeZeroRanges(hdr: Uint32Array, w: number, count: number): number {
    const list = this.list;
    const off = this.listOff;
    let ranges = 0;
    let next = -1;
    for (let i = count - 1; i >= this.normal; i--) {
      const page = list[off + i];
      if (page === next) {
        hdr[w - 1]++;
      } else {
        hdr[w++] = page;
        hdr[w++] = 1;
        ranges++;
      }
      next = page + 1;
    }
    return ranges;
  }
}
