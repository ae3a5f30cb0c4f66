// `livemig bench` end to end, small: 64 MiB, 1 run, scenarios A and B, baseline and offload;
// a remote destination (--to); the running-guest scenario. No timing assertions: only that
// everything ran, verified, and came out in the documented shapes.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validate } from '../../src/bench/schema.js';
import type { BenchResults } from '../../src/bench/types.js';
import { parseTags } from './helpers.js';

const MAIN = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));

function livemig(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    p.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    p.on('exit', (code) => resolve({ code, stdout, stderr }));
  });
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

test('bench: 64 MiB, 1 run, scenarios A and B, baseline and offload', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'livemig-bench-test-'));
  try {
    const json = join(dir, 'results.json');
    const report = join(dir, 'report.md');
    const args = ['bench', '--ram', '64M', '--runs', '1', '--scenario', 'A,B', '--at-once'];
    args.push('--modes', 'baseline,offload', '--json', json, '--report', report);
    const { code, stdout, stderr } = await livemig(args);
    const r = JSON.parse(readFileSync(json, 'utf8')) as BenchResults;
    assert.deepEqual(validate(r), [], 'the results file follows docs/bench-schema.md');
    assert.equal(r.config.warmupRuns, 1);
    assert.equal(r.config.atOnce, true, '`migrate` as soon as both processes answered');
    assert.match(readFileSync(report, 'utf8'), /as soon as both processes of a run answered/);
    assert.ok(
      r.runs.every((x) => x.run >= 1),
      'warm-up runs are not in the results',
    );
    assert.match(stdout + stderr, /warm-up, not counted/, 'the warm-up runs are shown as such');

    // Baseline always runs.
    const base = r.runs.filter((x) => x.mode === 'baseline');
    assert.deepEqual(
      base.map((x) => [x.scenario, x.status, x.verify.result]),
      [
        ['A', 'completed', 'ok'],
        ['B', 'completed', 'ok'],
      ],
      stderr,
    );
    for (const x of base) {
      assert.equal(x.zeroPageDetection, 'multifd');
      assert.equal(x.totalRamBytes, 64 * 1024 * 1024);
      assert.ok(x.cpu.source.threads.some((t) => t.name === 'live_migration'));
      assert.ok(x.cpu.source.threads.some((t) => t.name === 'multifdsend_1'));
      assert.ok(x.cpu.destination.threads.some((t) => t.name === 'multifdrecv_0'));
      assert.ok(x.cpu.source.processMs !== null && x.cpu.destination.processMs !== null);
    }
    assert.equal(base.find((x) => x.scenario === 'B')!.normalPages, 0);

    // Offload: runs where the build has dsa-accel; otherwise it must say so clearly.
    const off = r.runs.filter((x) => x.mode === 'offload');
    const refused = r.skipped.find((s) => s.mode === 'offload');
    if (refused) {
      assert.equal(off.length, 0);
      assert.match(refused.reason, /dsa-accel.*not supported by this build/);
      assert.match(stdout, /Skipped: livemig offload: .*dsa-accel.*not supported by this build/);
      assert.equal(code, 1, 'a requested mode that cannot run fails the bench');
      t.diagnostic('offload: dsa-accel is not in this build: checked its clear error instead');
    } else {
      assert.deepEqual(
        off.map((x) => [x.scenario, x.status, x.verify.result, x.zeroPageDetection]),
        [
          ['A', 'completed', 'ok', 'dsa-accel'],
          ['B', 'completed', 'ok', 'dsa-accel'],
        ],
        stderr,
      );
      for (const x of off) {
        assert.ok(x.cpu.source.threads.some((t) => t.role === 'emulated-engine'));
        assert.ok(x.accel !== null, 'the accelerator counters are recorded');
      }
      assert.match(stdout, /dsa0\/engine0\.\d+ \(emulated device\)/);
      assert.match(stdout, /counting the emulated engines' CPU/);
      assert.match(stdout, /without the emulated engines/);
      assert.equal(code, 0, stderr);
    }

    // The DSA evaluation's tables on stdout.
    assert.match(stdout, /== Scenario A: 50% normal pages ==/);
    assert.match(stdout, /== Scenario B: 100% zero pages ==/);
    assert.match(stdout, /\| +\| comm +\| runtime\(msec\) +\| totaltime\(msec\) +\|/);
    assert.match(
      stdout,
      /\| total time +\| down time +\| throughput +\| transferred-ram +\| total-ram +\|/,
    );

    // Report and one chart per scenario, next to it.
    const md = readFileSync(report, 'utf8');
    for (const s of ['A', 'B']) {
      const svgFile = join(dir, `report-${s}.svg`);
      assert.ok(existsSync(svgFile), `${svgFile} written`);
      const tags = parseTags(readFileSync(svgFile, 'utf8'));
      assert.equal(
        tags.filter((x) => x.name === 'g' && /class="bar"/.test(x.attrs)).length,
        off.length ? 2 : 1,
      );
      assert.ok(md.includes(`](report-${s}.svg)`), 'the report embeds the chart');
    }
    assert.match(md, /## Machine/);
    assert.match(md, /\| CPU model \| .+ \|/);
    assert.match(md, /\| Cores \| \d+ \|/);
    assert.match(md, /\| Node\.js \| v\d+/);
    assert.match(md, /### CPU usage/);
    assert.match(md, /### Latency/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bench --to: a remote destination (here on loopback), restarted by the bench between uses', async () => {
  const qmpPort = await freePort();
  const dest = spawn(
    process.execPath,
    [
      MAIN,
      'run',
      '--ram',
      '64M',
      '--incoming',
      'tcp:127.0.0.1:0',
      '--qmp',
      `tcp:127.0.0.1:${qmpPort}`,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  try {
    const port = await new Promise<number>((resolve, reject) => {
      let err = '';
      dest.stderr.setEncoding('utf8').on('data', (s: string) => {
        err += s;
        const m = /waiting for an incoming migration on port (\d+)/.exec(err);
        if (m) resolve(Number(m[1]));
      });
      dest.once('exit', () => reject(new Error(`destination exited: ${err}`)));
    });
    const dir = mkdtempSync(join(tmpdir(), 'livemig-bench-test-'));
    try {
      const json = join(dir, 'r.json');
      const { code, stderr } = await livemig([
        'bench',
        '--ram',
        '64M',
        '--runs',
        '1',
        '--scenario',
        'B',
        '--modes',
        'baseline',
        '--to',
        `tcp:127.0.0.1:${port}`,
        '--to-qmp',
        `tcp:127.0.0.1:${qmpPort}`,
        '--json',
        json,
      ]);
      assert.equal(code, 0, stderr);
      const r = JSON.parse(readFileSync(json, 'utf8')) as BenchResults;
      assert.deepEqual(validate(r), []);
      const [run] = r.runs;
      assert.equal(run.status, 'completed');
      assert.deepEqual(run.verify, { method: 'digest', result: 'ok' });
      assert.equal(run.cpu.destination.processMs, null, 'a remote process is not measurable');
      assert.ok(run.cpu.destination.threads.some((t) => t.name === 'multifdrecv_0'));
      // The bench quit the destination after using it.
      await new Promise<void>((resolve) =>
        dest.exitCode !== null ? resolve() : dest.once('exit', () => resolve()),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  } finally {
    dest.kill('SIGKILL');
  }
});

test('bench: the running-guest scenario reports passes, downtimes, dirty rate, convergence', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'livemig-bench-test-'));
  try {
    const json = join(dir, 'r.json');
    const { code, stdout, stderr } = await livemig([
      'bench',
      '--ram',
      '64M',
      '--scenario',
      'running',
      '--dirty-rates',
      '20,400',
      '--converge-timeout',
      '3',
      '--json',
      json,
    ]);
    assert.equal(code, 0, stderr);
    const r = JSON.parse(readFileSync(json, 'utf8')) as BenchResults;
    assert.deepEqual(validate(r), []);
    assert.deepEqual(r.runs, []);
    assert.deepEqual(
      r.running.map((x) => x.dirtyRateMBps),
      [20, 400],
    );
    for (const x of r.running) {
      assert.equal(typeof x.converged, 'boolean');
      assert.ok(['completed', 'cancelled'].includes(x.status), x.status);
      assert.equal(x.converged, x.status === 'completed');
      assert.ok(x.passes >= 1);
      if (x.converged) {
        assert.ok(x.downtimeMs !== null);
        assert.equal(x.verify.result, 'ok');
      } else {
        assert.match(x.error ?? '', /did not converge/);
      }
    }
    assert.match(stdout, /== Running guest/);
    assert.match(
      stdout,
      /\| dirty rate \(set \/ measured\) +\| max-bandwidth +\| passes +\| expected downtime/,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const hasCc = spawnSync(process.env.CC ?? 'cc', ['--version']).status === 0;

test(
  "bench --peer floor: bench:floor's C migration beside livemig, run by run, with ratios",
  { skip: hasCc ? false : 'no C compiler (cc) installed: the floor cannot be built' },
  async () => {
    const dir = mkdtempSync(join(tmpdir(), 'livemig-bench-test-'));
    try {
      const json = join(dir, 'r.json');
      const report = join(dir, 'r.md');
      const { code, stdout, stderr } = await livemig([
        'bench',
        '--ram',
        '64M',
        '--runs',
        '2',
        '--scenario',
        'A,B',
        '--modes',
        'baseline',
        '--peer',
        'floor',
        '--json',
        json,
        '--report',
        report,
      ]);
      assert.equal(code, 0, stderr);
      const r = JSON.parse(readFileSync(json, 'utf8')) as BenchResults;
      assert.deepEqual(validate(r), []);
      assert.deepEqual(r.config.peers, ['livemig', 'floor']);
      // Interleaved: each run of livemig is followed by the floor's run of the same number.
      assert.deepEqual(
        r.runs.map((x) => `${x.scenario} ${x.peer} ${x.run}`),
        ['A livemig 1', 'A floor 1', 'A livemig 2', 'A floor 2'].concat([
          'B livemig 1',
          'B floor 1',
          'B livemig 2',
          'B floor 2',
        ]),
      );
      for (const x of r.runs.filter((y) => y.peer === 'floor')) {
        assert.equal(x.status, 'completed', x.error ?? '');
        assert.deepEqual(x.verify, { method: 'byte-compare', result: 'ok' });
        assert.equal(x.totalRamBytes, 64 * 1024 * 1024);
        assert.equal(x.normalPages, x.scenario === 'A' ? 8192 : 0);
        assert.equal(x.normalPages + x.zeroPages, 16384);
        assert.deepEqual(
          x.cpu.source.threads.map((t) => t.name),
          ['floor_send_0', 'floor_send_1'],
        );
        assert.equal(x.cpu.destination.threads.length, 2);
        assert.ok(x.cpu.source.processMs !== null && x.cpu.destination.processMs !== null);
      }
      // The same pages cross the wire as livemig's: only the framing differs.
      const sent = (s: string, p: string) =>
        r.runs.find((x) => x.scenario === s && x.peer === p)!.normalPages;
      assert.equal(sent('A', 'floor'), sent('A', 'livemig'));
      // Ratios to the floor in the summary, for livemig's groups only.
      for (const s of ['A', 'B'] as const) {
        const base = r.summary.find((g) => g.scenario === s && g.peer === 'livemig')!;
        const floor = r.summary.find((g) => g.scenario === s && g.peer === 'floor')!;
        assert.equal(floor.toFloor, undefined);
        assert.ok(base.toFloor && base.toFloor.totalTime! > 0 && base.toFloor.bothCpu! > 0);
        assert.equal(base.toFloor.totalTime, base.totalTimeMs.median / floor.totalTimeMs.median);
      }
      // The same tables, with the floor's rows and the ratio lines under them.
      assert.match(stdout, /\| Floor \(C, bench:floor\) +\| floor_send_0 +\|/);
      assert.equal(
        stdout.match(
          /Baseline vs Floor \(C, bench:floor\): total time [\d.]+× \(\w+ the [\d.]+× target\), until destination done [\d.]+×, CPU of both processes [\d.]+×/g,
        )?.length,
        2,
      );
      const md = readFileSync(report, 'utf8');
      assert.match(md, /\| Floor \| loopback-floor\.c, .+ \|/);
      assert.match(md, /- Baseline vs Floor \(C, bench:floor\): total time/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);
