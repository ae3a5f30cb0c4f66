// What `livemig demo` shows of a migration, whatever the machine: a progress bar while it runs
// (on a terminal) and a summary table with each thread's CPU time afterwards.

import type { SingleBar } from 'cli-progress';
import Table from 'cli-table3';
import { formatBytes } from '../util/size.js';
import { progressBar, type ProgressBarOptions } from './progress-bar.js';

export type Info = Record<string, unknown> & {
  status?: string;
  ram?: Record<string, number>;
  livemig?: Record<string, unknown>;
};

/**
 * A migration's progress bar, started at 0 (null when not on a terminal). `task` names what
 * migrates when a command runs many (the bench: "[3/12] A baseline run 2/3").
 */
export function migrationBar(
  tty: boolean,
  task = '',
  o: ProgressBarOptions = {},
): SingleBar | null {
  const bar = tty
    ? progressBar(
        `${task ? `${task} ` : ' '}pass {pass} |{bar}| {percentage}% | {done} / {ram} | {rate} | remaining {remaining}`,
        o,
      )
    : null;
  bar?.start(100, 0, { pass: 1, done: '0 B', ram: '?', rate: '-', remaining: '?' });
  return bar;
}

export function updateBar(bar: SingleBar | null, info: Info): void {
  if (!bar || !info.ram) return;
  const r = info.ram;
  const total = r.total || 1;
  // Progress never runs backwards: later passes show the remaining dirty bytes shrinking.
  const pct = Math.round(Number(info.livemig?.progress ?? 100 * (1 - r.remaining / total)));
  bar.update(Math.max(0, Math.min(100, pct)), {
    pass: (r['dirty-sync-count'] ?? 0) + 1,
    done: formatBytes(r.transferred ?? 0),
    ram: formatBytes(total),
    rate: `${Math.round(r.mbps ?? 0)} Mbps`,
    remaining: formatBytes(r.remaining ?? 0),
  });
}

/** The summary: the migration's figures, `extra` rows, then CPU per thread on both sides. */
export function summary(src: Info, dest: Info, extra: [string, string][] = []): string {
  const r = src.ram ?? {};
  const style = { head: [], border: [] };
  const t = new Table({ head: ['', 'value'], style });
  const totalTime = Number(src['total-time']);
  t.push(
    ['status', String(src.status)],
    ['total time', `${totalTime} ms`],
    ['setup time', `${String(src['setup-time'])} ms`],
    ['downtime', `${String(src.downtime ?? '-')} ms`],
    ['throughput', `${r.mbps} Mbps`],
    ['transferred', `${formatBytes(r.transferred)} of ${formatBytes(r.total)} RAM`],
    ['pages', `${r.normal} normal, ${r.duplicate} zero`],
    ['passes (dirty syncs)', String(r['dirty-sync-count'])],
    ['RAM verified identical', src.livemig?.verify === 'ok' ? 'yes' : String(src.livemig?.verify)],
    ...extra,
  );
  const cpu = new Table({ head: ['thread', 'CPU (ms)'], style });
  const srcCpu = (src.livemig?.['thread-cpu-ms'] ?? {}) as Record<string, number>;
  const dstCpu = (dest.livemig?.['thread-cpu-ms'] ?? {}) as Record<string, number>;
  for (const [name, ms] of Object.entries(srcCpu)) cpu.push([`source ${name}`, ms.toFixed(1)]);
  for (const [name, ms] of Object.entries(dstCpu)) cpu.push([`destination ${name}`, ms.toFixed(1)]);
  return `${t.toString()}\n${cpu.toString()}`;
}
