// `npm run bench:zero`: livemig's CPU zero-page check against native loops over the same
// populated memory, in the same run: `Buffer.equals` on page- and packet-sized views (allocated
// outside the timed loop), and on zero memory a C AVX2 loop per page (bench/floor/zero-avx2.c,
// run in its own process, one run per round so that the two interleave).
//
//   node dist/src/bench/zero-check.js [--size 1G] [--runs 5] [--ratio 0] [--cc cc]

import { execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import Table from 'cli-table3';
import { compileC } from './c-program.js';
import { allocateBlocks, segmentViews, segmentWords } from '../ram/layout.js';
import { fillNormalPages, preallocate } from '../ram/fill.js';
import { classifyPages } from '../zero/zero-check.js';
import { parseSize } from '../util/size.js';
import { integer, ratio as shareOfPages, size as sizeText } from '../cli/options.js';
import { median } from './stats.js';

const values = new Command('npm run bench:zero --')
  .description(
    "livemig's CPU zero check against native loops (memcmp; on zero memory, C AVX2) over the same memory",
  )
  .option('--size <size>', 'memory to check (K/M/G; bare number = MiB)', sizeText(4096), '1G')
  .option('--runs <n>', 'runs (medians)', integer(1, 1000), 5)
  .option('--ratio <r>', 'share of normal pages (0..1)', shareOfPages, 0)
  .option('--packet-pages <n>', 'pages per packet', integer(1, 65536), 128)
  .option('--cc <compiler>', 'C compiler for the AVX2 loop', process.env.CC ?? 'cc')
  .parse(process.argv)
  .opts<{ size: string; runs: number; ratio: number; packetPages: number; cc: string }>();

const size = parseSize(values.size, 'M');
const ratio = values.ratio;
const packetPages = values.packetPages;
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

const runs = values.runs;
const res: Record<string, number[]> = {
  livemig: [],
  'Buffer.equals per page': [],
  'Buffer.equals per packet': [],
};
const avx2 = ratio === 0 ? compileC(AVX2_SOURCE, values.cc, ['-O2', '-mavx2']) : null;
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
const t = new Table({
  head: ['check', 'ms', 'GiB/s'],
  colAligns: ['left', 'right', 'right'],
  style: { head: [], border: [] },
});
for (const [k, v] of Object.entries(res)) {
  t.push([k, median(v).toFixed(1), (gib / (median(v) / 1000)).toFixed(1)]);
}
process.stdout.write(t.toString() + '\n');
process.stdout.write(
  `livemig / native (${native}): ${((100 * median(res[native])) / median(res.livemig)).toFixed(0)}% of native speed\n`,
);
if (avx2) {
  process.stdout.write(
    `livemig / ${AVX2}: ${((100 * median(res[AVX2])) / median(res.livemig)).toFixed(0)}% of its throughput\n`,
  );
}
