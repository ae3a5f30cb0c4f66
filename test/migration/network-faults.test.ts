// Network faults on real sockets: a proxy between source and destination resets, stalls or
// half-closes the main channel or a multifd channel, during setup, while RAM streams, or at
// completion. The source must report failed with error-desc and keep its guest running with
// its RAM intact; the destination must discard what it got and accept a retry that succeeds.

import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalPair, type MigrationResult } from '../../src/harness/local-migration.js';
import { FaultProxy, type FaultPlan } from '../support/fault-proxy.js';

type Info = MigrationResult & { ram?: Record<string, number>; livemig?: Record<string, unknown> };
const CAPS = [
  { capability: 'multifd', state: true },
  { capability: 'x-verify-ram', state: true },
];

const plans: FaultPlan[] = [];
for (const fault of ['reset', 'stall', 'half-close'] as const) {
  plans.push({ fault, channel: 'main', after: 0 });
  plans.push({ fault, channel: 'main', after: { ms: 300 } });
  plans.push({ fault, channel: 'main', after: 'complete' });
  plans.push({ fault, channel: 0, after: 0 });
  plans.push({ fault, channel: 0, after: 256 * 1024 });
}

function describePlan(p: FaultPlan): string {
  const when = p.after === 0 ? 'setup' : p.after === 'complete' ? 'completion' : 'streaming';
  return `${p.fault} on ${p.channel === 'main' ? 'the main channel' : `multifd channel ${p.channel}`} during ${when}`;
}

test('network faults: the source fails cleanly, the destination recovers, a retry succeeds', async (t) => {
  const pair = await LocalPair.start({ ram: '32M', workload: 'none', normalPageRatio: 0.5 });
  try {
    const digest = async (side: 'source' | 'dest'): Promise<string> =>
      (await pair[side].qmp.execute<{ digest: string }>('x-query-ram-digest')).digest;
    const before = await digest('source');
    await pair.source.qmp.execute('migrate-set-capabilities', { capabilities: CAPS });
    await pair.dest.qmp.execute('migrate-set-capabilities', { capabilities: CAPS });
    await pair.source.qmp.execute('migrate-set-parameters', {
      'multifd-channels': 2,
      'x-stall-timeout': 1500,
      // Slow enough that the streaming-phase faults land while RAM is still moving.
      'max-bandwidth': 16 * 1024 * 1024,
    });
    const direct = await pair.incomingUri();
    const destPort = Number(direct.split(':').pop());
    let survived = 0;
    for (const plan of plans) {
      await t.test(describePlan(plan), async () => {
        const proxy = await FaultProxy.start(destPort, plan);
        try {
          await pair.source.qmp.execute('migrate', { uri: `tcp:127.0.0.1:${proxy.port}` });
          const end = await pair.waitFinished(undefined, 20);
          assert.ok(proxy.injected, 'the fault was injected');
          assert.equal(end.status, 'failed', `status ${end.status}`);
          assert.ok(String(end['error-desc']).length > 0, 'error-desc says why');
          const st = await pair.source.qmp.execute<{ status: string }>('query-status');
          assert.equal(st.status, 'running', 'the source guest keeps running');
          assert.equal(await digest('source'), before, 'source RAM intact');
          // The destination notices (closed socket, or stall timeout) and discards its state.
          for (let i = 0; ; i++) {
            const busy = await pair.dest.qmp.execute<unknown[]>('query-yank');
            if (busy.length === 0) break;
            assert.ok(i < 300, 'destination gave up the failed migration');
            await sleep(20);
          }
          // 'setup' (still listening) when the fault came before a source was bound.
          const d = await pair.dest.qmp.execute<Info>('query-migrate');
          assert.ok(['failed', 'cancelled', 'setup'].includes(d.status), `destination ${d.status}`);
          assert.notEqual(await digest('dest'), before, 'nothing of the failed migration is kept');
          survived++;
        } finally {
          await proxy.close();
        }
      });
    }
    // A retry without the faulty network succeeds, byte-exact.
    await pair.source.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 0 });
    await pair.source.qmp.execute('migrate', { uri: direct });
    const ok = await pair.waitFinished();
    assert.equal(ok.status, 'completed', String(ok['error-desc']));
    assert.equal((ok as Info).livemig?.verify, 'ok');
    assert.equal(survived, plans.length);
  } finally {
    await pair.close();
  }
});
