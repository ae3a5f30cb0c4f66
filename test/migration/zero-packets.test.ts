// Zero packets (protocol 5): all-zero runs laid out one after another in a staging buffer join
// one packet, a range each, and the destination's parser takes that packet whole. The bytes go
// from the real PacketBuilder to the real PacketParser.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { allocateBlocks, pagesOf, segmentViews } from '../../src/ram/layout.js';
import {
  CHAN_STAT,
  JOB_KNOWN_ZERO,
  JOB_SYNC,
  MIG,
  SLOT,
  createSlots,
  slotBase,
} from '../../src/migration/source/channel-slots.js';
import { PacketBuilder } from '../../src/migration/source/packet-builder.js';
import type { SendWorkerData } from '../../src/migration/source/worker-data.js';
import { FEED_DONE, PacketParser } from '../../src/migration/destination/packet-parser.js';
import { RECEIVED } from '../../src/migration/destination/received-map.js';
import { PACKET_MAGIC, PAGE_SIZE, PH, ZERO_RANGES_SHIFT } from '../../src/migration/protocol.js';

const PACKET_PAGES = 16;

/** A source with one channel over a 1 MiB block, and a destination parser for the same block. */
function pair() {
  const blocks = allocateBlocks(1 << 20);
  const slots = createSlots(1);
  const slotWords = new Int32Array(slots);
  const pageWords = new Uint32Array(slots);
  const stats = new Float64Array(CHAN_STAT.size);
  const d = { slots, blocks, packetPages: PACKET_PAGES } as unknown as SendWorkerData;
  const builder = new PacketBuilder(
    d,
    new Int32Array(new SharedArrayBuffer(4 * MIG.size)),
    stats,
    null,
  );
  const staging = Buffer.alloc(1 << 20);
  const hdr = new Uint32Array(staging.buffer, staging.byteOffset, staging.length >>> 2);
  let at = 0;
  let slot = 0;
  /** Lay out the job of pages [first, first + count), its pages copied after it. */
  const job = (first: number, count: number, flags = 0, pass = 1): number => {
    const base = slotBase(0, slot++);
    slotWords[base + SLOT.block] = 0;
    slotWords[base + SLOT.count] = count;
    slotWords[base + SLOT.pass] = pass;
    slotWords[base + SLOT.flags] = flags;
    for (let i = 0; i < count; i++) pageWords[base + SLOT.header + i] = first + i;
    const start = at;
    at = builder.copyPages(staging, builder.build(base, slot, hdr, at));
    return start;
  };
  const dstBlocks = allocateBlocks(1 << 20);
  const received = dstBlocks.map((b) => new SharedArrayBuffer(pagesOf(b.size)));
  const parser = new PacketParser(dstBlocks, received, PACKET_PAGES);
  return {
    src: segmentViews(blocks[0])[0],
    dst: segmentViews(dstBlocks[0])[0],
    recv: new Uint8Array(received[0]),
    staging,
    hdr,
    stats,
    job,
    parser,
    end: () => at,
  };
}

test('all-zero runs in a row are one packet of ranges; data or a SYNC closes it', () => {
  const p = pair();
  p.src[40 * PAGE_SIZE + 100] = 7; // page 40: the run 32..47 is not all zero
  const first = p.job(0, 16);
  assert.equal(p.end(), first + 40, 'a zero packet: its header and one range');
  p.job(48, 16);
  assert.equal(p.end(), first + 48, 'a run elsewhere adds a range (8 bytes)');
  p.job(64, 16);
  assert.equal(p.end(), first + 48, 'a run that continues the last range extends it');
  const withData = p.job(32, 16);
  const afterData = p.job(96, 16);
  assert.ok(afterData > withData, 'a run after a packet with data starts a new packet');
  const h = first >>> 2;
  assert.equal(p.hdr[h + PH.normal], 0);
  assert.equal(p.hdr[h + PH.zero], 48);
  assert.equal(p.hdr[h + PH.flags] >>> ZERO_RANGES_SHIFT, 2);
  assert.deepEqual([...p.hdr.subarray(h + 8, h + 12)], [0, 16, 48, 32]);
  const sync = p.job(0, 0, JOB_SYNC);
  assert.ok(p.job(112, 16, 0, 2) > sync, 'nor does a run join across a SYNC');
  assert.equal(p.stats[CHAN_STAT.packets], 5, 'packets on the wire, not jobs');
  assert.equal(p.stats[CHAN_STAT.zero], 16 * 6 - 1);
  assert.equal(p.stats[CHAN_STAT.normal], 1);

  // The destination takes the bytes as they are: every page of each run marked, page 40 data.
  const stop = p.parser.feed(p.staging, 0, p.end());
  assert.equal(stop, sync + 32, 'the parser stops at the SYNC');
  assert.equal(p.parser.feed(p.staging, stop, p.end()), FEED_DONE);
  assert.equal(p.parser.stats.packets, 5);
  assert.equal(p.parser.stats.zero, 16 * 6 - 1);
  for (let page = 0; page < 128; page++) {
    const sent = page < 16 || (page >= 32 && page < 80) || page >= 96;
    const want = page === 40 ? RECEIVED.data : sent ? RECEIVED.zero : RECEIVED.never;
    assert.equal(p.recv[page], want, `page ${page}`);
  }
  assert.equal(p.dst[40 * PAGE_SIZE + 100], 7);
});

test('a known-zero job is sent as zero pages without reading them, and joins a zero packet', () => {
  const p = pair();
  // Bytes the known-zero map would never allow: they show that the job's pages are not read.
  p.src[20 * PAGE_SIZE + 9] = 1;
  const first = p.job(0, 16);
  p.job(16, 16, JOB_KNOWN_ZERO);
  assert.equal(p.end(), first + 40, 'one zero packet, its one range extended');
  assert.deepEqual([...p.hdr.subarray((first >>> 2) + 8, (first >>> 2) + 10)], [0, 32]);
  assert.equal(p.stats[CHAN_STAT.zero], 32);
  assert.equal(p.stats[CHAN_STAT.normal], 0);
  assert.equal(p.parser.feed(p.staging, 0, p.end()), FEED_DONE);
  for (let page = 0; page < 32; page++) assert.equal(p.recv[page], RECEIVED.zero, `page ${page}`);
});

test('a zero packet holds at most a packet size of ranges', () => {
  const p = pair();
  // Runs of one page with gaps between them: one range each.
  const starts = Array.from({ length: PACKET_PAGES + 1 }, (_, i) => p.job(2 * i, 1));
  assert.deepEqual(
    starts.map((s) => s - starts[0]),
    [
      ...Array.from({ length: PACKET_PAGES }, (_, i) => (i === 0 ? 0 : 32 + 8 * i)),
      32 + 8 * PACKET_PAGES,
    ],
    'ranges 1..16 share a packet, the 17th starts the next',
  );
  assert.equal(p.parser.feed(p.staging, 0, p.end()), FEED_DONE);
  assert.equal(p.parser.stats.packets, 2);
  for (let i = 0; i <= PACKET_PAGES; i++) assert.equal(p.recv[2 * i], RECEIVED.zero);
  assert.equal(p.recv[1], RECEIVED.never);
});

test('the destination refuses a zero packet of more ranges than a packet size', () => {
  const p = pair();
  const ranges = PACKET_PAGES + 1;
  const bytes = Buffer.alloc(32 + 8 * ranges);
  const w = new Uint32Array(bytes.buffer, bytes.byteOffset, bytes.length >>> 2);
  w[PH.magic] = PACKET_MAGIC;
  w[PH.flags] = ranges << ZERO_RANGES_SHIFT;
  w[PH.zero] = ranges;
  w[PH.pass] = 1;
  for (let i = 0; i < ranges; i++) [w[8 + 2 * i], w[9 + 2 * i]] = [2 * i, 1];
  assert.throws(
    () => p.parser.feed(bytes, 0, bytes.length),
    /invalid packet zero-range count 17: limit is 16 in a packet of zero pages only/,
  );
  assert.equal(p.recv[0], RECEIVED.never, 'nothing applied');
});
