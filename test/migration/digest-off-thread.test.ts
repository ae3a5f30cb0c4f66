// The RAM digest (x-verify-ram, x-query-ram-digest) is computed off the main thread. On the
// main thread, hashing this guest's 256 MiB of non-zero pages took ~270 ms on each side at
// once, longer than the short x-stall-timeout here, and a healthy migration failed as stalled.
// The RAM itself moves at a bounded rate into preallocated memory, so that no channel write
// waits that long on a busy machine: what is tested is the digest, not the data path.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalPair, type MigrationResult } from '../../src/harness/local-migration.js';

type Info = MigrationResult & { 'error-desc'?: string; livemig?: Record<string, unknown> };

test('x-verify-ram on a 256 MiB guest with x-stall-timeout 200 completes', async () => {
  const pair = await LocalPair.start({
    ram: '256M',
    workload: 'none',
    normalPageRatio: 1,
    destMemPrealloc: true,
  });
  try {
    const before = await pair.source.qmp.execute<{ digest: string }>('x-query-ram-digest');
    const { source, dest } = await pair.migrate(
      { multifd: true, 'x-verify-ram': true },
      { 'multifd-channels': 2, 'x-stall-timeout': 200, 'max-bandwidth': 128 * 1024 * 1024 },
      undefined,
      20,
    );
    assert.equal(source.status, 'completed', String(source['error-desc']));
    assert.equal((source as Info).livemig?.verify, 'ok');
    assert.equal(dest.status, 'completed', String(dest['error-desc']));
    const after = await pair.dest.qmp.execute<{ digest: string }>('x-query-ram-digest');
    assert.equal(after.digest, before.digest);
  } finally {
    await pair.close();
  }
});
