// The DSA evaluation's tables and sentences: "CPU usage" (comm, runtime(msec),
// totaltime(msec)), the "N% total CPU usage savings" line, "Latency" (total time, down time,
// throughput, transferred-ram, total-ram) and "Total time N% faster and down time N% faster".
// One table model renders both as the evaluation's ASCII boxes (terminal) and as Markdown
// (report).

import Table from 'cli-table3';
import { engineTotalMs, FLOOR_LABEL } from './summary.js';
import type { GroupSummary, RunningRecord, Scenario, Stat } from './types.js';

// ---------------------------------------------------------------------------------------------
// Arithmetic

/** How much less `other` uses than `base`, in percent of `base` (negative: it uses more). */
export function relativeSaving(base: number, other: number): number {
  return base > 0 ? (100 * (base - other)) / base : NaN;
}

/**
 * Whole-percent CPU savings as the DSA evaluation prints them. Its figures (41922 -> 32568 ms:
 * "23%", exactly 22.31%; 11154 -> 8700 ms: "22%", exactly 22.00%) are reproduced by rounding
 * to 0.1% and then up to a whole percent; the exact value is always printed beside it.
 */
export function evaluationSavingsPercent(exact: number): number {
  const tenths = Math.round(Math.abs(exact) * 10) / 10;
  return Math.sign(exact) * Math.ceil(tenths);
}

/** Whole-percent "faster", rounded to nearest, as the evaluation's lines (20%, 8%, 16%, 10%). */
export function fasterPercent(exact: number): number {
  return Math.sign(exact) * Math.round(Math.abs(exact));
}

/** "23% total CPU usage savings (exact 22.3%)", or "5% more total CPU usage (exact 4.9%)". */
export function savingsLine(baseMs: number, otherMs: number): string {
  const exact = relativeSaving(baseMs, otherMs);
  if (!Number.isFinite(exact)) return 'total CPU usage savings: n/a (no baseline CPU)';
  const n = evaluationSavingsPercent(exact);
  const e = `(exact ${Math.abs(exact).toFixed(1)}%)`;
  return n >= 0 ? `${n}% total CPU usage savings ${e}` : `${-n}% more total CPU usage ${e}`;
}

function fasterWord(base: number, other: number): string {
  const exact = relativeSaving(base, other);
  if (!Number.isFinite(exact)) return 'n/a';
  const n = fasterPercent(exact);
  return n >= 0 ? `${n}% faster` : `${-n}% slower`;
}

/** "Total time 20% faster and down time 10% faster" (the evaluation's sentence). */
export function fasterLine(
  baseTotal: number,
  otherTotal: number,
  baseDown: number | null,
  otherDown: number | null,
): string {
  const total = `Total time ${fasterWord(baseTotal, otherTotal)}`;
  if (baseDown === null || otherDown === null) return `${total} (no down time to compare)`;
  return `${total} and down time ${fasterWord(baseDown, otherDown)}`;
}

// ---------------------------------------------------------------------------------------------
// Number formatting

export function fmtNum(x: number, digits = 0): string {
  return Number.isFinite(x) ? x.toFixed(digits) : 'n/a';
}

/** "10343" or "10343 (10100–10500)" when runs differ. */
export function fmtStat(s: Stat | null, digits = 0, unit = ''): string {
  if (!s || !Number.isFinite(s.median)) return 'n/a';
  const m = `${s.median.toFixed(digits)}${unit}`;
  if (s.min.toFixed(digits) === s.max.toFixed(digits)) return m;
  return `${m} (${s.min.toFixed(digits)}–${s.max.toFixed(digits)})`;
}

/** KiB, as QEMU's HMP prints "kbytes" and as the evaluation's "kb" columns are. */
export function kb(bytes: number): number {
  return bytes / 1024;
}

function scale(s: Stat | null, f: number): Stat | null {
  return s ? { median: s.median * f, min: s.min * f, max: s.max * f } : null;
}

// ---------------------------------------------------------------------------------------------
// Table model and renderers

export interface TableModel {
  head: string[];
  /** Groups of rows; the ASCII form draws a rule between groups, as the evaluation's do. */
  groups: string[][][];
}

/** The evaluation's box style, drawn by cli-table3: |---|---| rules, ASCII only. */
const ASCII_CHARS = {
  top: '-',
  'top-mid': '|',
  'top-left': '|',
  'top-right': '|',
  bottom: '-',
  'bottom-mid': '|',
  'bottom-left': '|',
  'bottom-right': '|',
  left: '|',
  'left-mid': '|',
  mid: '-',
  'mid-mid': '|',
  right: '|',
  'right-mid': '|',
  middle: '|',
};

/**
 * The evaluation's box style: cells left-aligned with one space of padding, a rule after the
 * header and after every group. A group is one cli-table3 row whose cells hold the group's lines,
 * so that rules fall between groups only.
 */
export function renderAscii(t: TableModel): string {
  const table = new Table({
    head: t.head,
    chars: ASCII_CHARS,
    style: { head: [], border: [], 'padding-left': 1, 'padding-right': 1 },
  });
  for (const g of t.groups) {
    table.push(t.head.map((_, i) => g.map((r) => r[i] ?? '').join('\n')));
  }
  return table.toString();
}

function mdCell(s: string): string {
  return s.replace(/\|/g, '\\|');
}

export function renderMarkdown(t: TableModel): string {
  const out = [
    '| ' + t.head.map(mdCell).join(' | ') + ' |',
    '| ' + t.head.map(() => '---').join(' | ') + ' |',
  ];
  for (const g of t.groups) {
    for (const r of g) out.push('| ' + t.head.map((_, i) => mdCell(r[i] ?? '')).join(' | ') + ' |');
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// The DSA evaluation's tables

export const ENGINE_SUFFIX = ' (emulated device)';

/**
 * CPU usage: per group, the source's live_migration, multifdsend_N and dsa_completion rows with
 * the evaluation's total on the last of them; then the emulated engines' rows, the last carrying
 * the total with the engines counted.
 */
export function cpuTable(groups: GroupSummary[]): TableModel {
  const out: string[][][] = [];
  for (const g of groups) {
    const listed = g.threads.filter(
      (t) => t.role === 'migration' || t.role === 'channel' || t.role === 'accel-completion',
    );
    const engines = g.threads.filter((t) => t.role === 'emulated-engine');
    const rows: string[][] = listed.map((t) => ['', t.name, fmtNum(t.ms, 1), '']);
    if (rows.length === 0) rows.push(['', '(no thread seen: see Both processes)', '', '']);
    rows[rows.length - 1][3] = fmtStat(g.evaluationTotalMs);
    for (const t of engines) rows.push(['', t.name + ENGINE_SUFFIX, fmtNum(t.ms, 1), '']);
    if (engines.length > 0)
      rows[rows.length - 1][3] = `${fmtStat(g.totalWithEnginesMs)} with engines`;
    rows[0][0] = g.label;
    out.push(rows);
  }
  return { head: ['', 'comm', 'runtime(msec)', 'totaltime(msec)'], groups: out };
}

export function latencyTable(groups: GroupSummary[]): TableModel {
  return {
    head: ['', 'total time', 'down time', 'throughput', 'transferred-ram', 'total-ram'],
    groups: groups.map((g) => [
      [
        g.label,
        fmtStat(g.totalTimeMs, 0, ' ms'),
        fmtStat(g.downtimeMs, 0, ' ms'),
        fmtStat(g.throughputMbps, 2, ' mbps'),
        fmtStat(scale(g.transferredBytes, 1 / 1024), 0, ' kb'),
        `${fmtNum(kb(g.totalRamBytes))} kb`,
      ],
    ]),
  };
}

/** Both processes: what a user pays end to end (not in the DSA evaluation; to compare peers). */
export function processTable(groups: GroupSummary[]): TableModel {
  const mib = (k: number | null): string => (k === null ? 'n/a' : (k / 1024).toFixed(0));
  return {
    head: [
      '',
      'until destination done',
      'CPU source (s)',
      'CPU destination (s)',
      'CPU both (s)',
      'peak RSS src / dst (MiB)',
      'RAM check',
    ],
    groups: groups.map((g) => [
      [
        g.label,
        fmtStat(g.endToEndMs, 0, ' ms'),
        fmtStat(scale(g.sourceCpuMs, 1 / 1000), 2),
        fmtStat(scale(g.destinationCpuMs, 1 / 1000), 2),
        fmtStat(scale(g.bothCpuMs, 1 / 1000), 2),
        `${mib(g.peakRssKiB.source)} / ${mib(g.peakRssKiB.destination)}`,
        g.verified,
      ],
    ]),
  };
}

/**
 * The sentences under the tables. Every livemig mode is compared with the baseline; the
 * offload twice when it has emulated engines: counting their CPU (what this machine spent) and
 * without it (DSA hardware's engines spend no CPU). QEMU is compared with livemig's baseline.
 */
export function comparisonLines(groups: GroupSummary[]): {
  cpu: string[];
  latency: string[];
  floor: string[];
} {
  const cpu: string[] = [];
  const latency: string[] = [];
  const floor = groups.filter((g) => g.toFloor).map(floorLine);
  const base = groups.find((g) => g.peer === 'livemig' && g.mode === 'baseline');
  if (!base) return { cpu, latency, floor };
  for (const g of groups) {
    if (g === base) continue;
    if (g.peer === 'livemig') {
      const engines = engineTotalMs(g.threads) > 0;
      if (engines) {
        cpu.push(
          `${g.label} vs ${base.label}: ${savingsLine(base.evaluationTotalMs.median, g.totalWithEnginesMs.median)}, counting the emulated engines' CPU`,
          `${g.label} vs ${base.label}: ${savingsLine(base.evaluationTotalMs.median, g.evaluationTotalMs.median)}, without the emulated engines (DSA hardware's engines use no CPU)`,
        );
      } else {
        cpu.push(
          `${g.label} vs ${base.label}: ${savingsLine(base.evaluationTotalMs.median, g.evaluationTotalMs.median)}`,
        );
      }
      latency.push(
        `${g.label} vs ${base.label}: ${fasterLine(
          base.totalTimeMs.median,
          g.totalTimeMs.median,
          base.downtimeMs?.median ?? null,
          g.downtimeMs?.median ?? null,
        )}`,
      );
    } else if (g.peer === 'qemu') {
      latency.push(peerLine(base, g));
    }
  }
  return { cpu, latency, floor };
}

/** issue 13's targets for livemig's baseline, as multiples of the floor's medians. */
const FLOOR_TARGETS: Partial<Record<Scenario, { totalTime: number; bothCpu?: number }>> = {
  A: { totalTime: 1.15 },
  B: { totalTime: 1.5, bothCpu: 2 },
};

/** A group against the floor of its scenario: its medians as multiples of the floor's. */
export function floorLine(g: GroupSummary): string {
  const t = g.peer === 'livemig' && g.mode === 'baseline' ? FLOOR_TARGETS[g.scenario] : undefined;
  const times = (r: number | null | undefined, target?: number): string => {
    if (r === null || r === undefined) return 'n/a';
    const within =
      target === undefined ? '' : ` (${r <= target ? 'within' : 'outside'} the ${target}× target)`;
    return `${r.toFixed(2)}×${within}`;
  };
  return (
    `${g.label} vs ${FLOOR_LABEL}: total time ${times(g.toFloor?.totalTime, t?.totalTime)}` +
    `, until destination done ${times(g.toFloor?.endToEnd)}` +
    `, CPU of both processes ${times(g.toFloor?.bothCpu, t?.bothCpu)}`
  );
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !(b > 0)) return 'n/a';
  const r = a / b;
  return `${r.toFixed(2)}× (${r <= 0.5 ? 'within' : 'outside'} the 0.5× target)`;
}

/** livemig's baseline against a QEMU row: the issue's targets are total time and CPU ≤ 0.5×. */
export function peerLine(base: GroupSummary, q: GroupSummary): string {
  return (
    `${base.label} vs ${q.label}: total time ${ratio(base.totalTimeMs.median, q.totalTimeMs.median)}` +
    `, until destination done ${ratio(base.endToEndMs.median, q.endToEndMs.median)}` +
    `, CPU of both processes ${ratio(base.bothCpuMs?.median, q.bothCpuMs?.median)}`
  );
}

/** The running-guest scenario: one row per dirty rate. */
export function runningTable(rs: RunningRecord[]): TableModel {
  const mbs = (b: number): string =>
    b > 0 ? `${(b / 1048576).toFixed(0)} MiB/s (${(b / 1e6).toFixed(0)} MB/s)` : 'unlimited';
  return {
    head: [
      'dirty rate (set / measured)',
      'max-bandwidth',
      'passes',
      'expected downtime',
      'down time',
      'downtime-limit',
      'total time',
      'converged',
    ],
    groups: rs.map((r) => [
      [
        `${r.dirtyRateMBps} / ${r.measuredDirtyRateMBps.toFixed(0)} MB/s`,
        mbs(r.maxBandwidthBytesPerSec),
        String(r.passes),
        r.expectedDowntimeMs === null
          ? 'n/a'
          : `${r.expectedDowntimeMs} ms${r.expectedDowntimeSource === 'derived' ? ' (derived)' : ''}`,
        r.downtimeMs === null ? '-' : `${r.downtimeMs} ms`,
        `${r.downtimeLimitMs} ms`,
        `${r.totalTimeMs} ms`,
        r.converged
          ? `yes${r.verify.result === 'ok' ? ' (RAM verified)' : r.verify.result === 'mismatch' ? ' (RAM MISMATCH)' : ''}`
          : r.status === 'cancelled'
            ? `did not converge (cancelled after ${(r.timeCapMs / 1000).toFixed(0)} s)`
            : `no: ${r.status}${r.error ? ` (${r.error})` : ''}`,
      ],
    ]),
  };
}
