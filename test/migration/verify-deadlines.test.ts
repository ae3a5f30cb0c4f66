// x-verify-ram's exchange after CompleteAck (Digest, then VerifyResult) has deadlines on both
// sides; heartbeats alone do not keep a side waiting. Each side's deadline is x-stall-timeout
// plus as long as its own digest took, since the peer hashes the same RAM meanwhile. Whichever
// side gives up, the source runs its guest on, intact, and the destination, which never had
// Release, does not run it.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalPair, type MigrationResult } from '../../src/harness/local-migration.js';
import { FrameType } from '../../src/migration/protocol.js';
import { destEnded } from '../support/dest-ended.js';
import { FrameProxy, rewriteJson, withhold, type FrameRewrite } from '../support/frame-proxy.js';

type Info = MigrationResult & { 'error-desc'?: string; livemig?: Record<string, unknown> };

const passThrough: FrameRewrite = (_t, payload) => payload;

/**
 * Migrate a guest whose RAM does not change by itself (no workload) through a proxy, with
 * x-verify-ram; check that the source failed and runs its guest on, unchanged, and that the
 * destination failed and does not run it. Returns both sides' query-migrate.
 */
async function failedWithGuestKept(
  stallTimeoutMs: number,
  toDestination: FrameRewrite,
  toSource: FrameRewrite,
): Promise<{ source: Info; dest: Info; proxy: FrameProxy }> {
  const pair = await LocalPair.start({ ram: '16M', workload: 'none', normalPageRatio: 0.5 });
  try {
    await pair.configure(
      { multifd: true, 'x-verify-ram': true },
      {
        'multifd-channels': 2,
        'x-stall-timeout': stallTimeoutMs,
      },
    );
    const before = await pair.source.qmp.execute<{ digest: string }>('x-query-ram-digest');
    const target = Number((await pair.incomingUri()).split(':').pop());
    const proxy = await FrameProxy.start(target, toDestination, toSource);
    try {
      await pair.source.qmp.execute('migrate', { uri: proxy.uri });
      // Bounded, so that a side that waits on forever fails here instead of hanging the run.
      const ended = (i: MigrationResult): boolean => ['completed', 'failed'].includes(i.status);
      const source = (await pair.waitSource(ended)) as Info;
      assert.equal(source.status, 'failed');
      const st = await pair.source.qmp.execute<{ status: string }>('query-status');
      assert.equal(st.status, 'running', 'the source guest runs on');
      const after = await pair.source.qmp.execute<{ digest: string }>('x-query-ram-digest');
      assert.equal(after.digest, before.digest, 'the source guest is intact');
      const dest = (await destEnded(pair)) as Info;
      assert.equal(dest.status, 'failed');
      const dst = await pair.dest.qmp.execute<{ status: string }>('query-status');
      assert.equal(dst.status, 'inmigrate', 'the destination guest does not run');
      return { source, dest, proxy };
    } finally {
      await proxy.close();
    }
  } finally {
    await pair.close();
  }
}

/**
 * Both sides wait at once (the destination for a VerifyResult that cannot come without its
 * Digest), so with one x-stall-timeout either deadline may end the migration. The proxy tells
 * the destination a different one in Hello, so that the side under test gives up first.
 */
function destinationStallTimeout(ms: number): FrameRewrite {
  return rewriteJson(FrameType.Hello, (p) => (p.stallTimeoutMs = ms));
}

test('a Digest withheld after CompleteAck fails the source within its deadline; its guest runs on', async () => {
  const { source, dest, proxy } = await failedWithGuestKept(
    2000,
    destinationStallTimeout(4000),
    withhold(FrameType.Digest),
  );
  assert.ok(proxy.seenBack.includes(FrameType.CompleteAck), 'CompleteAck reached the source');
  assert.ok(proxy.seenBack.includes(FrameType.Digest), 'the destination sent a Digest');
  assert.ok(proxy.seenBack.includes(FrameType.Heartbeat), 'heartbeats went on');
  assert.ok(!proxy.seen.includes(FrameType.VerifyResult), 'no verdict without a Digest');
  assert.match(
    String(source['error-desc']),
    /^destination did not send its RAM digest \(Digest\) within \d+ ms: x-stall-timeout 2000 plus the \d+ ms the source's own digest took$/,
  );
  assert.equal(source.livemig?.verify, 'pending');
  assert.match(String(dest['error-desc']), /^source: destination did not send its RAM digest/);
});

test('a VerifyResult withheld fails the destination within its deadline; the source runs on', async () => {
  // The source's wait for Ready runs too: the destination's deadline must be the shorter.
  const toDestination: FrameRewrite = (type, payload) => {
    if (type === FrameType.VerifyResult) return 'withhold';
    return destinationStallTimeout(2000)(type, payload);
  };
  const { source, dest, proxy } = await failedWithGuestKept(3000, toDestination, passThrough);
  assert.ok(proxy.seen.includes(FrameType.VerifyResult), 'the source sent its verdict');
  assert.ok(proxy.seen.includes(FrameType.Heartbeat), 'heartbeats went on');
  assert.ok(!proxy.seenBack.includes(FrameType.Ready), 'no Ready without a verdict');
  assert.match(
    String(dest['error-desc']),
    /^no VerifyResult within \d+ ms of Digest: x-stall-timeout 2000 plus the \d+ ms this destination's digest took$/,
  );
  assert.equal(source.livemig?.verify, 'ok');
  assert.match(String(source['error-desc']), /^destination: no VerifyResult within/);
});
