// The destination fails or completes a moment after the source has ended (an Error frame, or a
// close, still on its way): tests that check both sides wait for it here.

import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';
import type { LocalPair, MigrationResult } from '../../src/harness/local-migration.js';

/** Wait until the destination has given up or finished its incoming migration. */
export async function destEnded(pair: LocalPair): Promise<MigrationResult> {
  for (let i = 0; ; i++) {
    const d = await pair.dest.qmp.execute<MigrationResult>('query-migrate');
    if (d.status === 'failed' || d.status === 'completed') return d;
    assert.ok(i < 500, `destination still ${d.status}`);
    await sleep(20);
  }
}
