// The PC bench's results from canned runs: they follow the schema, and the report shows the
// zero-page share after boot, both downtime definitions, every run with its checks, the
// nothing-lost series and the issue's targets.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchConfig, problems } from '../../src/cli/bench.js';
import { machineInfo } from '../../src/bench/machine-info.js';
import { pcRunLine } from '../../src/bench/pc-bench.js';
import { markdownReport, terminalReport } from '../../src/bench/report.js';
import { failedRun } from '../../src/bench/run-bench.js';
import { validate } from '../../src/bench/schema.js';
import { summarize } from '../../src/bench/summary.js';
import {
  RESULTS_SCHEMA_ID,
  type BenchResults,
  type Peer,
  type PcScenario,
  type RunRecord,
} from '../../src/bench/types.js';

const QEMU = 'QEMU 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)';

function run(
  scenario: PcScenario,
  peer: Peer,
  n: number,
  o: { total: number; down: number; paused: number; check: number; zero?: number },
): RunRecord {
  const r = failedRun(scenario, peer, peer === 'qemu' ? QEMU : 'livemig 0.1.0', 'baseline', n, '');
  Object.assign(r, {
    status: 'completed',
    error: null,
    totalTimeMs: o.total,
    endToEndMs: o.total + 20,
    downtimeMs: o.down,
    zeroPages: o.zero ?? 55000,
    normalPages: 10000,
    totalRamBytes: 65536 * 4096,
    passes: peer === 'qemu' ? 4 : 3,
  });
  r.cpu.source = { processMs: 300, threads: [], threadSource: 'query-migrate' };
  r.cpu.destination = { processMs: 200, threads: [], threadSource: 'query-migrate' };
  r.peakRssKiB = { source: 450 * 1024, destination: 220 * 1024 };
  r.verify = { method: peer === 'qemu' ? 'byte-compare' : 'x-verify-ram', result: 'ok' };
  r.pc = {
    downtimeLimitMs: scenario === 'lossless' ? 10 : 300,
    dirtySync:
      peer === 'livemig'
        ? {
            count: 3,
            totalMs: 45,
            meanMs: 15,
            maxMs: 19.5,
            meanCpuMs: 6,
            maxCpuMs: 8.25,
            pagesFound: 70,
          }
        : null,
    guestPausedMs: o.paused,
    verifyPauseMs: o.check,
    shell: 'ok',
    file: 'ok',
    checkError: null,
    progress:
      scenario === 'idle'
        ? null
        : {
            beforeCopies: 38,
            beforeMs: 2939,
            beforeRate: 12.9,
            duringCopies: 4,
            windowMs: 500,
            excludedMs: o.check,
            duringRate: 10.3,
            ratio: 0.8,
          },
    differingPages: peer === 'qemu' ? 0 : null,
    zeroShare: (o.zero ?? 55000) / ((o.zero ?? 55000) + 10000),
  };
  return r;
}

function results(): BenchResults {
  const dir = mkdtempSync(join(tmpdir(), 'livemig-pc-report-'));
  try {
    writeFileSync(join(dir, 'k'), 'k');
    writeFileSync(join(dir, 'i'), 'i');
    const config = benchConfig({
      machine: 'pc',
      channels: '2',
      runs: '1',
      scenario: 'idle,busy,lossless',
      modes: 'baseline',
      workload: 'none',
      accelPath: [],
      verify: true,
      dirtyRates: '25',
      maxBandwidth: '100M',
      downtimeLimit: '300',
      convergeTimeout: '15',
      peer: 'qemu',
      kernel: join(dir, 'k'),
      initrd: join(dir, 'i'),
    });
    const q = run('idle', 'qemu', 1, {
      total: 1200,
      down: 2,
      paused: 300,
      check: 250,
      zero: 59000,
    });
    q.verify.result = 'mismatch';
    q.pc!.differingPages = 9;
    const broken = run('lossless', 'qemu', 1, { total: 2400, down: 49, paused: 330, check: 260 });
    broken.status = 'failed';
    broken.error = "the migration completed, but the destination's shell did not answer\n  | panic";
    broken.pc!.shell = 'failed';
    const runs = [
      run('idle', 'livemig', 1, { total: 420, down: 40, paused: 90, check: 50, zero: 55361 }),
      q,
      run('busy', 'livemig', 1, { total: 900, down: 150, paused: 270, check: 120 }),
      run('busy', 'qemu', 1, { total: 800, down: 100, paused: 200, check: 150 }),
      run('lossless', 'livemig', 1, { total: 1500, down: 9, paused: 100, check: 90 }),
      broken,
    ];
    return {
      schema: RESULTS_SCHEMA_ID,
      createdAt: new Date(0).toISOString(),
      command: 'livemig bench --machine pc --peer qemu',
      machine: machineInfo(),
      config,
      qemu: { path: '/usr/bin/qemu-system-i386', version: QEMU, zeroPageDetection: 'x' },
      runs,
      summary: summarize(runs, config.accelPath, QEMU),
      running: [],
      skipped: [],
      pc: {
        boots: [
          { peer: 'livemig', scenario: 'idle', ms: 15300 },
          { peer: 'qemu', scenario: 'idle', ms: 5400 },
        ],
        freshZeroShare: [
          { peer: 'livemig', zeroPages: 55361, normalPages: 10000, extraPages: 26, share: 0.847 },
          { peer: 'qemu', zeroPages: 59000, normalPages: 10000, extraPages: 44, share: 0.855 },
        ],
      },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a PC results object follows the schema; a wrong PC field does not', () => {
  const r = JSON.parse(JSON.stringify(results())) as BenchResults;
  assert.deepEqual(validate(r), []);
  (r.runs[0].pc as unknown as Record<string, unknown>).shell = 'fine';
  (r.pc!.freshZeroShare[0] as unknown as Record<string, unknown>).share = -1;
  const errs = validate(r);
  assert.ok(
    errs.some((e) => e.startsWith('$.runs[0].pc.shell: "fine" is not one of')),
    errs.join('\n'),
  );
  assert.ok(
    errs.includes('$.pc.freshZeroShare[0].share: -1 is below the minimum 0'),
    errs.join('\n'),
  );
});

test('the terminal report: zero pages after boot, downtime definitions, every run, targets', () => {
  const text = terminalReport(results());
  assert.match(text, /ZERO PAGES OF A FRESHLY BOOTED GUEST, livemig: 84\.7% \(55361 zero/);
  assert.match(text, /ZERO PAGES OF A FRESHLY BOOTED GUEST, QEMU 7\.2\.22: 85\.5%/);
  assert.match(text, /Boot to the guest's shell, livemig: 15\.3 s/);
  assert.match(
    text,
    /livemig's downtime: from stopping the source's vCPU to the destination's acknowledgement/,
  );
  assert.match(text, /QEMU's downtime: measured on the source only/);
  assert.match(text, /== PC busy: the guest copying a file in a loop ==/);
  assert.match(text, /Every run/);
  assert.match(text, /RAM MISMATCH \(9 pages\), file ok, shell ok/);
  // busy: livemig 900 ms against QEMU 800 ms total; guest paused 150 against 50 ms.
  assert.match(
    text,
    /Baseline vs QEMU 7\.2\.22: total time 1\.13× \(worse\), downtime 1\.50× \(worse\)/,
  );
  assert.match(text, /guest paused 3\.00× \(worse\) \(the same definition\)/);
  assert.match(
    text,
    /QEMU 7\.2\.22 #1: failed: the migration completed, but the destination's shell did not answer$/m,
  );
  assert.match(text, /Nothing lost, livemig: 1 of 1 runs with RAM identical/);
  assert.match(text, /Nothing lost, QEMU 7\.2\.22: 0 of 1 runs/);
  assert.match(text, /idle guest after boot, ≥ 80% zero pages: 84\.7%: met/);
  assert.match(text, /idle downtime ≤ 50 ms: median 40 ms: met/);
  assert.match(
    text,
    /dirty sync ≤ 35 ms of CPU per pass .*: worst pass 8\.3 ms of CPU \(its longest took 19\.5 ms\): met/,
  );
  assert.match(
    text,
    /\| 15\.0 \/ 19\.5 ms \(6\.0 \/ 8\.3\), 3 +\|/,
    'time and CPU per pass in the table',
  );
  assert.match(
    text,
    /nothing lost, 20 of 20: 1 of 1: NOT MET/,
    'fewer than 20 runs do not meet it',
  );
  const md = markdownReport(results(), new Map());
  assert.match(md, /### What downtime measures/);
  assert.match(md, /### Every run/);
  assert.match(md, /## livemig against the issue's targets/);
});

test('stale pages and failed checks make the bench fail; the run line says why', () => {
  const r = results();
  const bad = problems(r);
  assert.ok(
    bad.some((b) => /idle qemu baseline run 1: RAM differs/.test(b)),
    bad.join('\n'),
  );
  assert.ok(
    bad.some((b) => /lossless qemu baseline run 1: failed/.test(b)),
    bad.join('\n'),
  );
  assert.match(pcRunLine(r.runs[1]), /RAM mismatch \(9 pages differ\)/);
  assert.match(pcRunLine(r.runs[2]), /progress 80%/);
});
