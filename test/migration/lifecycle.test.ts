// Convergence, cancel and failure, end to end between real processes. Whatever happens, the
// source guest keeps running with its RAM intact, and a later migration succeeds.

import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalPair, type MigrationResult } from '../../src/harness/local-migration.js';

type Info = MigrationResult & { ram?: Record<string, number>; livemig?: Record<string, unknown> };
const VERIFY = { multifd: true, events: true, 'x-verify-ram': true };

async function digest(pair: LocalPair, side: 'source' | 'dest'): Promise<string> {
  const r = await pair[side].qmp.execute<{ digest: string }>('x-query-ram-digest');
  return r.digest;
}

/**
 * Until the source guest's workload writes at its rate: its thread starts with the process, a
 * moment after QMP answers, and through the process's first second it shares two cores with
 * the threads the process starts ahead (the next migration's, the emulated DSA's, which warm
 * up). A guest held back then dirties a fraction of its rate, a pass may find nothing dirty,
 * and that pass rightly fits any downtime-limit.
 */
async function guestWriting(pair: LocalPair): Promise<void> {
  const first = await digest(pair, 'source');
  for (let i = 0; i < 200; i++) {
    await sleep(50);
    if ((await digest(pair, 'source')) !== first) {
      await sleep(1500);
      return;
    }
  }
  throw new Error("the source guest's workload never changed its RAM");
}

async function status(pair: LocalPair, side: 'source' | 'dest'): Promise<string> {
  return (await pair[side].qmp.execute<{ status: string }>('query-status')).status;
}

test('convergence blocked: tiny max-bandwidth and 1 ms downtime-limit keep it active, pass after pass, until cancelled', async () => {
  // 32 MB/s of dirtied pages against 8 MiB/s of link: each pass finds its whole range dirty
  // again even if the guest gets only a third of its core (at 8 MB/s, below the link's rate,
  // the dirty set shrank pass by pass, and a guest starved by other tests let a pass converge).
  const pair = await LocalPair.start({ ram: '32M', workload: 'stress:32', normalPageRatio: 0 });
  try {
    await guestWriting(pair);
    await pair.startMigration(VERIFY, {
      'multifd-channels': 2,
      'max-bandwidth': 8 * 1024 * 1024,
      'downtime-limit': 1,
    });
    const info = await pair.waitSource((i) => Number((i as Info).ram?.['dirty-sync-count']) >= 4);
    assert.equal(info.status, 'active');
    const later = await pair.waitSource(
      (i) =>
        Number((i as Info).ram?.['dirty-sync-count']) >
        Number((info as Info).ram!['dirty-sync-count']),
    );
    assert.equal(later.status, 'active', 'still active: it never switched over');
    await pair.source.qmp.execute('migrate_cancel');
    const end = await pair.waitFinished();
    assert.equal(end.status, 'cancelled');
    assert.equal(await status(pair, 'source'), 'running');
  } finally {
    await pair.close();
  }
});

test('convergence allowed: a generous downtime-limit completes while the guest runs', async () => {
  const pair = await LocalPair.start({ ram: '32M', workload: 'stress:4', normalPageRatio: 0.25 });
  try {
    const { source, dest } = await pair.migrate(VERIFY, {
      'multifd-channels': 2,
      'downtime-limit': 30000,
    });
    assert.equal(source.status, 'completed', String(source['error-desc']));
    assert.equal((source as Info).livemig?.verify, 'ok');
    assert.equal(dest.status, 'completed');
    assert.equal(typeof source.downtime, 'number');
  } finally {
    await pair.close();
  }
});

test('cancel during setup leaves the source running and intact; a second migration succeeds', async () => {
  const pair = await LocalPair.start({ ram: '32M', workload: 'none', normalPageRatio: 0.5 });
  try {
    const before = await digest(pair, 'source');
    const uri = await pair.incomingUri();
    await pair.source.qmp.execute('migrate-set-capabilities', {
      capabilities: [
        { capability: 'multifd', state: true },
        { capability: 'x-verify-ram', state: true },
      ],
    });
    await pair.source.qmp.execute('migrate', { uri });
    const first = await pair.source.qmp.execute<Info>('query-migrate');
    assert.equal(first.status, 'setup');
    await pair.source.qmp.execute('migrate_cancel');
    const end = await pair.waitFinished();
    assert.equal(end.status, 'cancelled');
    assert.equal(await status(pair, 'source'), 'running');
    assert.equal(await digest(pair, 'source'), before, 'source RAM untouched');

    await pair.dest.qmp.execute('migrate-set-capabilities', {
      capabilities: [
        { capability: 'multifd', state: true },
        { capability: 'x-verify-ram', state: true },
      ],
    });
    await waitDestIdle(pair);
    await pair.source.qmp.execute('migrate', { uri });
    const again = await pair.waitFinished();
    assert.equal(again.status, 'completed', String(again['error-desc']));
    assert.equal((again as Info).livemig?.verify, 'ok');
    assert.equal(await digest(pair, 'dest'), before);
  } finally {
    await pair.close();
  }
});

test('cancel during active leaves the source running and intact; a second migration succeeds', async () => {
  const pair = await LocalPair.start({ ram: '32M', workload: 'none', normalPageRatio: 0.5 });
  try {
    const before = await digest(pair, 'source');
    const uri = await pair.startMigration(VERIFY, {
      'multifd-channels': 2,
      'max-bandwidth': 2 * 1024 * 1024,
    });
    const active = await pair.waitSource(
      (i) => i.status === 'active' && Number((i as Info).ram?.transferred) > 0,
    );
    assert.equal(active.status, 'active');
    await pair.source.qmp.execute('migrate_cancel');
    const end = await pair.waitFinished();
    assert.equal(end.status, 'cancelled');
    assert.equal(await status(pair, 'source'), 'running');
    assert.equal(await digest(pair, 'source'), before, 'source RAM untouched');

    await waitDestIdle(pair);
    await pair.source.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 0 });
    await pair.source.qmp.execute('migrate', { uri });
    const again = await pair.waitFinished();
    assert.equal(again.status, 'completed', String(again['error-desc']));
    assert.equal((again as Info).livemig?.verify, 'ok');
  } finally {
    await pair.close();
  }
});

test('a destination killed mid-migration gives failed with error-desc; the source guest keeps running', async () => {
  const pair = await LocalPair.start({ ram: '32M', workload: 'none', normalPageRatio: 0.5 });
  try {
    const before = await digest(pair, 'source');
    await pair.startMigration(VERIFY, { 'multifd-channels': 2, 'max-bandwidth': 2 * 1024 * 1024 });
    await pair.waitSource((i) => i.status === 'active' && Number((i as Info).ram?.transferred) > 0);
    pair.dest.proc.kill('SIGKILL');
    const end = await pair.waitFinished();
    assert.equal(end.status, 'failed');
    assert.match(String(end['error-desc']), /closed|reset|ECONN|EPIPE/i);
    assert.equal(await status(pair, 'source'), 'running');
    assert.equal(await digest(pair, 'source'), before, 'source RAM untouched');
  } finally {
    await pair.close();
  }
});

/** After a cancelled migration the destination discards its state and listens again. */
async function waitDestIdle(pair: LocalPair): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const d = await pair.dest.qmp.execute<Info>('query-migrate');
    if (d.status !== 'active') return;
    await sleep(20);
  }
  throw new Error('destination still busy');
}

test('auto-converge: a guest that dirties faster than the link converges with it, never without', async () => {
  const pair = await LocalPair.start({ ram: '32M', workload: 'stress:80', normalPageRatio: 0 });
  const params = {
    'multifd-channels': 2,
    'max-bandwidth': 16 * 1024 * 1024,
    // 20 ms at 16 MiB/s is ~80 pages: the guest dirties more than that in any pass unthrottled.
    'downtime-limit': 20,
    'cpu-throttle-initial': 50,
    'cpu-throttle-increment': 20,
  };
  try {
    // Without auto-converge: passes go by, and it stays active.
    await pair.startMigration({ multifd: true, 'x-verify-ram': true }, params);
    const stuck = await pair.waitSource(
      (i) => Number((i as Info).ram?.['dirty-sync-count']) >= 5,
      60_000,
    );
    assert.equal(stuck.status, 'active', 'no convergence without auto-converge');
    assert.equal(stuck['cpu-throttle-percentage'], undefined, 'no throttle reported when off');
    await pair.source.qmp.execute('migrate_cancel');
    assert.equal((await pair.waitFinished()).status, 'cancelled');
    await waitDestIdle(pair);

    // With it: the vCPU is throttled step by step until the migration completes.
    await pair.source.qmp.execute('migrate-set-capabilities', {
      capabilities: [{ capability: 'auto-converge', state: true }],
    });
    await pair.source.qmp.execute('migrate', { uri: await pair.incomingUri() });
    let maxThrottle = 0;
    let lastProgress = 0;
    const end = await pair.waitSource((i) => {
      maxThrottle = Math.max(maxThrottle, Number(i['cpu-throttle-percentage'] ?? 0));
      const p = Number((i as Info).livemig?.progress ?? 0);
      assert.ok(p >= lastProgress, `progress never runs backwards (${lastProgress} -> ${p})`);
      lastProgress = p;
      return ['completed', 'failed', 'cancelled'].includes(i.status);
    }, 120_000);
    assert.equal(end.status, 'completed', String(end['error-desc']));
    assert.equal((end as Info).livemig?.verify, 'ok');
    assert.ok(maxThrottle >= 20, `the vCPU was throttled (max ${maxThrottle}%)`);
    assert.equal(end['cpu-throttle-percentage'], 0, 'throttling stops when the migration ends');
  } finally {
    await pair.close();
  }
});

test('yank closes every migration socket at once: failed, and the guest keeps running', async () => {
  const pair = await LocalPair.start({ ram: '32M', workload: 'none', normalPageRatio: 0.5 });
  try {
    const before = await digest(pair, 'source');
    await pair.startMigration(VERIFY, { 'multifd-channels': 2, 'max-bandwidth': 2 * 1024 * 1024 });
    await pair.waitSource((i) => i.status === 'active');
    assert.deepEqual(await pair.source.qmp.execute('query-yank'), [{ type: 'migration' }]);
    await pair.source.qmp.execute('yank', { instances: [{ type: 'migration' }] });
    const end = await pair.waitFinished();
    assert.equal(end.status, 'failed');
    assert.match(String(end['error-desc']), /yank/);
    assert.equal(await status(pair, 'source'), 'running');
    assert.equal(await digest(pair, 'source'), before);
    assert.deepEqual(await pair.source.qmp.execute('query-yank'), []);
  } finally {
    await pair.close();
  }
});

test('a stalled destination (process stopped) is detected within x-stall-timeout', async () => {
  const pair = await LocalPair.start({ ram: '32M', workload: 'none', normalPageRatio: 0.5 });
  try {
    await pair.startMigration(VERIFY, {
      'multifd-channels': 2,
      'max-bandwidth': 4 * 1024 * 1024,
      'x-stall-timeout': 1500,
    });
    await pair.waitSource((i) => i.status === 'active' && Number((i as Info).ram?.transferred) > 0);
    pair.dest.proc.kill('SIGSTOP');
    try {
      const end = await pair.waitFinished();
      assert.equal(end.status, 'failed');
      assert.match(String(end['error-desc']), /stalled/);
      assert.equal(await status(pair, 'source'), 'running');
    } finally {
      pair.dest.proc.kill('SIGCONT');
    }
  } finally {
    await pair.close();
  }
});

test('pause-before-switchover: cancel in pre-switchover resumes the guest; migrate-continue completes', async () => {
  const pair = await LocalPair.start({ ram: '32M', workload: 'none', normalPageRatio: 0.5 });
  try {
    const before = await digest(pair, 'source');
    const caps = { ...VERIFY, 'pause-before-switchover': true };
    const uri = await pair.startMigration(caps, { 'multifd-channels': 2 });
    await pair.waitSource((i) => i.status === 'pre-switchover');
    assert.equal(await status(pair, 'source'), 'finish-migrate', 'the guest is paused there');
    await assert.rejects(
      pair.source.qmp.execute('migrate-continue', { state: 'active' }),
      /not in expected state/,
    );
    await pair.source.qmp.execute('migrate_cancel');
    assert.equal((await pair.waitFinished()).status, 'cancelled');
    assert.equal(await status(pair, 'source'), 'running');
    assert.equal(await digest(pair, 'source'), before);

    await waitDestIdle(pair);
    await pair.source.qmp.execute('migrate', { uri });
    await pair.waitSource((i) => i.status === 'pre-switchover');
    await pair.source.qmp.execute('migrate-continue', { state: 'pre-switchover' });
    const end = await pair.waitFinished();
    assert.equal(end.status, 'completed', String(end['error-desc']));
    assert.equal((end as Info).livemig?.verify, 'ok');
  } finally {
    await pair.close();
  }
});

test('cancel in the device state (final pass under way) resumes the guest', async () => {
  const pair = await LocalPair.start({ ram: '64M', workload: 'stress', normalPageRatio: 0 });
  try {
    const caps = { ...VERIFY, 'pause-before-switchover': true };
    await pair.startMigration(caps, { 'multifd-channels': 2, 'downtime-limit': 30000 });
    await pair.waitSource((i) => i.status === 'pre-switchover');
    // The stopped guest has its whole stress range dirty: the final pass takes a while.
    await pair.source.qmp.execute('migrate-continue', { state: 'pre-switchover' });
    const during = await pair.source.qmp.execute<Info>('query-migrate');
    await pair.source.qmp.execute('migrate_cancel');
    const end = await pair.waitFinished();
    if (during.status === 'device') assert.equal(end.status, 'cancelled');
    assert.ok(['cancelled', 'completed'].includes(end.status));
    if (end.status === 'cancelled') assert.equal(await status(pair, 'source'), 'running');
    assert.equal(during.status, 'device', 'the cancel came during the final pass');
  } finally {
    await pair.close();
  }
});
