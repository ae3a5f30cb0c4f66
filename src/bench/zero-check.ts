// `npm run bench:zero`: livemig's CPU zero-page check against native loops over the same
// populated memory, in the same run: `Buffer.equals` on page- and packet-sized views (allocated
// outside the timed loop), and on zero memory a C AVX2 loop per page (bench/floor/zero-avx2.c, in
// a process of its own that stays up and runs once per line it reads).
//
// The checks are measured alike: every one runs untimed first (V8 tiers the WebAssembly up from
// its baseline compiler, and the C process faults its memory in), then once per round, in an
// order that rotates from round to round so that none always follows the same neighbour. The
// report gives each check's median and range, and livemig's ratios as the median of the ratios of
// each round, which holds up better than a ratio of medians when the machine is busy.
//
//   node dist/src/bench/zero-check.js [--size 1G] [--runs 11] [--ratio 0] [--cc cc]

import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
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
import { median, minMax } from './stats.js';

const values = new Command('npm run bench:zero --')
  .description(
    "livemig's CPU zero check against native loops (memcmp; on zero memory, C AVX2) over the same memory",
  )
  .option('--size <size>', 'memory to check (K/M/G; bare number = MiB)', sizeText(4096), '1G')
  .option('--runs <n>', 'rounds (medians)', integer(1, 1000), 11)
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

/** The C loop's process (only on zero memory, which it checks): one run per line it reads. */
function avx2Process(bin: string): { run: () => Promise<number>; end: () => void } {
  const child = spawn(bin, [String(size)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  return {
    run: async () => {
      child.stdin.write('run\n');
      const line = await lines.next();
      if (line.done === true) throw new Error(`${bin} exited (code ${child.exitCode})`);
      return Number(line.value);
    },
    end: () => child.stdin.end(),
  };
}

type Check = () => number | Promise<number>;
const checks: Record<string, Check> = {
  livemig: () => time(livemigCheck),
  'Buffer.equals per page': () => time(nativePerPage),
  'Buffer.equals per packet': () => time(nativePerChunk),
};
const avx2 = ratio === 0 ? avx2Process(compileC(AVX2_SOURCE, values.cc, ['-O2', '-mavx2'])) : null;
if (avx2) checks[AVX2] = avx2.run;

const names = Object.keys(checks);
const res: Record<string, number[]> = Object.fromEntries(names.map((k) => [k, []]));
for (const k of names) await checks[k](); // untimed: tier-up, caches, the C process's faults
const runs = values.runs;
for (let r = 0; r < runs; r++) {
  for (let i = 0; i < names.length; i++) {
    const k = names[(r + i) % names.length];
    res[k].push(await checks[k]());
  }
}
avx2?.end();

/** livemig's throughput as a share of `other`'s: the median of the rounds' ratios. */
function shareOf(other: string): string {
  return (100 * median(res[other].map((ms, r) => ms / res.livemig[r]))).toFixed(0);
}

const gib = size / 1024 ** 3;
const native = ratio === 0 ? 'Buffer.equals per packet' : 'Buffer.equals per page';
process.stdout.write(
  `zero check over ${values.size} (normal page ratio ${ratio}), median of ${runs} interleaved rounds\n`,
);
const t = new Table({
  head: ['check', 'ms', 'min-max ms', 'GiB/s'],
  colAligns: ['left', 'right', 'right', 'right'],
  style: { head: [], border: [] },
});
for (const [k, v] of Object.entries(res)) {
  const [lo, hi] = minMax(v);
  t.push([
    k,
    median(v).toFixed(1),
    `${lo.toFixed(1)}-${hi.toFixed(1)}`,
    (gib / (median(v) / 1000)).toFixed(1),
  ]);
}
process.stdout.write(t.toString() + '\n');
process.stdout.write(`livemig / native (${native}): ${shareOf(native)}% of native speed\n`);
if (avx2) process.stdout.write(`livemig / ${AVX2}: ${shareOf(AVX2)}% of its throughput\n`);
