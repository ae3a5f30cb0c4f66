// In-process fuzzing of the destination's two parsers: the multifd PacketParser and the main
// channel's ControlChannel. Each case must end in a ProtocolError or in success: nothing else
// may escape, nothing may hang, and RAM may change only at pages a packet validly named.

import { PassThrough } from 'node:stream';
import type { Socket } from 'node:net';
import { PacketParser, FEED_DONE } from '../migration/destination/packet-parser.js';
import { ControlChannel } from '../migration/control-channel.js';
import { ProtocolError, PAGE_SIZE } from '../migration/protocol.js';
import { allocateBlocks, pagesOf, segmentViews } from '../ram/layout.js';
import { Rng, controlStream, mutate, validStream } from './streams.js';

export interface FuzzReport {
  cases: number;
  rejected: number;
  accepted: number;
  failures: string[];
}

const BLOCK_BYTES = 256 * PAGE_SIZE;
const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);

/** Feed `input` in random chunks; stop at the first error. SYNC barriers pass at once. */
function feedAll(p: PacketParser, rng: Rng, input: Buffer): void {
  let pos = 0;
  while (pos < input.length) {
    const end = Math.min(input.length, pos + 1 + rng.int(9000));
    let at = pos;
    while (at !== FEED_DONE && at < end) at = p.feed(input, at, end);
    pos = end;
  }
}

export function fuzzPackets(cases: number, seed = 1): FuzzReport {
  const rng = new Rng(seed);
  const report: FuzzReport = { cases: 0, rejected: 0, accepted: 0, failures: [] };
  const blocks = allocateBlocks(2 * BLOCK_BYTES, BLOCK_BYTES);
  const shape = { blocks: blocks.map((b) => pagesOf(b.size)), packetPages: 64 };
  for (let c = 0; c < cases; c++) {
    const caseSeed = rng.next();
    const r = new Rng(caseSeed);
    for (const b of blocks) new Uint8Array(b.ram).fill(0); // padding included
    const received = blocks.map((b) => new SharedArrayBuffer(pagesOf(b.size)));
    const parser = new PacketParser(blocks, received, shape.packetPages);
    const base = validStream(r, shape);
    const input = r.int(5) === 0 ? base : mutate(r, base);
    const t0 = performance.now();
    try {
      feedAll(parser, r, input);
      report.accepted++;
    } catch (e) {
      if (e instanceof ProtocolError) report.rejected++;
      else report.failures.push(`case seed ${caseSeed}: ${(e as Error).stack ?? String(e)}`);
    }
    if (performance.now() - t0 > 1000) report.failures.push(`case seed ${caseSeed}: took over 1 s`);
    // RAM may be written only where the received bitmap says a page arrived.
    for (let b = 0; b < blocks.length; b++) {
      const ram = segmentViews(blocks[b])[0];
      const whole = new Uint8Array(blocks[b].ram);
      const outside =
        whole.subarray(0, blocks[b].base).some((v) => v !== 0) ||
        whole.subarray(blocks[b].base + blocks[b].size).some((v) => v !== 0);
      if (outside) {
        report.failures.push(`case seed ${caseSeed}: block ${b} written outside its pages`);
        break;
      }
      const recv = new Uint8Array(received[b]);
      for (let p = 0; p < recv.length; p++) {
        if (recv[p] !== 0) continue;
        // A page may be mid-copy when the stream broke off; such a page has no received bit
        // but is the one the parser was writing: allow only the packet in progress (≤ 1 page).
        const written = ZERO_PAGE.compare(ram, p * PAGE_SIZE, (p + 1) * PAGE_SIZE) !== 0;
        if (written && !partialPageAllowed(parser, b, p)) {
          report.failures.push(
            `case seed ${caseSeed}: block ${b} page ${p} written but never received`,
          );
          break;
        }
      }
    }
    report.cases++;
  }
  return report;
}

/** The page the parser was copying into when its input ended. */
function partialPageAllowed(parser: PacketParser, block: number, page: number): boolean {
  const cur = parser.pageInProgress();
  return cur !== null && cur.block === block && cur.page === page;
}

export function fuzzFrames(cases: number, seed = 2): FuzzReport {
  const rng = new Rng(seed);
  const report: FuzzReport = { cases: 0, rejected: 0, accepted: 0, failures: [] };
  for (let c = 0; c < cases; c++) {
    const caseSeed = rng.next();
    const r = new Rng(caseSeed);
    const stream = new PassThrough();
    const ctl = new ControlChannel(stream as unknown as Socket, r.int(2) === 0);
    let errors = 0;
    ctl.onError = () => errors++;
    ctl.onFrame = () => {};
    const base = controlStream(r);
    const input = r.int(4) === 0 ? base : mutate(r, base);
    try {
      for (let pos = 0; pos < input.length;) {
        const end = Math.min(input.length, pos + 1 + r.int(300));
        stream.emit('data', input.subarray(pos, end));
        pos = end;
      }
      if (errors > 1) report.failures.push(`case seed ${caseSeed}: ${errors} errors reported`);
      if (errors) report.rejected++;
      else report.accepted++;
    } catch (e) {
      report.failures.push(`case seed ${caseSeed}: ${(e as Error).stack ?? String(e)}`);
    }
    ctl.close();
    report.cases++;
  }
  return report;
}
