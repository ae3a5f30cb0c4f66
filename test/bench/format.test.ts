// The DSA evaluation's arithmetic and table shapes, on its own published numbers
// (/work/shared/reference/dsa-zero-page-detection.rst, "Performances").

import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  comparisonLines,
  cpuTable,
  fasterLine,
  fasterPercent,
  fmtStat,
  latencyTable,
  relativeSaving,
  renderAscii,
  renderMarkdown,
  runningTable,
  savingsLine,
  evaluationSavingsPercent,
} from '../../src/bench/format.js';
import { median, stat } from '../../src/bench/stats.js';
import type { GroupSummary, RunningRecord, Stat, ThreadCpu } from '../../src/bench/types.js';
import { threadRole } from '../../src/bench/types.js';

const one = (x: number): Stat => ({ median: x, min: x, max: x });

function threads(rows: [string, number][]): ThreadCpu[] {
  return rows.map(([name, ms]) => ({ name, role: threadRole(name), ms }));
}

// Scenario A of the DSA evaluation: baseline and DSA rows, and its published totals.
const EVALUATION_A_BASELINE = threads([
  ['live_migration', 5657.58],
  ['multifdsend_0', 3931.563],
  ['multifdsend_1', 4405.273],
  ['multifdsend_2', 3941.968],
  ['multifdsend_3', 5032.975],
  ['multifdsend_4', 4533.865],
  ['multifdsend_5', 4530.461],
  ['multifdsend_6', 5171.916],
  ['multifdsend_7', 4722.769],
]);
const EVALUATION_A_DSA = threads([
  ['live_migration', 6129.168],
  ['multifdsend_0', 2954.717],
  ['multifdsend_1', 2766.359],
  ['multifdsend_2', 2853.519],
  ['multifdsend_3', 2740.717],
  ['multifdsend_4', 2824.169],
  ['multifdsend_5', 2966.908],
  ['multifdsend_6', 2611.137],
  ['multifdsend_7', 3114.732],
  ['dsa_completion', 3612.564],
]);

function group(
  label: string,
  mode: GroupSummary['mode'],
  ts: ThreadCpu[],
  evaluationTotal: number,
  withEngines: number,
  total: number,
  down: number | null,
): GroupSummary {
  return {
    scenario: 'A',
    peer: 'livemig',
    mode,
    label,
    completedRuns: 1,
    threads: ts,
    evaluationTotalMs: one(evaluationTotal),
    totalWithEnginesMs: one(withEngines),
    totalTimeMs: one(total),
    endToEndMs: one(total),
    downtimeMs: down === null ? null : one(down),
    throughputMbps: one(41007),
    transferredBytes: one(51583797 * 1024),
    totalRamBytes: 102400520 * 1024,
    sourceCpuMs: null,
    destinationCpuMs: null,
    bothCpuMs: null,
    peakRssKiB: { source: null, destination: null },
    verified: 'ok',
  };
}

test('CPU savings: 41922 vs 32568 ms is the evaluation\'s "23% total CPU usage savings"', () => {
  assert.match(savingsLine(41922, 32568), /^23% total CPU usage savings \(exact 22\.3%\)$/);
  // Scenario B: 11154 vs 8700 ms, "22% CPU savings" in the evaluation.
  assert.match(savingsLine(11154, 8700), /^22% total CPU usage savings/);
  assert.equal(evaluationSavingsPercent(relativeSaving(41922, 32568)), 23);
  assert.equal(evaluationSavingsPercent(relativeSaving(11154, 8700)), 22);
  assert.equal(evaluationSavingsPercent(0), 0);
});

test('CPU savings: more CPU than the baseline is said so, not as a negative saving', () => {
  assert.equal(savingsLine(100, 150), '50% more total CPU usage (exact 50.0%)');
  assert.equal(savingsLine(0, 10), 'total CPU usage savings: n/a (no baseline CPU)');
});

test('latency: the evaluation\'s "Total time N% faster and down time N% faster"', () => {
  // Scenario B: 4867 vs 3888 ms, 20 vs 18 ms.
  assert.equal(fasterLine(4867, 3888, 20, 18), 'Total time 20% faster and down time 10% faster');
  // Scenario A: 10343 vs 9535 ms, 161 vs 135 ms.
  assert.equal(fasterLine(10343, 9535, 161, 135), 'Total time 8% faster and down time 16% faster');
  assert.equal(fasterLine(100, 110, 10, 10), 'Total time 10% slower and down time 0% faster');
  assert.equal(fasterLine(100, 90, null, 5), 'Total time 10% faster (no down time to compare)');
  assert.equal(fasterPercent(relativeSaving(4867, 3888)), 20);
});

test("CPU usage table: the evaluation's shape, totals on its last row, engines after", () => {
  const engines = threads([
    ['dsa0/engine0.0', 1000],
    ['dsa0/engine0.1', 500],
  ]);
  const base = group('Baseline', 'baseline', EVALUATION_A_BASELINE, 41922, 41922, 10343, 161);
  const dsa = group(
    'DSA offload (emulated)',
    'offload',
    [...EVALUATION_A_DSA, ...engines],
    32568,
    34068,
    9535,
    135,
  );
  const t = cpuTable([base, dsa]);
  assert.deepEqual(t.head, ['', 'comm', 'runtime(msec)', 'totaltime(msec)']);
  assert.equal(t.groups.length, 2);
  assert.deepEqual(t.groups[0][0], ['Baseline', 'live_migration', '5657.6', '']);
  assert.deepEqual(t.groups[0][8], ['', 'multifdsend_7', '4722.8', '41922']);
  const d = t.groups[1];
  assert.equal(d.length, 12);
  assert.deepEqual(d[9], ['', 'dsa_completion', '3612.6', '32568']);
  assert.deepEqual(d[10], ['', 'dsa0/engine0.0 (emulated device)', '1000.0', '']);
  assert.deepEqual(d[11], ['', 'dsa0/engine0.1 (emulated device)', '500.0', '34068 with engines']);

  const ascii = renderAscii(t).split('\n');
  // Every line as wide as the rules; a rule after the header and after every group.
  assert.ok(ascii.every((l) => l.length === ascii[0].length));
  assert.match(ascii[0], /^\|-+\|-+\|-+\|-+\|$/);
  assert.match(ascii[1], /^\| +\| comm +\| runtime\(msec\) +\| totaltime\(msec\) +\|$/);
  assert.equal(ascii.filter((l) => /^\|-/.test(l)).length, 4);
  assert.equal(ascii.length, 3 + 9 + 1 + 12 + 1);

  const lines = comparisonLines([base, dsa]);
  assert.deepEqual(lines.cpu, [
    "DSA offload (emulated) vs Baseline: 19% total CPU usage savings (exact 18.7%), counting the emulated engines' CPU",
    "DSA offload (emulated) vs Baseline: 23% total CPU usage savings (exact 22.3%), without the emulated engines (DSA hardware's engines use no CPU)",
  ]);
  assert.deepEqual(lines.latency, [
    'DSA offload (emulated) vs Baseline: Total time 8% faster and down time 16% faster',
  ]);
});

test("latency table: the evaluation's columns and units", () => {
  const base = group('Baseline', 'baseline', EVALUATION_A_BASELINE, 41922, 41922, 10343, 161);
  const t = latencyTable([base]);
  assert.deepEqual(t.head, [
    '',
    'total time',
    'down time',
    'throughput',
    'transferred-ram',
    'total-ram',
  ]);
  assert.deepEqual(t.groups[0][0], [
    'Baseline',
    '10343 ms',
    '161 ms',
    '41007.00 mbps',
    '51583797 kb',
    '102400520 kb',
  ]);
  const md = renderMarkdown(t).split('\n');
  assert.equal(md[0], '|  | total time | down time | throughput | transferred-ram | total-ram |');
  assert.equal(md[1], '| --- | --- | --- | --- | --- | --- |');
  assert.equal(md.length, 3);
});

test('medians with min-max', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 2, 3]), 2.5);
  assert.deepEqual(stat([5, 1, 3]), { median: 3, min: 1, max: 5 });
  assert.equal(stat([]), null);
  assert.equal(
    fmtStat({ median: 10343, min: 10100, max: 10500 }, 0, ' ms'),
    '10343 ms (10100–10500)',
  );
  assert.equal(fmtStat(one(161), 0, ' ms'), '161 ms');
  assert.equal(fmtStat(null), 'n/a');
});

test('markdown cells escape pipes', () => {
  assert.equal(renderMarkdown({ head: ['a'], groups: [[['x|y']]] }).split('\n')[2], '| x\\|y |');
});

test('running-guest table: converged and cancelled rows', () => {
  const r: RunningRecord = {
    dirtyRateMBps: 25,
    measuredDirtyRateMBps: 24.6,
    maxBandwidthBytesPerSec: 100 * 1048576,
    downtimeLimitMs: 300,
    timeCapMs: 15000,
    ramBytes: 1 << 30,
    converged: true,
    status: 'completed',
    error: null,
    passes: 3,
    expectedDowntimeMs: 120,
    expectedDowntimeSource: 'observed',
    downtimeMs: 140,
    totalTimeMs: 2100,
    transferredBytes: 1,
    verify: { method: 'x-verify-ram', result: 'ok' },
  };
  const no: RunningRecord = {
    ...r,
    dirtyRateMBps: 400,
    converged: false,
    status: 'cancelled',
    expectedDowntimeMs: 980,
    downtimeMs: null,
    verify: { method: 'x-verify-ram', result: 'not-checked' },
  };
  const t = runningTable([r, no]);
  assert.deepEqual(t.groups[0][0], [
    '25 / 25 MB/s',
    '100 MiB/s (105 MB/s)',
    '3',
    '120 ms',
    '140 ms',
    '300 ms',
    '2100 ms',
    'yes (RAM verified)',
  ]);
  assert.equal(t.groups[1][0][7], 'did not converge (cancelled after 15 s)');
  assert.equal(t.groups[1][0][4], '-');
});

test('thread roles of both peers', () => {
  assert.equal(threadRole('live_migration'), 'migration');
  assert.equal(threadRole('mig/src/main'), 'migration');
  assert.equal(threadRole('multifdsend_12'), 'channel');
  assert.equal(threadRole('mig/src/send_1'), 'channel');
  assert.equal(threadRole('multifdrecv_0'), 'channel');
  assert.equal(threadRole('dsa_completion'), 'accel-completion');
  assert.equal(threadRole('dsa0/engine0.3'), 'emulated-engine');
  assert.equal(threadRole('vcpu_0'), 'vcpu');
  assert.equal(threadRole('CPU 0/TCG'), 'vcpu');
  assert.equal(threadRole('main'), 'main');
  assert.equal(threadRole('worker'), 'other');
});
