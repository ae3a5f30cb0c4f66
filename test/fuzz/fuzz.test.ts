// A few hundred fuzz cases on every CI run (`npm run fuzz` runs 10,000+): random and mutated
// streams into the destination's parsers and into a real destination process.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { runFuzz } from '../../src/fuzz/run.js';

test('fuzzed destination: no crash, no hang, no write outside named pages; it still migrates', async () => {
  const seed = 4242;
  const { reports, migrated } = await runFuzz({ packets: 300, frames: 100, sockets: 30, seed });
  for (const [name, r] of Object.entries(reports)) {
    assert.deepEqual(r.failures, [], `${name}: failures (replay with --seed ${seed})`);
    assert.ok(r.rejected > 0, `${name}: some cases were rejected, so the mutations bite`);
  }
  assert.equal(reports.packets.cases, 300);
  assert.equal(reports.sockets.cases, 30);
  assert.ok(reports.packets.accepted > 0, 'valid streams are accepted');
  assert.ok(migrated, 'a real migration into the fuzzed destination completes and verifies');
});
