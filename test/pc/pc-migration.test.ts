// A running Linux PC (v86, the fetched Debian kernel and initramfs) migrated live between real
// `livemig run --machine pc` processes, again and again: the guest boots once, and each
// migration's destination is the next one's source. After every switchover the destination's
// console answers, a file written in the guest before keeps its sha256, the guest's counter
// goes on where it was, and x-verify-ram found RAM identical.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalPair, type MigrationResult } from '../../src/harness/local-migration.js';
import { ConsoleClient } from '../../src/chardev/index.js';
import { createTestPki } from '../../src/tls/pki.js';
import { DEFAULT_APPEND } from '../../src/machine/pc/pc-config.js';
import { guestImage, lastCounter, shell } from './helpers.js';

type Info = MigrationResult & {
  'error-desc'?: string;
  downtime?: number;
  'cpu-throttle-percentage'?: number;
  ram: Record<string, number>;
  livemig: Record<string, unknown> & { verify: string; 'dirty-sync'?: Record<string, number> };
};

const CAPS = { multifd: true, events: true, 'x-verify-ram': true };

test('a running Linux PC migrates live, again and again, and goes on at each destination', async (t) => {
  if (!guestImage(t)) return;
  const pair = await LocalPair.start({
    machine: 'pc',
    ram: '128M',
    pc: { append: `${DEFAULT_APPEND} livemig.workload=counter` },
  });
  let con = await ConsoleClient.connect(pair.source.console!);
  const pki = createTestPki(mkdtempSync(join(tmpdir(), 'livemig-pc-tls-')));
  try {
    await con.waitFor(/livemig-guest: ready/, 120_000);
    await con.waitFor(/livemig-counter 2/, 30_000);
    const written = await shell(
      con,
      'dd if=/dev/urandom of=/tmp/before bs=1k count=2048 2>/dev/null; sha256sum /tmp/before',
    );
    const sha = /([0-9a-f]{64})/.exec(written)?.[1];
    assert.ok(sha, `sha256sum printed a digest: ${written}`);

    /** One migration with these parameters, and every check of the guest at its destination. */
    const migrate = async (
      params: Record<string, unknown>,
      beforeMigrate?: () => Promise<void>,
    ): Promise<Info> => {
      await beforeMigrate?.();
      const counter = lastCounter(con);
      const { source, dest } = await pair.migrate(CAPS, { 'multifd-channels': 2, ...params });
      const src = source as Info;
      assert.equal(src.status, 'completed', String(src['error-desc']));
      assert.equal(src.livemig.verify, 'ok', 'x-verify-ram: RAM identical at switchover');
      assert.equal(dest.status, 'completed', String(dest['error-desc']));
      assert.equal(src.livemig.machine, 'pc');
      const status = async (side: 'source' | 'dest'): Promise<string> =>
        (await pair[side].qmp.execute<{ status: string }>('query-status')).status;
      assert.equal(await status('source'), 'postmigrate');
      assert.equal(await status('dest'), 'running');
      // The console follows the guest: the destination's answers, with the file intact.
      const next = await ConsoleClient.connect(pair.dest.console!);
      const from = next.mark();
      const answer = await shell(next, 'echo "answer $((6 * 7))"; sha256sum /tmp/before');
      assert.match(answer, /answer 42/);
      assert.match(answer, new RegExp(`${sha}  /tmp/before`), 'the file kept its sha256');
      // The counter goes on from where it was: it did not restart, and it still counts. (The
      // source's console may lag its guest under load: the destination's first line can be
      // well past `counter`.)
      // Whole lines only: a chunk can end inside a number ("livemig-counter 2" of 25).
      await next.waitFor(/livemig-counter \d+\s[^]*livemig-counter \d+\s/, 30_000, from);
      const seen = [...next.text(from).matchAll(/livemig-counter (\d+)\s/g)].map((m) =>
        Number(m[1]),
      );
      assert.ok(seen[0] > counter - 2, `counter went on from ${counter}: ${seen.join(' ')}`);
      assert.ok(seen[seen.length - 1] > seen[0], `counter still counts: ${seen.join(' ')}`);
      await con.close();
      con = next;
      await pair.next();
      return src;
    };

    await t.test('multifd zero-page detection, 2 channels', async () => {
      const src = await migrate({ 'zero-page-detection': 'multifd' });
      const sent = src.ram.duplicate + src.ram.normal;
      assert.ok(sent >= (128 * 1024 * 1024) / 4096, 'every page went at least once');
      assert.ok(src.ram.duplicate > src.ram.normal, 'a booted guest is mostly zero pages');
      const sync = src.livemig['dirty-sync']!;
      assert.ok(sync.count >= 2, 'a sync before pass 1 and the final one');
      assert.ok(sync['total-ms'] > 0);
      // Its CPU: the comparing threads', never more per sync than in all (an idle guest's logged
      // syncs can take less than the 0.01 ms the figure shows).
      assert.equal(typeof sync['cpu-total-ms'], 'number');
      assert.ok(sync['cpu-max-ms'] >= 0 && sync['cpu-max-ms'] <= sync['cpu-total-ms']);
      // The write log was in use: syncs read the pages it marked (x-verify-ram proves none missed).
      assert.ok(sync.logged >= 1 && sync.logged <= sync.count, `logged ${sync.logged}`);
    });

    await t.test('dsa-accel: the emulated DSA finds the zero pages', async () => {
      const src = await migrate({
        'zero-page-detection': 'dsa-accel',
        'accel-path': ['dsa-emu:dsa0/wq0.0'],
      });
      const accel = src.livemig.accelerator as Record<string, number>;
      assert.ok(accel, 'the accelerator reported its counters');
      assert.ok(src.ram.duplicate > 0);
    });

    await t.test('pause-before-switchover, then migrate-continue', async () => {
      await pair.startMigration({ ...CAPS, 'pause-before-switchover': true }, {});
      await pair.waitSource((i) => i.status === 'pre-switchover');
      assert.equal(
        (await pair.source.qmp.execute<{ status: string }>('query-status')).status,
        'finish-migrate',
        'the PC is stopped while it waits',
      );
      await pair.source.qmp.execute('migrate-continue', { state: 'pre-switchover' });
      const src = (await pair.waitFinished()) as Info;
      assert.equal(src.status, 'completed', String(src['error-desc']));
      assert.equal(src.livemig.verify, 'ok');
      const next = await ConsoleClient.connect(pair.dest.console!);
      assert.match(await shell(next, 'sha256sum /tmp/before'), new RegExp(sha!));
      await con.close();
      con = next;
      await pair.next();
      // The next migrations run straight through.
      await pair.source.qmp.execute('migrate-set-capabilities', {
        capabilities: [{ capability: 'pause-before-switchover', state: false }],
      });
    });

    await t.test('zero-page-detection none and legacy', async () => {
      const none = await migrate({ 'zero-page-detection': 'none' });
      assert.equal(none.ram.duplicate, 0, 'none sends every page whole');
      const legacy = await migrate({ 'zero-page-detection': 'legacy' });
      assert.ok(legacy.ram.duplicate > 0);
    });

    await t.test('over TLS', async () => {
      await migrate({ 'tls-creds': 'tls0', 'tls-hostname': 'localhost' }, async () => {
        await pair.dest.qmp.execute('object-add', {
          'qom-type': 'tls-creds-x509',
          id: 'tls0',
          dir: pki.server,
          endpoint: 'server',
        });
        await pair.dest.qmp.execute('migrate-set-parameters', { 'tls-creds': 'tls0' });
        await pair.source.qmp.execute('object-add', {
          'qom-type': 'tls-creds-x509',
          id: 'tls0',
          dir: pki.client,
          endpoint: 'client',
        });
      });
      // The guest's new host keeps its server credentials; it migrates on in plain TCP.
      await pair.source.qmp.execute('migrate-set-parameters', { 'tls-creds': '' });
    });

    await t.test('a busy guest with downtime-limit 10 ms: many passes, nothing lost', async () => {
      await shell(con, 'livemig-workload cp:8M');
      await con.waitFor(/workload 'cp:8M' running/, 30_000);
      for (let run = 0; run < 3; run++) {
        const src = await migrate({ 'downtime-limit': 10 });
        assert.ok(src.ram['dirty-sync-count'] >= 1);
      }
    });

    await t.test('auto-converge throttles the emulator until the migration converges', async () => {
      // A narrow link makes the busy guest outrun it; the throttle must rise before it ends.
      let throttled = 0;
      await pair.startMigration(
        { ...CAPS, 'auto-converge': true },
        {
          'multifd-channels': 2,
          'max-bandwidth': 8 * 1024 * 1024,
          'downtime-limit': 50,
          'cpu-throttle-initial': 50,
          'cpu-throttle-increment': 20,
        },
      );
      const src = (await pair.waitSource((i) => {
        throttled = Math.max(throttled, Number((i as Info)['cpu-throttle-percentage'] ?? 0));
        return throttled > 0 || ['completed', 'failed'].includes(i.status);
      }, 60_000)) as Info;
      assert.ok(throttled > 0 || src.status === 'completed', 'throttled, or converged anyway');
      // Let it finish at full speed.
      await pair.source.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 0 });
      const done = (await pair.waitFinished()) as Info;
      assert.equal(done.status, 'completed', String(done['error-desc']));
      assert.equal(done.livemig.verify, 'ok');
      const dst = await ConsoleClient.connect(pair.dest.console!);
      assert.match(await shell(dst, 'echo "still $((1 + 1))"'), /still 2/);
      await con.close();
      con = dst;
      await pair.next();
    });
  } finally {
    await con.close();
    await pair.close();
    rmSync(pki.root, { recursive: true, force: true });
  }
});
