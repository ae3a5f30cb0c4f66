// `npm run bench:floor`: the machine's floor for the foundation's migration. Compiles
// bench/floor/loopback-floor.c (a minimal C migration with no user-space copy: writev from the
// source's RAM, readv into the destination's fresh RAM) and runs it like `npm run bench:migrate`
// runs livemig: separate processes, loopback, populated source, the same guests.
// `livemig bench --peer floor` runs the same program beside livemig, in the bench's tables.
//
//   node dist/src/bench/floor.js --ram 4G --channels 2 --runs 5 [--scenario zero|half|all]
//     [--idle-ms N]

import { Command, Option } from 'commander';
import Table from 'cli-table3';
import { stat } from './stats.js';
import { fmtStat } from './format.js';
import { FLOOR_IDLE_MS, compileFloor, floorRamMiB, runFloor, type FloorRun } from './floor-run.js';
import { integer, size } from '../cli/options.js';
import { parseSize } from '../util/size.js';

const SCENARIOS: Record<string, number> = { zero: 0, half: 0.5 };

interface FloorOptions {
  ram: string;
  channels: number;
  runs: number;
  scenario: 'zero' | 'half' | 'all';
  cc: string;
  idleMs: number;
}

async function main(o: FloorOptions): Promise<void> {
  const names = o.scenario === 'all' ? Object.keys(SCENARIOS) : [o.scenario];
  const ramMiB = floorRamMiB(parseSize(o.ram, 'M'));
  const bin = compileFloor(o.cc);
  const t = new Table({
    head: ['scenario (C floor)', 'total ms', 'CPU src s', 'CPU dst s', 'CPU src+dst s'],
    style: { head: [], border: [] },
  });
  for (const n of names) {
    const rs: FloorRun[] = [];
    for (let i = 0; i < o.runs; i++) {
      const r = await runFloor(bin, ramMiB, o.channels, SCENARIOS[n], o.idleMs);
      if (!r.verified) throw new Error(`loopback-floor: RAM differs: ${r.line}`);
      rs.push(r);
      process.stderr.write(
        `${n} run ${i + 1}/${o.runs}: total ${r.totalMs} ms, CPU src ${r.srcCpuMs} + dst ${r.dstCpuMs} ms\n`,
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
    `RAM ${o.ram}, ${o.channels} channels, ${o.runs} runs, medians (min–max)\n${t.toString()}\n`,
  );
}

new Command('npm run bench:floor --')
  .description("the machine's floor: a minimal C migration with no user-space copy")
  .option('--ram <size>', 'guest RAM, whole MiB (K/M/G; bare number = MiB)', size(1048576), '4G')
  .option('--channels <n>', 'channels', integer(1, 16), 2)
  .option('--runs <n>', 'runs per guest (medians, min-max)', integer(1, 1000), 3)
  .addOption(
    new Option('--scenario <name>', '100% zero, 50% normal, or both')
      .choices(['zero', 'half', 'all'])
      .default('all'),
  )
  .option('--cc <compiler>', 'the C compiler', process.env.CC ?? 'cc')
  .option(
    '--idle-ms <ms>',
    'wait between populating the source and the first send (memory the run before freed ages)',
    integer(0, 600000),
    FLOOR_IDLE_MS,
  )
  .action(main)
  .parseAsync(process.argv)
  .catch((e: Error) => {
    process.stderr.write(`bench:floor: ${e.message}\n`);
    process.exit(1);
  });
