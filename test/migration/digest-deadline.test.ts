// A destination that acknowledges completion and then never sends its RAM digest (x-verify-ram)
// while its heartbeats still arrive: the source's wait for the Digest has a deadline
// (x-stall-timeout, plus as long as its own digest took, once that is done). The source fails saying what it waited for
// and runs its guest on, intact; the destination, which never had Release, does not run it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalPair, type MigrationResult } from '../../src/harness/local-migration.js';
import { FrameType } from '../../src/migration/protocol.js';
import { FrameProxy, withhold } from '../support/frame-proxy.js';

type Info = MigrationResult & { 'error-desc'?: string; livemig?: Record<string, unknown> };

/** Wait until the destination has given up or finished its incoming migration. */
async function destEnded(pair: LocalPair): Promise<Info> {
  for (let i = 0; ; i++) {
    const d = await pair.dest.qmp.execute<Info>('query-migrate');
    if (d.status === 'failed' || d.status === 'completed') return d;
    assert.ok(i < 500, `destination still ${d.status}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a Digest withheld after CompleteAck fails the source within x-stall-timeout; its guest runs on', async () => {
  // No workload: the guest's RAM does not change by itself, so its digest shows it intact.
  const pair = await LocalPair.start({ ram: '16M', workload: 'none', normalPageRatio: 0.5 });
  try {
    const capabilities = [
      { capability: 'multifd', state: true },
      { capability: 'x-verify-ram', state: true },
    ];
    await pair.source.qmp.execute('migrate-set-capabilities', { capabilities });
    await pair.dest.qmp.execute('migrate-set-capabilities', { capabilities });
    await pair.source.qmp.execute('migrate-set-parameters', {
      'multifd-channels': 2,
      'x-stall-timeout': 1000,
    });
    const before = await pair.source.qmp.execute<{ digest: string }>('x-query-ram-digest');
    const target = Number((await pair.incomingUri()).split(':').pop());
    const passThrough = (_t: number, p: Buffer): Buffer => p;
    const proxy = await FrameProxy.start(target, passThrough, withhold(FrameType.Digest));
    try {
      await pair.source.qmp.execute('migrate', { uri: proxy.uri });
      // Bounded, so that a source that waits on forever fails here instead of hanging the run.
      const ended = (i: MigrationResult): boolean => ['completed', 'failed'].includes(i.status);
      const source = (await pair.waitSource(ended)) as Info;
      assert.ok(proxy.seenBack.includes(FrameType.CompleteAck), 'CompleteAck reached the source');
      assert.ok(proxy.seenBack.includes(FrameType.Digest), 'the destination sent a Digest');
      assert.ok(proxy.seenBack.includes(FrameType.Heartbeat), 'heartbeats went on');
      assert.ok(!proxy.seen.includes(FrameType.VerifyResult), 'no verdict without a Digest');
      assert.equal(source.status, 'failed');
      assert.match(
        String(source['error-desc']),
        /^destination did not send its RAM digest \(Digest\) within \d+ ms: x-stall-timeout 1000 plus the \d+ ms the source's own digest took$/,
      );
      assert.equal(source.livemig?.verify, 'pending');
      const st = await pair.source.qmp.execute<{ status: string }>('query-status');
      assert.equal(st.status, 'running', 'the source guest runs on');
      const after = await pair.source.qmp.execute<{ digest: string }>('x-query-ram-digest');
      assert.equal(after.digest, before.digest, 'the source guest is intact');
      const dest = await destEnded(pair);
      assert.equal(dest.status, 'failed');
      assert.match(String(dest['error-desc']), /^source: destination did not send its RAM digest/);
      const dst = await pair.dest.qmp.execute<{ status: string }>('query-status');
      assert.equal(dst.status, 'inmigrate', 'the destination guest does not run');
    } finally {
      await proxy.close();
    }
  } finally {
    await pair.close();
  }
});
