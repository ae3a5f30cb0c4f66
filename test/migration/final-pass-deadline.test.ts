// A source that announces a final pass and never sends it: the destination's wait for it has a
// deadline (no channel receives anything for x-stall-timeout), whatever heartbeats still arrive
// on the main channel. The destination fails saying so; the source fails too and keeps running.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalPair, type MigrationResult } from '../../src/harness/local-migration.js';
import { FrameType } from '../../src/migration/protocol.js';
import { FrameProxy, rewriteJson } from '../support/frame-proxy.js';

type Info = MigrationResult & { 'error-desc'?: string };

test('a final pass announced and never sent fails the destination within x-stall-timeout', async () => {
  const pair = await LocalPair.start({ ram: '16M', workload: 'stress:4', normalPageRatio: 0.5 });
  try {
    const caps = [{ capability: 'multifd', state: true }];
    await pair.source.qmp.execute('migrate-set-capabilities', { capabilities: caps });
    await pair.dest.qmp.execute('migrate-set-capabilities', { capabilities: caps });
    await pair.source.qmp.execute('migrate-set-parameters', {
      'multifd-channels': 2,
      'x-stall-timeout': 1000,
    });
    const target = Number((await pair.incomingUri()).split(':').pop());
    // The source's Complete names a pass one beyond the one it sent.
    let announced = 0;
    const proxy = await FrameProxy.start(
      target,
      rewriteJson(FrameType.Complete, (p) => {
        announced = Number(p.finalPass) + 1;
        p.finalPass = announced;
      }),
    );
    try {
      await pair.source.qmp.execute('migrate', { uri: proxy.uri });
      const source = (await pair.waitFinished(undefined, 20)) as Info;
      assert.ok(announced > 1, 'Complete went through the proxy');
      assert.equal(source.status, 'failed');
      assert.match(
        String(source['error-desc']),
        new RegExp(`destination: final pass ${announced} announced, but multifd channel \\d`),
      );
      const st = await pair.source.qmp.execute<{ status: string }>('query-status');
      assert.equal(st.status, 'running', 'the source guest keeps running');
      const dest = await pair.dest.qmp.execute<Info>('query-migrate');
      assert.equal(dest.status, 'failed');
      assert.match(String(dest['error-desc']), /no channel received anything for 1000 ms/);
    } finally {
      await proxy.close();
    }
  } finally {
    await pair.close();
  }
});
