// The receiving half of a multifd channel: a streaming parser that checks every header field,
// offset and zero range before it touches RAM, then copies normal pages into place and marks
// zero ranges received.
// It works on whatever chunks the socket delivers, and, given the socket's descriptor, reads a
// packet's pages straight into guest RAM (readPayload).

import {
  FLAG_SYNC,
  KNOWN_FLAGS,
  PACKET_HEADER_SIZE,
  PACKET_MAGIC,
  PAGE_SHIFT,
  PAGE_SIZE,
  PH,
  ProtocolError,
  ZERO_RANGES_SHIFT,
  packetHeaderBytes,
} from '../protocol.js';
import { readvSync } from 'node:fs';
import {
  offsetInSegment,
  segmentOf,
  pagesOf,
  segmentBytes,
  segmentViews,
  type RamBlockDesc,
} from '../../ram/layout.js';

import { runEnd, runView } from '../../ram/page-runs.js';
import { RECEIVED, firstWritten } from './received-map.js';
const enum State {
  Header,
  /** the normal pages' offsets and the zero ranges */
  Table,
  Payload,
}

export interface ParserStats {
  bytes: number;
  normal: number;
  zero: number;
  packets: number;
}

/** What `feed` stopped at: the end of the chunk, or a SYNC the caller must wait on. */
export const FEED_DONE = -1;

export class PacketParser {
  private state = State.Header;
  private readonly hdr: Buffer;
  private readonly hdr32: Uint32Array;
  private have = 0;
  private need = PACKET_HEADER_SIZE;
  private block = 0;
  private normal = 0;
  private zero = 0;
  /** zero-range entries of the current packet */
  private ranges = 0;
  /** the normal pages, in payload order */
  private readonly pages: Uint32Array;
  /** the zero ranges: first page and page count */
  private readonly rangeFirst: Uint32Array;
  private readonly rangeCount: Uint32Array;
  private payloadPage = 0;
  private payloadByte = 0;
  private readonly segs: Buffer[][];
  private readonly blockPages: number[];
  private readonly received: Uint8Array[];
  /** the blocks' segments as Uint8Arrays, for readPayload's views */
  private readonly bytes: Uint8Array[][];
  /**
   * readPayload's views of the current packet's pages, one per run of consecutive pages, made
   * at its first readPayload (from the payload page it is at) and kept until the packet ends: a
   * non-blocking readv may take only part of the packet, and the next one reuses them.
   */
  private readonly runs: Uint8Array[] = [];
  /** runs[j] holds payload pages [runFirst[j], runFirst[j + 1]) */
  private readonly runFirst: Uint32Array;
  /** runs made for the current packet (0: none yet) */
  private runCount = 0;
  /** the run the payload is in */
  private run = 0;
  /** readv's vector after a partial read: what is left of the run it stopped in, then the rest */
  private readonly iov: Uint8Array[] = [];
  /** touch each normal page before its payload arrives (off when readPayload places it) */
  prefault = true;
  /** the last data packet carried normal pages (so the next one likely does too) */
  expectPayload = false;
  /** pass the channel is in: data packets must carry it; a SYNC for it moves to the next */
  pass = 1;
  /** the pass of the SYNC that `feed` stopped at */
  syncPass = 0;
  readonly stats: ParserStats = { bytes: 0, normal: 0, zero: 0, packets: 0 };

  constructor(
    blocks: RamBlockDesc[],
    received: SharedArrayBuffer[],
    private readonly packetPages: number,
  ) {
    this.hdr = Buffer.alloc(packetHeaderBytes(packetPages));
    this.hdr32 = new Uint32Array(this.hdr.buffer, this.hdr.byteOffset, this.hdr.length >>> 2);
    this.pages = new Uint32Array(packetPages);
    this.rangeFirst = new Uint32Array(packetPages);
    this.rangeCount = new Uint32Array(packetPages);
    this.runFirst = new Uint32Array(packetPages + 1);
    this.segs = blocks.map((b) => segmentViews(b));
    this.blockPages = blocks.map((b) => pagesOf(b.size));
    this.received = received.map((r) => new Uint8Array(r));
    this.bytes = blocks.map((b) => segmentBytes(b));
  }

  /** Payload bytes the current packet still expects (0 between payloads). */
  get payloadLeft(): number {
    if (this.state !== State.Payload) return 0;
    return (this.normal - this.payloadPage) * PAGE_SIZE - this.payloadByte;
  }

  /**
   * Read what the socket `fd` has of the current packet's payload straight into its pages: one
   * readv, and the kernel's copy is the only one (through a read buffer, each byte is copied
   * twice). Only the offsets already checked are used. Returns the bytes read: 0 when the
   * socket has nothing now (EAGAIN) or at its end, which the socket's own reading then sees.
   */
  readPayload(fd: number): number {
    if (this.state !== State.Payload) return 0;
    if (this.runCount === 0) this.makeRuns();
    let n: number;
    try {
      n = readvSync(fd, this.vectorLeft());
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return 0;
      throw e;
    }
    this.advancePayload(n);
    return n;
  }

  /** The views of the payload left, from the page it is at: runs of consecutive pages. */
  private makeRuns(): void {
    const pages = this.pages;
    const bytes = this.bytes[this.block];
    let k = 0;
    for (let i = this.payloadPage; i < this.normal; k++) {
      const end = runEnd(pages, i, this.normal);
      this.runs[k] = runView(bytes, pages[i], end - i);
      this.runFirst[k] = i;
      i = end;
    }
    this.runs.length = k;
    this.runFirst[k] = this.normal;
    this.runCount = k;
    this.run = 0;
  }

  /**
   * The vector for the payload left: the packet's runs while none is read (the usual case: one
   * readv takes the packet's payload whole); after a partial read, a fresh view of what is left
   * of the run it stopped in, then the runs after it.
   */
  private vectorLeft(): Uint8Array[] {
    let r = this.run;
    while (this.runFirst[r + 1] <= this.payloadPage) r++;
    this.run = r;
    const first = this.runFirst[r];
    if (r === 0 && this.payloadPage === first && this.payloadByte === 0) return this.runs;
    const iov = this.iov;
    const skip = (this.payloadPage - first) * PAGE_SIZE + this.payloadByte;
    const pages = this.runFirst[r + 1] - first;
    iov[0] =
      skip === 0 ? this.runs[r] : runView(this.bytes[this.block], this.pages[first], pages, skip);
    let k = 1;
    for (let j = r + 1; j < this.runCount; j++) iov[k++] = this.runs[j];
    iov.length = k;
    return iov;
  }

  /** Account for `n` payload bytes that are in place (never more than the packet has left). */
  private advancePayload(n: number): void {
    const recv = this.received[this.block];
    this.stats.bytes += n;
    let byte = this.payloadByte + n;
    let page = this.payloadPage;
    for (; byte >= PAGE_SIZE; byte -= PAGE_SIZE, page++) {
      Atomics.store(recv, this.pages[page], RECEIVED.data);
    }
    this.payloadPage = page;
    this.payloadByte = byte;
    if (page === this.normal) this.resetHeader();
  }

  /** The page a payload copy is in the middle of, if any (for checks after a broken stream). */
  pageInProgress(): { block: number; page: number } | null {
    if (this.state !== State.Payload || this.payloadByte === 0) return null;
    return { block: this.block, page: this.pages[this.payloadPage] };
  }

  /** True when the stream is between packets (a clean place for it to end). */
  get atBoundary(): boolean {
    return this.state === State.Header && this.have === 0;
  }

  /**
   * Consume `buf[start, end)`. Returns FEED_DONE once all is consumed, or the position just
   * after a SYNC packet (then `syncPass` says which pass); the caller resumes from there.
   * Throws ProtocolError on any invalid field; nothing of that packet has touched RAM then.
   */
  feed(buf: Buffer, start: number, end: number): number {
    let pos = start;
    while (pos < end) {
      if (this.state === State.Payload) {
        pos = this.copyPayload(buf, pos, end);
        continue;
      }
      const n = Math.min(this.need - this.have, end - pos);
      buf.copy(this.hdr, this.have, pos, pos + n);
      this.have += n;
      pos += n;
      this.stats.bytes += n;
      if (this.have < this.need) break;
      if (this.state === State.Header) {
        if (this.onHeader()) {
          return pos;
        }
      } else {
        this.onTable();
      }
    }
    return FEED_DONE;
  }

  /** Check the fixed header. Returns true for a SYNC packet (complete in itself). */
  private onHeader(): boolean {
    const h = this.hdr32;
    if (h[PH.magic] !== PACKET_MAGIC)
      throw new ProtocolError('packet magic', h[PH.magic], `expected ${PACKET_MAGIC}`);
    const flags = h[PH.flags] & 0xffff;
    const ranges = h[PH.flags] >>> ZERO_RANGES_SHIFT;
    if ((flags & ~KNOWN_FLAGS) !== 0)
      throw new ProtocolError('packet flags', flags, `known flags are ${KNOWN_FLAGS}`);
    const normal = h[PH.normal];
    const zero = h[PH.zero];
    const pass = h[PH.pass];
    this.stats.packets++;
    if (pass !== this.pass) throw new ProtocolError('packet pass', pass, `expected ${this.pass}`);
    if (flags & FLAG_SYNC) {
      this.checkSync(normal + zero, ranges);
      this.syncPass = pass;
      this.pass = pass + 1;
      this.resetHeader();
      return true;
    }
    this.checkCounts(h[PH.block], normal, zero, ranges);
    this.block = h[PH.block];
    this.normal = normal;
    this.zero = zero;
    this.ranges = ranges;
    this.state = State.Table;
    this.need = packetHeaderBytes(normal + ranges);
    return false;
  }

  /** A SYNC carries nothing but its pass. */
  private checkSync(pages: number, ranges: number): void {
    if (pages !== 0) throw new ProtocolError('SYNC packet page count', pages, 'must be 0');
    if (ranges !== 0) throw new ProtocolError('SYNC packet zero-range count', ranges, 'must be 0');
  }

  /** A data packet's block and counts: inside the block list and the packet size. */
  private checkCounts(block: number, normal: number, zero: number, ranges: number): void {
    if (block >= this.segs.length) {
      throw new ProtocolError(
        'packet block id',
        block,
        `known blocks are 0..${this.segs.length - 1}`,
      );
    }
    if (normal > this.packetPages) {
      throw new ProtocolError('packet normal page count', normal, `limit is ${this.packetPages}`);
    }
    // A zero packet (no normal pages) may carry any number of zero pages, as up to a packet's
    // worth of ranges inside the block: a sender merges the all-zero packets of a write into one
    // (protocol 5). A packet with normal pages holds at most the packet size in all.
    if (normal > 0 && zero > this.packetPages - normal) {
      throw new ProtocolError(
        'packet zero page count',
        zero,
        `limit is ${this.packetPages - normal} with ${normal} normal pages`,
      );
    }
    if (normal === 0 && ranges > this.packetPages) {
      throw new ProtocolError(
        'packet zero-range count',
        ranges,
        `limit is ${this.packetPages} in a packet of zero pages only`,
      );
    }
    if (normal + zero === 0)
      throw new ProtocolError('packet page count', 0, 'a data packet carries at least one page');
    // Every range holds at least one page, so there are no more ranges than zero pages; and
    // zero pages come only as ranges.
    if (ranges > zero || (zero > 0 && ranges === 0)) {
      throw new ProtocolError(
        'packet zero-range count',
        ranges,
        zero === 0 ? 'must be 0 with no zero pages' : `must be 1..${zero} for ${zero} zero pages`,
      );
    }
  }

  /** The offsets and zero ranges are in: check them all, then apply the zero ranges. */
  private onTable(): void {
    const limit = this.blockPages[this.block];
    this.checkOffsets(limit);
    this.checkZeroRanges(limit);
    this.applyZeroRanges();
    if (this.prefault) this.prefaultNormal();
    this.stats.zero += this.zero;
    this.stats.normal += this.normal;
    this.expectPayload = this.normal > 0;
    if (this.normal === 0) {
      this.resetHeader();
      return;
    }
    this.state = State.Payload;
    this.payloadPage = 0;
    this.payloadByte = 0;
    this.runCount = 0;
  }

  /** The normal pages' u64 byte offsets: page-aligned and inside the block. */
  private checkOffsets(limit: number): void {
    const h = this.hdr32;
    let w = PACKET_HEADER_SIZE >>> 2;
    for (let i = 0; i < this.normal; i++, w += 2) {
      const lo = h[w];
      const hi = h[w + 1];
      if ((lo & (PAGE_SIZE - 1)) !== 0) {
        throw new ProtocolError('page offset', hi * 2 ** 32 + lo, 'not page-aligned');
      }
      const page = hi * 2 ** 20 + (lo >>> PAGE_SHIFT);
      if (hi >= 2 ** 12 || page >= limit) {
        throw new ProtocolError(
          'page offset',
          hi * 2 ** 32 + lo,
          `outside block ${this.block} of ${limit * PAGE_SIZE} bytes`,
        );
      }
      this.pages[i] = page;
    }
  }

  /**
   * The zero ranges (u32 first page, u32 count): each at least one page, inside the block, and
   * together exactly the header's zero count.
   */
  private checkZeroRanges(limit: number): void {
    const h = this.hdr32;
    let w = (PACKET_HEADER_SIZE >>> 2) + 2 * this.normal;
    let pages = 0;
    for (let i = 0; i < this.ranges; i++, w += 2) {
      const first = h[w];
      const count = h[w + 1];
      if (count === 0) {
        throw new ProtocolError('zero range page count', 0, 'a range holds at least one page');
      }
      if (first >= limit) {
        throw new ProtocolError(
          'zero range first page',
          first,
          `outside block ${this.block} of ${limit} pages`,
        );
      }
      if (count > limit - first) {
        throw new ProtocolError(
          'zero range page count',
          count,
          `pages ${first}.. pass the end of block ${this.block} (${limit} pages)`,
        );
      }
      pages += count;
      this.rangeFirst[i] = first;
      this.rangeCount[i] = count;
    }
    if (pages !== this.zero) {
      throw new ProtocolError('zero range total', pages, `the header says ${this.zero} zero pages`);
    }
  }

  /**
   * Zero pages: fresh destination memory is already zero, so a range of pages that never had
   * data is only marked received (one fill); a page that had data is zeroed.
   */
  private applyZeroRanges(): void {
    const recv = this.received[this.block];
    for (let i = 0; i < this.ranges; i++) {
      const end = this.rangeFirst[i] + this.rangeCount[i];
      let p = this.rangeFirst[i];
      for (;;) {
        const written = firstWritten(recv, p, end);
        recv.fill(RECEIVED.zero, p, written < 0 ? end : written);
        if (written < 0) break;
        this.zeroWrittenPage(written);
        p = written + 1;
      }
    }
  }

  /** A page that had data arrives as zero: clear its memory, and say it changed. */
  private zeroWrittenPage(p: number): void {
    const off = offsetInSegment(p);
    this.segs[this.block][segmentOf(p)].fill(0, off, off + PAGE_SIZE);
    Atomics.store(this.received[this.block], p, RECEIVED.data);
  }

  /**
   * Where pages are copied here (TLS), take their first-touch faults in one tight loop first:
   * faults inside the copy, between socket reads, cost several times more. Pages read in place
   * (readPayload) fault inside the kernel's copy, which is cheaper still (a 4 GiB half-normal
   * guest: 0.3-0.5 s less destination CPU than touching them here first).
   */
  private prefaultNormal(): void {
    const recv = this.received[this.block];
    const segs = this.segs[this.block];
    for (let i = 0; i < this.normal; i++) {
      const p = this.pages[i];
      if (recv[p] < RECEIVED.data) segs[segmentOf(p)][offsetInSegment(p)] = 0;
    }
  }

  private copyPayload(buf: Buffer, pos: number, end: number): number {
    const recv = this.received[this.block];
    const segs = this.segs[this.block];
    while (pos < end) {
      const p = this.pages[this.payloadPage];
      const n = Math.min(PAGE_SIZE - this.payloadByte, end - pos);
      const off = offsetInSegment(p) + this.payloadByte;
      buf.copy(segs[segmentOf(p)], off, pos, pos + n);
      pos += n;
      this.stats.bytes += n;
      this.payloadByte += n;
      if (this.payloadByte === PAGE_SIZE) {
        Atomics.store(recv, p, RECEIVED.data);
        this.payloadByte = 0;
        if (++this.payloadPage === this.normal) {
          this.resetHeader();
          return pos;
        }
      }
    }
    return pos;
  }

  private resetHeader(): void {
    this.state = State.Header;
    this.have = 0;
    this.need = PACKET_HEADER_SIZE;
  }
}
