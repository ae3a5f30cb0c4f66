// `npm run bench:zero`: livemig's CPU zero-page check against native loops over the same
// populated memory, in the same run: `Buffer.equals` on page- and packet-sized views (allocated
// outside the timed loop), and on zero memory a C AVX2 loop per page (bench/floor/zero-avx2.c,
// run in its own process, one run per round so that the two interleave).
//
//   node dist/src/bench/zero-check.js [--size 1G] [--runs 5] [--ratio 0] [--cc cc]

import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { compileC } from './c-program.js';
import { allocateBlocks, segmentViews, segmentWords } from '../ram/layout.js';
import { fillNormalPages, preallocate } from '../ram/fill.js';
import { classifyPages } from '../zero/zero-check.js';
import { parseSize } from '../util/size.js';
import { median } from './stats.js';

const { values } = parseArgs({
  options: {
    size: { type: 'string', default: '1G' },
    runs: { type: 'string', default: '5' },
    ratio: { type: 'string', default: '0' },
    'packet-pages': { type: 'string', default: '128' },
    cc: { type: 'string', default: process.env.CC ?? 'cc' },
  },
});

const size = parseSize(values.size!, 'M');
const ratio = Number(values.ratio);
const packetPages = Number(values['packet-pages']);
const blocks = allocateBlocks(size);
preallocate(blocks);
fillNormalPages(blocks, ratio);
const segs = segmentViews(blocks[0]);
const words = segmentWords(blocks[0]);
const pages = size / 4096;

function livemigCheck(): number {
  const list = new Uint32Array(packetPages);
  const out = new Uint32Array(packetPages);
  let normal = 0;
  for (let p = 0; p < pages; p += packetPages) {
    const n = Math.min(packetPages, pages - p);
    for (let i = 0; i < n; i++) list[i] = p + i;
    normal += classifyPages(segs, words, list, 0, n, out, 0);
  }
  return normal;
}

// The native loop: memcmp of every page against a zero page, via Buffer.equals.
const zeroPage = Buffer.alloc(4096);
const pageViews: Buffer[] = [];
for (const seg of segs)
  for (let off = 0; off < seg.length; off += 4096) pageViews.push(seg.subarray(off, off + 4096));
const zeroChunk = Buffer.alloc(packetPages * 4096);
const chunkViews: Buffer[] = [];
for (const seg of segs)
  for (let off = 0; off < seg.length; off += zeroChunk.length)
    chunkViews.push(seg.subarray(off, off + zeroChunk.length));

function nativePerPage(): number {
  let normal = 0;
  for (const v of pageViews) if (!v.equals(zeroPage)) normal++;
  return normal;
}

function nativePerChunk(): number {
  let nonzero = 0;
  for (const v of chunkViews) if (!v.equals(zeroChunk)) nonzero++;
  return nonzero;
}

function time(f: () => number): number {
  const t0 = performance.now();
  f();
  return performance.now() - t0;
}

const AVX2 = 'C AVX2 loop per page';
const AVX2_SOURCE = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../../bench/floor/zero-avx2.c',
);

/** One run of the C loop in its own process (only on zero memory, which it checks). */
function avx2Run(bin: string): number {
  return Number(execFileSync(bin, [String(size), '1'], { encoding: 'utf8' }).trim());
}

const runs = Number(values.runs);
const res: Record<string, number[]> = {
  livemig: [],
  'Buffer.equals per page': [],
  'Buffer.equals per packet': [],
};
const avx2 = ratio === 0 ? compileC(AVX2_SOURCE, values.cc!, ['-O2', '-mavx2']) : null;
if (avx2) res[AVX2] = [];
for (let r = 0; r < runs; r++) {
  res.livemig.push(time(livemigCheck));
  res['Buffer.equals per page'].push(time(nativePerPage));
  res['Buffer.equals per packet'].push(time(nativePerChunk));
  if (avx2) res[AVX2].push(avx2Run(avx2));
}
const gib = size / 1024 ** 3;
const native = ratio === 0 ? 'Buffer.equals per packet' : 'Buffer.equals per page';
process.stdout.write(
  `zero check over ${values.size} (normal page ratio ${ratio}), median of ${runs}\n`,
);
for (const [k, v] of Object.entries(res)) {
  process.stdout.write(
    `  ${k.padEnd(26)} ${median(v).toFixed(1).padStart(8)} ms  ${(gib / (median(v) / 1000)).toFixed(1)} GiB/s\n`,
  );
}
process.stdout.write(
  `  livemig / native (${native}): ${((100 * median(res[native])) / median(res.livemig)).toFixed(0)}% of native speed\n`,
);
if (avx2) {
  process.stdout.write(
    `  livemig / ${AVX2}: ${((100 * median(res[AVX2])) / median(res.livemig)).toFixed(0)}% of its throughput\n`,
  );
}
