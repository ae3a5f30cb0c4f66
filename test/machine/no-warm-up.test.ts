// `livemig run --no-warm-up`: the process's threads run no hot code ahead of a migration
// (src/util/warm-up-gate.ts stays closed while the machine lives), and a migration from such a
// source still completes, with the emulated DSA started only when the migration needs it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Vm } from '../../src/machine/vm.js';
import { LocalPair } from '../../src/harness/local-migration.js';
import { parseWorkload } from '../../src/ram/vcpu-control.js';
import { warmUpsPaused } from '../../src/util/warm-up-gate.js';

test('warmUp: false keeps the warm-ups from running while the machine lives', async () => {
  assert.equal(warmUpsPaused(), false);
  const vm = new Vm({
    ramBytes: 4 << 20,
    workload: parseWorkload('none', 4 << 20),
    normalPageRatio: 0,
    memPrealloc: false,
    warmUp: false,
    startPaused: true,
  });
  try {
    await vm.init();
    assert.equal(warmUpsPaused(), true);
  } finally {
    await vm.shutdown();
  }
  assert.equal(warmUpsPaused(), false, 'a later machine in the process may warm up');
});

test('a source started with --no-warm-up migrates, with dsa-accel, RAM identical', async () => {
  const pair = await LocalPair.start({
    ram: '64M',
    normalPageRatio: 0.5,
    workload: 'stress',
    sourceWarmUp: false,
  });
  try {
    const caps = { multifd: true, 'x-verify-ram': true };
    const { source, dest } = await pair.migrate(caps, {
      'multifd-channels': 2,
      'zero-page-detection': 'dsa-accel',
      'accel-path': ['dsa-emu:dsa0/wq0.0'],
    });
    const src = source as typeof source & { livemig: { verify: string; accelerator?: object } };
    assert.equal(src.status, 'completed');
    assert.equal(src.livemig.verify, 'ok', 'x-verify-ram: RAM identical at switchover');
    assert.ok(src.livemig.accelerator, 'the accelerator reported its counters');
    assert.equal(dest.status, 'completed');
  } finally {
    await pair.close();
  }
});
