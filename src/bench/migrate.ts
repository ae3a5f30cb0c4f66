// `npm run bench:migrate`: the foundation's performance figures. Source and destination are
// separate local processes; the source guest is stopped (-S) and preallocated (--mem-prealloc);
// each scenario runs N times and the medians are reported with min-max.
//
//   node dist/src/bench/migrate.js --ram 4G --channels 2 --runs 3 [--scenario zero|half|all]
//                                  [--mode multifd] [--json FILE] [--settle-ms 1000]

import { setTimeout as sleep } from 'node:timers/promises';
import { Command, Option } from 'commander';
import { writeFileSync } from 'node:fs';
import Table from 'cli-table3';
import { LocalPair } from '../harness/local-migration.js';
import { median, minMax } from './stats.js';
import { parseSize } from '../util/size.js';
import { integer, size } from '../cli/options.js';
import { MAX_MULTIFD_CHANNELS, ZERO_PAGE_DETECTION_MODES } from '../migration/parameters.js';

interface RunResult {
  scenario: string;
  mode: string;
  totalMs: number;
  downtimeMs: number;
  setupMs: number;
  srcCpuMs: number;
  dstCpuMs: number;
  srcRssMiB: number;
  dstRssMiB: number;
  transferred: number;
  threads: Record<string, number>;
  verified: string;
}

interface MigrateBenchOptions {
  ram: string;
  channels: number;
  runs: number;
  scenario: 'zero' | 'half' | 'all';
  mode: string;
  verify: boolean;
  settleMs: number;
  json?: string;
}

const values = new Command('npm run bench:migrate --')
  .description('the foundation benchmark: a stopped, preallocated guest between two processes')
  .option('--ram <size>', 'guest RAM (K/M/G; bare number = MiB)', size(4096), '4G')
  .option('--channels <n>', 'multifd channels', integer(1, MAX_MULTIFD_CHANNELS), 2)
  .option('--runs <n>', 'runs per guest (medians, min-max)', integer(1, 1000), 3)
  .addOption(
    new Option('--scenario <name>', '100% zero, 50% normal, or both')
      .choices(['zero', 'half', 'all'])
      .default('all'),
  )
  .addOption(
    new Option('--mode <zpd>', 'zero-page-detection')
      .choices(ZERO_PAGE_DETECTION_MODES)
      .default('multifd'),
  )
  .option('--verify', "check the destination's RAM (x-verify-ram, inside the measurement)", false)
  .option('--settle-ms <ms>', 'let both processes settle after start-up', integer(0, 600_000), 1000)
  .option('--json <file>', 'write every run')
  .parse(process.argv)
  .opts<MigrateBenchOptions>();

const SCENARIOS: Record<string, number> = { zero: 0, half: 0.5 };

async function runOnce(scenario: string, ratio: number): Promise<RunResult> {
  const pair = await LocalPair.start({
    ram: values.ram,
    normalPageRatio: ratio,
    workload: 'none',
    sourcePaused: true,
    memPrealloc: true,
  });
  try {
    // A guest is up for a while before it is migrated: the processes' start-up (threads spawned
    // and warmed up ahead of a migration) is not part of the migration being measured.
    await sleep(values.settleMs);
    const src0 = pair.source.cpuMs();
    const dst0 = pair.dest.cpuMs();
    const { source, dest } = await pair.migrate(
      { multifd: true, 'x-verify-ram': values.verify },
      { 'multifd-channels': values.channels, 'zero-page-detection': values.mode },
      undefined,
      25,
    );
    if (source.status !== 'completed') {
      throw new Error(`migration ${source.status}: ${String(source['error-desc'])}`);
    }
    const ram = source.ram as Record<string, number>;
    const lm = source.livemig as Record<string, unknown>;
    const dlm = dest.livemig as Record<string, unknown> | undefined;
    return {
      scenario,
      mode: values.mode,
      totalMs: Number(source['total-time']),
      downtimeMs: Number(source.downtime),
      setupMs: Number(source['setup-time']),
      srcCpuMs: pair.source.cpuMs() - src0,
      dstCpuMs: pair.dest.cpuMs() - dst0,
      srcRssMiB: pair.source.peakRssKiB() / 1024,
      dstRssMiB: pair.dest.peakRssKiB() / 1024,
      transferred: ram.transferred,
      threads: {
        ...((lm['thread-cpu-ms'] as Record<string, number>) ?? {}),
        ...Object.fromEntries(
          Object.entries((dlm?.['thread-cpu-ms'] as Record<string, number>) ?? {}).map(([k, v]) => [
            `dst:${k}`,
            v,
          ]),
        ),
      },
      verified: String(lm.verify),
    };
  } finally {
    await pair.close();
  }
}

async function main(): Promise<void> {
  const runs = values.runs;
  const names = values.scenario === 'all' ? Object.keys(SCENARIOS) : [values.scenario];
  const ramBytes = parseSize(values.ram, 'M');
  const results: RunResult[] = [];
  for (const n of names) {
    for (let i = 0; i < runs; i++) {
      const r = await runOnce(n, SCENARIOS[n]);
      results.push(r);
      process.stderr.write(
        `${n} run ${i + 1}/${runs}: total ${r.totalMs} ms, downtime ${r.downtimeMs} ms, CPU src ${r.srcCpuMs} + dst ${r.dstCpuMs} ms\n`,
      );
    }
  }
  const t = new Table({
    head: [
      'scenario',
      'total ms',
      'downtime ms',
      'CPU src+dst s',
      'peak RSS src/dst MiB',
      'transferred MiB',
    ],
    style: { head: [], border: [] },
  });
  for (const n of names) {
    const rs = results.filter((r) => r.scenario === n);
    const fmt = (xs: number[], d = 0): string => {
      const [lo, hi] = minMax(xs);
      return `${median(xs).toFixed(d)} (${lo.toFixed(d)}–${hi.toFixed(d)})`;
    };
    t.push([
      `${n === 'zero' ? '100% zero' : '50% normal'} (${values.mode})`,
      fmt(rs.map((r) => r.totalMs)),
      fmt(rs.map((r) => r.downtimeMs)),
      fmt(
        rs.map((r) => (r.srcCpuMs + r.dstCpuMs) / 1000),
        2,
      ),
      `${median(rs.map((r) => r.srcRssMiB)).toFixed(0)} / ${median(rs.map((r) => r.dstRssMiB)).toFixed(0)}`,
      (median(rs.map((r) => r.transferred)) / 1048576).toFixed(1),
    ]);
  }
  process.stdout.write(
    `RAM ${values.ram} (${ramBytes} bytes), ${values.channels} channels, ${runs} runs, medians (min–max)\n${t.toString()}\n`,
  );
  const threadNames = [...new Set(results.flatMap((r) => Object.keys(r.threads)))];
  const ct = new Table({
    head: ['thread CPU ms (median)', ...names],
    style: { head: [], border: [] },
  });
  for (const th of threadNames) {
    ct.push([
      th,
      ...names.map((n) =>
        median(results.filter((r) => r.scenario === n).map((r) => r.threads[th] ?? 0)).toFixed(0),
      ),
    ]);
  }
  process.stdout.write(ct.toString() + '\n');
  if (values.json)
    writeFileSync(
      values.json,
      JSON.stringify({ ram: values.ram, channels: values.channels, results }, null, 2),
    );
}

main().catch((e: Error) => {
  process.stderr.write(`bench: ${e.message}\n`);
  process.exit(1);
});
