// `livemig bench --machine pc`'s options: its defaults, and errors that name the bad value and
// what is allowed. No guest is booted: the image is given as files made here.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { benchConfig, type BenchOptions } from '../../src/cli/bench.js';
import { parsePcScenarios, pcBenchConfig } from '../../src/bench/pc-config.js';
import { pcMigrationNice } from '../../src/machine/pc/pc-migration-nice.js';

const BASE: BenchOptions = {
  machine: 'pc',
  channels: '2',
  runs: '3',
  modes: 'baseline,offload',
  workload: 'none',
  accelPath: [],
  verify: true,
  dirtyRates: '25,400',
  maxBandwidth: '100M',
  downtimeLimit: '300',
  convergeTimeout: '15',
};

function withImage(fn: (o: BenchOptions) => void): void {
  const dir = mkdtempSync(join(tmpdir(), 'livemig-pc-config-'));
  try {
    writeFileSync(join(dir, 'vmlinuz'), 'k');
    writeFileSync(join(dir, 'initrd.img'), 'i');
    fn({ ...BASE, kernel: join(dir, 'vmlinuz'), initrd: join(dir, 'initrd.img') });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('pc defaults: 256M, idle and busy, cp:8M, downtime-limit 300 (lossless 10)', () => {
  withImage((o) => {
    const c = benchConfig(o);
    assert.equal(c.machine, 'pc');
    assert.equal(c.ram, '256M');
    assert.equal(c.ramBytes, 256 * 1024 * 1024);
    assert.deepEqual(c.scenarios, ['idle', 'busy']);
    assert.equal(c.runs, 3);
    assert.deepEqual(c.modes, ['baseline', 'offload']);
    assert.equal(c.downtimeLimitMs, 300);
    assert.deepEqual(c.peers, ['livemig']);
    assert.equal(c.pc?.busyWorkload, 'cp:8M');
    assert.equal(c.pc?.losslessDowntimeLimitMs, 10);
    assert.equal(c.pc?.migrationNice, pcMigrationNice(), "livemig's own default for a PC here");
    assert.equal(c.warmupRuns, undefined, 'a PC bench runs after its boots, without warm-ups');
    assert.throws(
      () => benchConfig({ ...o, warmupRuns: '1' }),
      /--warmup-runs is for --machine synthetic/,
    );
    assert.throws(
      () => benchConfig({ ...o, atOnce: true }),
      /--at-once is for --machine synthetic/,
    );
    assert.match(c.pc?.append ?? '', /console=ttyS0/);
    assert.equal(c.running, false);
    assert.deepEqual(benchConfig({ ...o, peer: 'qemu', scenario: 'lossless', runs: '20' }).peers, [
      'livemig',
      'qemu',
    ]);
  });
});

test('pc scenarios: idle, busy, lossless, all; in that order; others refused', () => {
  assert.deepEqual(parsePcScenarios('busy,idle'), ['idle', 'busy']);
  assert.deepEqual(parsePcScenarios('all'), ['idle', 'busy']);
  assert.deepEqual(parsePcScenarios('lossless'), ['lossless']);
  assert.throws(
    () => parsePcScenarios('A'),
    /invalid --scenario 'A' for --machine pc: expected idle/,
  );
  assert.throws(() => parsePcScenarios(' , '), /names no scenario/);
});

test('pc options refused with what is allowed', () => {
  withImage((o) => {
    assert.throws(
      () => benchConfig({ ...o, busyWorkload: 'dd:8M' }),
      /invalid --busy-workload 'dd:8M': expected cp:SIZE/,
    );
    assert.throws(
      () => benchConfig({ ...o, ram: '32M' }),
      /invalid --ram 32(\.0)? MiB for --machine pc: expected 64/,
    );
    assert.throws(
      () => benchConfig({ ...o, to: 'tcp:h:1' }),
      /--to and --to-qmp are for the synthetic machine/,
    );
    assert.throws(() => benchConfig({ ...o, workload: 'stress:10' }), /use --busy-workload/);
    assert.throws(() => benchConfig({ ...o, peer: 'kvm' }), /invalid --peer 'kvm'/);
    assert.throws(
      () => benchConfig({ ...o, peer: 'qemu,floor' }),
      /invalid --peer 'qemu,floor' with --machine pc: expected qemu \(the floor moves the synthetic guest\)/,
    );
    assert.throws(
      () => benchConfig({ ...o, ram: '200832K', peer: 'qemu' }),
      /QEMU's -m needs whole MiB/,
    );
    assert.throws(
      () => benchConfig({ ...o, losslessDowntimeLimit: 'x' }),
      /invalid --lossless-downtime-limit 'x': expected an integer/,
    );
    assert.throws(
      () => benchConfig({ ...o, initrd: undefined }),
      /--kernel and --initrd go together/,
    );
    assert.throws(
      () => benchConfig({ ...o, kernel: '/nonexistent/vmlinuz' }),
      /--kernel '\/nonexistent\/vmlinuz': no such file/,
    );
  });
  assert.throws(
    () => benchConfig({ ...BASE, machine: 'arm' }),
    /invalid --machine 'arm': expected synthetic or pc/,
  );
  assert.throws(
    () =>
      pcBenchConfig(BASE, benchConfig({ ...BASE, machine: undefined, ram: '256M' }), () => null),
    /no guest image for --machine pc: run `livemig image fetch`/,
  );
});

test('the synthetic machine keeps its defaults and refuses the PC-only flags', () => {
  const c = benchConfig({ ...BASE, machine: undefined });
  assert.equal(c.machine, 'synthetic');
  assert.equal(c.ram, '4G');
  assert.deepEqual(c.scenarios, ['A', 'B']);
  assert.equal(c.running, true);
  assert.equal(c.warmupRuns, 1, 'one unmeasured run of each peer and mode first');
  assert.equal(benchConfig({ ...BASE, machine: undefined, warmupRuns: '0' }).warmupRuns, 0);
  assert.equal(c.atOnce, false, '`migrate` once both processes have settled');
  assert.equal(benchConfig({ ...BASE, machine: undefined, atOnce: true }).atOnce, true);
  const remote = {
    ...BASE,
    machine: undefined,
    to: 'tcp:10.0.0.2:4444',
    toQmp: 'tcp:10.0.0.2:4445',
  };
  assert.equal(benchConfig(remote).warmupRuns, 0, 'a remote destination is not warmed up');
  assert.throws(() => benchConfig({ ...remote, warmupRuns: '1' }), /--warmup-runs is for a local/);
  assert.throws(
    () => benchConfig({ ...BASE, machine: undefined, warmupRuns: '-1' }),
    /--warmup-runs/,
  );
  assert.throws(
    () => benchConfig({ ...BASE, machine: 'synthetic', busyWorkload: 'cp:8M' }),
    /--busy-workload is for --machine pc/,
  );
});
