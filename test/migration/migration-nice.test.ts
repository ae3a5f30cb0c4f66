// x-migration-nice: checked like every parameter, carried to the destination in the Hello, and a
// migration with it is as exact as one without.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalPair } from '../../src/harness/local-migration.js';

test('x-migration-nice out of range is refused, naming the range', async () => {
  const pair = await LocalPair.start({ ram: '64M' });
  try {
    await assert.rejects(
      pair.source.qmp.execute('migrate-set-parameters', { 'x-migration-nice': 20 }),
      /Parameter 'x-migration-nice' expects a value between 0 and 19, got 20/,
    );
    await assert.rejects(
      pair.source.qmp.execute('migrate-set-parameters', { 'x-migration-nice': 'low' }),
      /Invalid parameter type for 'x-migration-nice', expected: integer/,
    );
  } finally {
    await pair.close();
  }
});

test('a migration with x-migration-nice 19 is byte-exact, the guest running', async () => {
  const pair = await LocalPair.start({ ram: '64M', normalPageRatio: 0.5, workload: 'stress' });
  try {
    const { source, dest } = await pair.migrate(
      { multifd: true, events: true, 'x-verify-ram': true },
      { 'multifd-channels': 2, 'x-migration-nice': 19, 'downtime-limit': 2000 },
    );
    const src = source as { status: string; livemig: { verify: string } };
    assert.equal(src.status, 'completed');
    assert.equal(src.livemig.verify, 'ok', 'destination RAM digest equals the source');
    assert.equal((dest as { status: string }).status, 'completed');
    const params = await pair.source.qmp.execute<Record<string, unknown>>(
      'query-migrate-parameters',
    );
    assert.equal(params['x-migration-nice'], 19);
  } finally {
    await pair.close();
  }
});
