// `npm run bench:floor`: the machine's floor for the foundation's migration. Compiles
// bench/floor/loopback-floor.c (a minimal C migration with no user-space copy: writev from the
// source's RAM, readv into the destination's fresh RAM) and runs it like `npm run bench:migrate`
// runs livemig: separate processes, loopback, populated source, the same guests.
//
//   node dist/src/bench/floor.js --ram 4G --channels 2 --runs 5 [--scenario zero|half|all]

import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import Table from 'cli-table3';
import { stat } from './stats.js';
import { fmtStat } from './format.js';
import { parseSize } from '../util/size.js';

const SOURCE = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../../bench/floor/loopback-floor.c',
);
const SCENARIOS: Record<string, number> = { zero: 0, half: 0.5 };

interface FloorRun {
  totalMs: number;
  srcCpuMs: number;
  dstCpuMs: number;
}

const { values } = parseArgs({
  options: {
    ram: { type: 'string', default: '4G' },
    channels: { type: 'string', default: '2' },
    runs: { type: 'string', default: '3' },
    scenario: { type: 'string', default: 'all' },
    cc: { type: 'string', default: process.env.CC ?? 'cc' },
  },
});

/** Build the program once per source version, beside nothing in the checkout. */
function compile(): string {
  const dir = join(tmpdir(), 'livemig-floor');
  mkdirSync(dir, { recursive: true });
  const bin = join(dir, `loopback-floor-${Math.floor(statSync(SOURCE).mtimeMs)}`);
  try {
    statSync(bin);
    return bin;
  } catch {
    // not built yet
  }
  try {
    execFileSync(values.cc!, ['-O2', '-pthread', '-o', bin, SOURCE], { stdio: 'inherit' });
  } catch (e) {
    throw new Error(
      `cannot compile ${SOURCE} with '${values.cc}' (${(e as Error).message}); ` +
        `install a C compiler (Debian: apt-get install build-essential) or name one with --cc`,
    );
  }
  return bin;
}

function runOnce(bin: string, ramMiB: number, channels: number, ratio: number): FloorRun {
  const out = execFileSync(bin, [String(ramMiB), String(channels), String(ratio)], {
    encoding: 'utf8',
  });
  const field = (k: string): string => {
    const m = new RegExp(`${k}=(\\S+)`).exec(out);
    if (!m) throw new Error(`loopback-floor printed no ${k}: ${out.trim()}`);
    return m[1];
  };
  if (field('verified') !== 'ok') throw new Error(`loopback-floor: RAM differs: ${out.trim()}`);
  return {
    totalMs: Number(field('total_ms')),
    srcCpuMs: Number(field('src_cpu_ms')),
    dstCpuMs: Number(field('dst_cpu_ms')),
  };
}

function main(): void {
  const runs = Number(values.runs);
  const channels = Number(values.channels);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`bad --runs '${values.runs}': >= 1`);
  if (!Number.isInteger(channels) || channels < 1 || channels > 16) {
    throw new Error(`bad --channels '${values.channels}': 1..16`);
  }
  const names = values.scenario === 'all' ? Object.keys(SCENARIOS) : [values.scenario!];
  for (const n of names) {
    if (!(n in SCENARIOS)) throw new Error(`unknown --scenario '${n}': expected zero, half or all`);
  }
  const ramMiB = parseSize(values.ram!, 'M') / 1048576;
  const bin = compile();
  const t = new Table({
    head: ['scenario (C floor)', 'total ms', 'CPU src s', 'CPU dst s', 'CPU src+dst s'],
    style: { head: [], border: [] },
  });
  for (const n of names) {
    const rs: FloorRun[] = [];
    for (let i = 0; i < runs; i++) {
      const r = runOnce(bin, ramMiB, channels, SCENARIOS[n]);
      rs.push(r);
      process.stderr.write(
        `${n} run ${i + 1}/${runs}: total ${r.totalMs} ms, CPU src ${r.srcCpuMs} + dst ${r.dstCpuMs} ms\n`,
      );
    }
    const ms = (f: (r: FloorRun) => number): string => fmtStat(stat(rs.map(f)));
    const s = (f: (r: FloorRun) => number): string => fmtStat(stat(rs.map((r) => f(r) / 1000)), 2);
    t.push([
      n === 'zero' ? '100% zero' : '50% normal',
      ms((r) => r.totalMs),
      s((r) => r.srcCpuMs),
      s((r) => r.dstCpuMs),
      s((r) => r.srcCpuMs + r.dstCpuMs),
    ]);
  }
  process.stdout.write(
    `RAM ${values.ram}, ${channels} channels, ${runs} runs, medians (min–max)\n${t.toString()}\n`,
  );
}

try {
  main();
} catch (e) {
  process.stderr.write(`bench:floor: ${(e as Error).message}\n`);
  process.exit(1);
}
