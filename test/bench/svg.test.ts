// The per-scenario chart: a well-formed SVG with one bar per (peer, mode) and one segment per
// thread, the emulated engines hatched.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { failedRun } from '../../src/bench/run-bench.js';
import { summarize } from '../../src/bench/summary.js';
import { chartBars, escapeXml, niceStep, stackedBarSvg } from '../../src/bench/svg.js';
import { threadRole, type RunRecord } from '../../src/bench/types.js';
import { parseTags } from './helpers.js';

function run(mode: 'baseline' | 'offload', peer: 'livemig' | 'qemu', k: number): RunRecord {
  const r = failedRun('A', peer, 'x', mode, k, '');
  r.status = 'completed';
  const src = [
    ['live_migration', 100 * k],
    ['multifdsend_0', 200],
    ['multifdsend_1', 210],
  ] as [string, number][];
  if (mode === 'offload') {
    src.push(['dsa_completion', 30], ['dsa0/engine0.0', 80], ['dsa0/engine0.1', 70]);
  }
  r.cpu = {
    source: {
      processMs: 1000,
      threads: src.map(([name, ms]) => ({ name, role: threadRole(name), ms })),
      threadSource: 'query-migrate',
    },
    destination: {
      processMs: 700,
      threads: [
        { name: 'multifdrecv_0', role: 'channel', ms: 300 },
        { name: 'multifdrecv_1', role: 'channel', ms: 310 },
      ],
      threadSource: 'query-migrate',
    },
  };
  r.verify = { method: 'digest', result: 'ok' };
  return r;
}

test('chart: one bar per mode and peer, one rect per thread, balanced tags', () => {
  const runs = [1, 2, 3].flatMap((k) => [
    run('baseline', 'livemig', k),
    run('offload', 'livemig', k),
    run('baseline', 'qemu', k),
  ]);
  const groups = summarize(runs, ['dsa-emu:dsa0/wq0.0'], 'QEMU 7.2.22 (Debian)');
  const bars = chartBars(groups, runs);
  assert.deepEqual(
    bars.map((b) => b.label),
    ['Baseline', 'DSA offload (emulated)', 'QEMU 7.2.22'],
  );
  // Source: 3 threads + other; destination: 2 threads + other. Offload: + dsa_completion + 2 engines.
  assert.deepEqual(
    bars.map((b) => b.segments.length),
    [7, 10, 7],
  );
  const base = bars[0].segments;
  assert.equal(base.find((s) => s.name === 'live_migration')!.ms, 200, 'median of 100, 200, 300');
  assert.equal(
    base.find((s) => s.side === 'source' && s.name === 'other threads')!.ms,
    1000 - 200 - 410,
  );
  assert.equal(base.find((s) => s.side === 'destination' && s.name === 'other threads')!.ms, 90);

  const svg = stackedBarSvg('Scenario A <test> & "chart"', bars, 'Hatched: engines');
  const tags = parseTags(svg);
  assert.equal(tags[0].name, 'svg');
  assert.equal(tags.filter((t) => t.depth === 0).length, 1, 'one root element');
  assert.match(tags[0].attrs, /xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  // Rects per bar: split the document at each bar group.
  const barGroups = svg
    .split('<g class="bar"')
    .slice(1)
    .map((s) => s.slice(0, s.indexOf('</g>')));
  assert.equal(barGroups.length, 3);
  assert.deepEqual(
    barGroups.map((g) => (g.match(/<rect class="seg"/g) ?? []).length),
    [7, 10, 7],
  );
  assert.equal((barGroups[1].match(/url\(#engine-hatch\)/g) ?? []).length, 2);
  assert.ok(svg.includes('<pattern id="engine-hatch"'));
  assert.ok(svg.includes('Scenario A &lt;test&gt; &amp; &quot;chart&quot;'));
  // Segment heights are not negative and add up to at most the plot.
  for (const m of svg.matchAll(/<rect class="seg"[^>]* height="([\d.]+)"/g)) {
    assert.ok(Number(m[1]) >= 0 && Number(m[1]) <= 300);
  }
});

test('chart: no bars still gives a well-formed SVG', () => {
  parseTags(stackedBarSvg('empty', []));
});

test('axis steps are 1, 2 or 5 times a power of ten', () => {
  assert.equal(niceStep(1000), 200);
  assert.equal(niceStep(43000), 10000);
  assert.equal(niceStep(7), 2);
  assert.equal(niceStep(0), 1);
  assert.equal(escapeXml(`a<b>&"'`), 'a&lt;b&gt;&amp;&quot;&apos;');
});
