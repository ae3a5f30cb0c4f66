// Who runs the guest when the link drops at the very end of a migration. The destination runs
// it only on the source's Release, which the source sends only on the destination's Ready; so a
// link that drops before Ready has reached the source leaves the source running and the
// destination not. The one frame whose loss leaves neither running is Release itself
// (docs/reliability.md, "Who runs the guest").

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalPair, type MigrationResult } from '../../src/harness/local-migration.js';
import { FrameType } from '../../src/migration/protocol.js';
import { destEnded } from '../support/dest-ended.js';
import { FrameProxy, dropAt } from '../support/frame-proxy.js';

type Info = MigrationResult & { 'error-desc'?: string; livemig?: Record<string, unknown> };

async function runState(pair: LocalPair, side: 'source' | 'dest'): Promise<string> {
  return (await pair[side].qmp.execute<{ status: string }>('query-status')).status;
}

async function digest(pair: LocalPair, side: 'source' | 'dest'): Promise<string> {
  return (await pair[side].qmp.execute<{ digest: string }>('x-query-ram-digest')).digest;
}

/** Migrate through a proxy that drops the link as the source sends `frame` (null: never). */
async function migrateDroppingAt(
  pair: LocalPair,
  frame: FrameType | null,
  verify: boolean,
): Promise<{ source: Info; dest: Info; proxy: FrameProxy }> {
  await pair.configure(
    { multifd: true, 'x-verify-ram': verify },
    {
      'multifd-channels': 2,
      'x-stall-timeout': 2000,
    },
  );
  const target = Number((await pair.incomingUri()).split(':').pop());
  const proxy = await FrameProxy.start(target, frame === null ? (_t, p) => p : dropAt(frame));
  try {
    await pair.source.qmp.execute('migrate', { uri: proxy.uri });
    const source = (await pair.waitFinished(undefined, 20)) as Info;
    return { source, dest: (await destEnded(pair)) as Info, proxy };
  } finally {
    await proxy.close();
  }
}

test('the link drops after the verification result is sent: the source runs, the destination does not', async () => {
  const pair = await LocalPair.start({ ram: '32M', workload: 'stress:4', normalPageRatio: 0.5 });
  try {
    const { source, dest, proxy } = await migrateDroppingAt(pair, FrameType.VerifyResult, true);
    assert.ok(proxy.dropped, 'the link dropped at VerifyResult');
    assert.equal(source.livemig?.verify, 'ok', 'the source had sent a verdict of ok');
    assert.equal(source.status, 'failed', 'no Ready: the source did not hand the guest over');
    assert.match(String(source['error-desc']), /main channel/);
    assert.equal(await runState(pair, 'source'), 'running', 'the source guest runs');
    assert.equal(dest.status, 'failed');
    assert.equal(await runState(pair, 'dest'), 'inmigrate', 'the destination guest does not');
    // And the destination is ready for a migration that succeeds.
    const before = await digest(pair, 'source');
    assert.notEqual(await digest(pair, 'dest'), before, 'the destination discarded what it had');
  } finally {
    await pair.close();
  }
});

test('without verification, a link that drops as Release is sent: neither side runs, never both', async () => {
  // Release is the one frame whose loss is not recoverable by either side on its own: the
  // source has given the guest up, the destination never heard it. Neither runs; neither runs
  // twice. The test pins that, so a change to the order shows up here.
  const pair = await LocalPair.start({ ram: '16M', workload: 'none', normalPageRatio: 0.5 });
  try {
    const { source, dest, proxy } = await migrateDroppingAt(pair, FrameType.Release, false);
    assert.ok(proxy.dropped, 'the link dropped at Release');
    assert.equal(source.status, 'completed', 'Release sent: the source has handed the guest over');
    assert.equal(await runState(pair, 'source'), 'postmigrate');
    assert.equal(dest.status, 'failed');
    assert.match(String(dest['error-desc']), /main channel closed/);
    assert.equal(await runState(pair, 'dest'), 'inmigrate', 'never both: the destination waits');
    // The operator, seeing the destination did not take it, resumes the source (QEMU allows
    // `cont` after a migration too).
    await pair.source.qmp.execute('cont');
    assert.equal(await runState(pair, 'source'), 'running');
  } finally {
    await pair.close();
  }
});

test('a migration through the proxy that drops nothing hands the guest over', async () => {
  const pair = await LocalPair.start({ ram: '16M', workload: 'stress:4', normalPageRatio: 0.5 });
  try {
    const { source, dest } = await migrateDroppingAt(pair, null, true);
    assert.equal(source.status, 'completed', String(source['error-desc']));
    assert.equal(dest.status, 'completed', String(dest['error-desc']));
    assert.equal(await runState(pair, 'source'), 'postmigrate');
    assert.equal(await runState(pair, 'dest'), 'running');
  } finally {
    await pair.close();
  }
});
