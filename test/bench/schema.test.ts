// The results file's schema: the one in docs/bench-schema.md is the one in the code, the
// validator rejects what it should, and a results object built by the bench's own code follows it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import {
  benchConfig,
  parseModes,
  parsePeers,
  parseScenarios,
  type BenchOptions,
} from '../../src/cli/bench.js';
import { machineInfo } from '../../src/bench/machine-info.js';
import { failedRun } from '../../src/bench/run-bench.js';
import { RESULTS_SCHEMA, validate } from '../../src/bench/schema.js';
import { summarize } from '../../src/bench/summary.js';
import { RESULTS_SCHEMA_ID, type BenchResults } from '../../src/bench/types.js';

const DOC = new URL('../../../docs/bench-schema.md', import.meta.url);

const DEFAULTS: BenchOptions = {
  ram: '4G',
  channels: '2',
  runs: '3',
  scenario: 'all',
  modes: 'baseline,offload',
  workload: 'none',
  accelPath: [],
  verify: true,
  dirtyRates: '25,400',
  maxBandwidth: '100M',
  downtimeLimit: '300',
  convergeTimeout: '15',
};

function sample(): BenchResults {
  const ok = failedRun('B', 'livemig', 'livemig 0.1.0', 'baseline', 1, '');
  ok.status = 'completed';
  ok.error = null;
  ok.cpu.source = {
    processMs: 120,
    threads: [{ name: 'live_migration', role: 'migration', ms: 50.5 }],
    threadSource: 'query-migrate',
  };
  ok.cpu.destination = { processMs: 40, threads: [], threadSource: 'query-migrate' };
  ok.verify = { method: 'digest', result: 'ok' };
  const runs = [ok, failedRun('B', 'livemig', 'livemig 0.1.0', 'offload', 1, 'boom')];
  return {
    schema: RESULTS_SCHEMA_ID,
    createdAt: new Date(0).toISOString(),
    command: 'livemig bench',
    machine: machineInfo(),
    config: benchConfig(DEFAULTS),
    qemu: null,
    runs,
    summary: summarize(runs, ['dsa-emu:dsa0/wq0.0'], null),
    running: [],
    skipped: [
      { severity: 'not-applicable', peer: 'qemu', mode: 'offload', scenario: null, reason: 'x' },
    ],
  };
}

test('docs/bench-schema.md shows exactly the schema the code checks', () => {
  const doc = readFileSync(DOC, 'utf8');
  const m = /```json\n([\s\S]*?)\n```/.exec(doc);
  assert.ok(m, 'docs/bench-schema.md has a ```json block');
  assert.deepEqual(JSON.parse(m[1]), RESULTS_SCHEMA);
});

test('a results object built by the bench follows the schema', () => {
  const r = JSON.parse(JSON.stringify(sample())) as unknown;
  assert.deepEqual(validate(r), []);
});

test('the reports kept in docs/bench follow the schema', () => {
  const dir = new URL('../../../docs/bench/', import.meta.url);
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  assert.ok(files.length > 0, 'docs/bench holds results files');
  for (const f of files) {
    assert.deepEqual(validate(JSON.parse(readFileSync(new URL(f, dir), 'utf8'))), [], f);
  }
});

test('the validator rejects missing, mistyped and unknown fields', () => {
  const r = JSON.parse(JSON.stringify(sample())) as Record<string, unknown>;
  delete r.machine;
  (r.config as Record<string, unknown>).runs = 'three';
  (r.runs as Record<string, unknown>[])[0].extra = 1;
  (r.runs as Record<string, unknown>[])[1].mode = 'turbo';
  r.schema = 'livemig-bench/0';
  const errs = validate(r);
  assert.ok(errs.includes("$: missing required property 'machine'"), errs.join('\n'));
  assert.ok(errs.includes('$.config.runs: expected integer, got string'), errs.join('\n'));
  assert.ok(errs.includes("$.runs[0]: unexpected property 'extra'"), errs.join('\n'));
  assert.ok(errs.some((e) => e.startsWith('$.runs[1].mode: "turbo" is not one of')));
  assert.ok(errs.includes('$.schema: expected "livemig-bench/2"'));
  assert.deepEqual(validate({ ...sample(), qemu: { path: 1 } } as unknown).length > 0, true);
});

test('options: scenarios, modes and their errors', () => {
  assert.deepEqual(parseScenarios('all'), { scenarios: ['A', 'B'], running: true });
  assert.deepEqual(parseScenarios('a,B'), { scenarios: ['A', 'B'], running: false });
  assert.deepEqual(parseScenarios('running'), { scenarios: [], running: true });
  assert.throws(() => parseScenarios('C'), /invalid --scenario 'C'/);
  assert.deepEqual(parseModes('baseline, offload'), ['baseline', 'offload']);
  assert.deepEqual(parseModes('all'), ['baseline', 'offload', 'legacy', 'none']);
  assert.throws(() => parseModes('dsa'), /invalid --modes entry 'dsa'/);
  const c = benchConfig(DEFAULTS);
  assert.equal(c.ramBytes, 4 * 1024 ** 3);
  assert.deepEqual(c.accelPath, ['dsa-emu:dsa0/wq0.0']);
  assert.equal(c.maxBandwidthBytesPerSec, 100 * 1024 * 1024);
  assert.throws(() => benchConfig({ ...DEFAULTS, to: 'tcp:h:1' }), /--to needs --to-qmp/);
  assert.throws(() => benchConfig({ ...DEFAULTS, to: 'h:1', toQmp: 'tcp:h:2' }), /invalid --to/);
  assert.throws(() => benchConfig({ ...DEFAULTS, channels: '0' }), /invalid --channels/);
  assert.throws(() => benchConfig({ ...DEFAULTS, peer: 'kvm' }), /invalid --peer/);
  assert.deepEqual(parsePeers(undefined), ['livemig']);
  assert.deepEqual(parsePeers('floor,qemu,floor'), ['livemig', 'floor', 'qemu']);
  assert.throws(() => parsePeers('qemu,kvm'), /invalid --peer 'kvm': expected qemu or floor/);
  assert.deepEqual(
    benchConfig({ ...DEFAULTS, accelPath: ['dsa-emu:dsa0/wq0.0 dsa-emu:dsa0/wq0.1'] }).accelPath,
    ['dsa-emu:dsa0/wq0.0', 'dsa-emu:dsa0/wq0.1'],
  );
});
