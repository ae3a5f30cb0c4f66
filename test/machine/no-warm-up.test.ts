// `livemig run --no-warm-up`: a migration from such a source still completes, with the emulated
// DSA started only when the migration needs it. (That the warm-up gate stays closed while the
// machine lives: vm-warm-ups.test.ts.)

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalPair } from '../../src/harness/local-migration.js';

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
