// `livemig demo`: the main job on a built-in default. Two local processes, a 1 GiB guest with
// half its pages normal and the stress workload running, migrated over multifd with
// verification on; a progress bar on a TTY, then a summary. Exits 0 only if the migration
// completed and the destination's RAM verified identical.

import { SingleBar, Presets } from 'cli-progress';
import Table from 'cli-table3';
import { LocalPair } from './local-migration.js';
import { parseRatio } from './run.js';
import { formatBytes } from '../util/size.js';

export interface DemoOptions {
  ram: string;
  channels: string;
  zeroPageDetection: string;
  normalPageRatio: string;
  workload: string;
  json?: boolean;
}

type Info = Record<string, unknown> & {
  status: string;
  ram?: Record<string, number>;
  livemig?: Record<string, unknown>;
};

export async function demoCommand(o: DemoOptions): Promise<number> {
  const channels = Number(o.channels);
  if (!Number.isInteger(channels) || channels < 1) {
    throw new Error(`invalid --channels '${o.channels}': expected a positive integer`);
  }
  const tty = process.stderr.isTTY && !o.json;
  const say = (m: string): void => {
    if (!o.json) process.stderr.write(m + '\n');
  };
  say(`Starting source and destination guests (${o.ram}, workload ${o.workload}) ...`);
  const pair = await LocalPair.start({
    ram: o.ram,
    normalPageRatio: parseRatio(o.normalPageRatio),
    workload: o.workload,
  });
  let bar: SingleBar | null = null;
  try {
    say(
      `Migrating over ${channels} multifd channels, zero-page-detection=${o.zeroPageDetection} ...`,
    );
    if (tty) {
      bar = new SingleBar(
        {
          format:
            ' pass {pass} |{bar}| {percentage}% | {done} / {total} | {rate} | remaining {remaining}',
          hideCursor: true,
          stream: process.stderr,
        },
        Presets.shades_classic,
      );
      bar.start(100, 0, { pass: 1, done: '0 B', total: '?', rate: '-', remaining: '?' });
    }
    const { source, dest } = await pair.migrate(
      { multifd: true, events: true, 'x-verify-ram': true },
      { 'multifd-channels': channels, 'zero-page-detection': o.zeroPageDetection },
      (info) => updateBar(bar, info as Info),
    );
    bar?.stop();
    const src = source as Info;
    if (o.json) {
      process.stdout.write(JSON.stringify(src) + '\n');
    } else {
      process.stdout.write(summary(src, dest as Info) + '\n');
    }
    const ok = src.status === 'completed' && src.livemig?.verify === 'ok';
    if (!ok) {
      say(`Migration ${src.status}${src['error-desc'] ? `: ${String(src['error-desc'])}` : ''}`);
    }
    return ok ? 0 : 1;
  } finally {
    bar?.stop();
    await pair.close();
  }
}

function updateBar(bar: SingleBar | null, info: Info): void {
  if (!bar || !info.ram) return;
  const r = info.ram;
  const total = r.total || 1;
  // Progress never runs backwards: later passes show the remaining dirty bytes shrinking.
  const pct = Math.round(Number(info.livemig?.progress ?? 100 * (1 - r.remaining / total)));
  bar.update(pct, {
    pass: (r['dirty-sync-count'] ?? 0) + 1,
    done: formatBytes(r.transferred),
    total: formatBytes(total),
    rate: `${Math.round(r.mbps)} Mbps`,
    remaining: formatBytes(r.remaining),
  });
}

function summary(src: Info, dest: Info): string {
  const r = src.ram ?? {};
  const style = { head: [], border: [] };
  const t = new Table({ head: ['', 'value'], style });
  const totalTime = Number(src['total-time']);
  t.push(
    ['status', src.status],
    ['total time', `${totalTime} ms`],
    ['setup time', `${String(src['setup-time'])} ms`],
    ['downtime', `${String(src.downtime ?? '-')} ms`],
    ['throughput', `${r.mbps} Mbps`],
    ['transferred', `${formatBytes(r.transferred)} of ${formatBytes(r.total)} RAM`],
    ['pages', `${r.normal} normal, ${r.duplicate} zero`],
    ['passes (dirty syncs)', String(r['dirty-sync-count'])],
    ['RAM verified identical', src.livemig?.verify === 'ok' ? 'yes' : String(src.livemig?.verify)],
  );
  const cpu = new Table({ head: ['thread', 'CPU (ms)'], style });
  const srcCpu = (src.livemig?.['thread-cpu-ms'] ?? {}) as Record<string, number>;
  const dstCpu = (dest.livemig?.['thread-cpu-ms'] ?? {}) as Record<string, number>;
  for (const [name, ms] of Object.entries(srcCpu)) cpu.push([`source ${name}`, ms.toFixed(1)]);
  for (const [name, ms] of Object.entries(dstCpu)) cpu.push([`destination ${name}`, ms.toFixed(1)]);
  return `${t.toString()}\n${cpu.toString()}`;
}
