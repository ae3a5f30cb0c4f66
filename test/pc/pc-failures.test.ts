// Migrations of a busy Linux PC that must not complete: cancelled, yanked, or refused by the
// destination (another machine type, RAM size or emulator build, a damaged or forged device
// state). Each leaves the source PC running with its console alive, and a refused destination
// alive and ready; the run control (stop, cont, query-status, events) acts on the emulator.

import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { crc32 } from 'node:zlib';
import { LocalPair, type MigrationResult } from '../../src/harness/local-migration.js';
import { ConsoleClient } from '../../src/chardev/index.js';
import { FrameType, decodeDeviceState, encodeDeviceState } from '../../src/migration/protocol.js';
import { packZeroBlocks, unpackZeroBlocks } from '../../src/machine/pc/state-packing.js';
import { FrameProxy, rewriteJson, type FrameRewrite } from '../support/frame-proxy.js';
import { DEFAULT_APPEND } from '../../src/machine/pc/pc-config.js';
import { guestImage, lastCounter, shell } from './helpers.js';
import { pcMigrationNice } from '../../src/machine/pc/pc-migration-nice.js';

type Info = MigrationResult & { 'error-desc'?: string };
const CAPS = { multifd: true, events: true, 'x-verify-ram': true };
const RAM = '128M';

test('a busy Linux PC whose migration does not complete keeps running', async (t) => {
  if (!guestImage(t)) return;
  const pair = await LocalPair.start({
    machine: 'pc',
    ram: RAM,
    pc: { append: `${DEFAULT_APPEND} livemig.workload=cp:8M,counter` },
  });
  const con = await ConsoleClient.connect(pair.source.console!);
  const status = async (side: 'source' | 'dest'): Promise<string> =>
    (await pair[side].qmp.execute<{ status: string }>('query-status')).status;

  /** The source's guest runs and answers, and its counter moves. */
  const sourceAlive = async (): Promise<void> => {
    assert.equal(await status('source'), 'running');
    assert.match(await shell(con, 'echo "alive $((2 + 3))"'), /alive 5/);
    const seen = lastCounter(con);
    await con.waitFor(new RegExp(`livemig-counter ${seen + 1}\\s`), 20_000);
  };

  /** Start a migration to `uri` and wait until it has ended; returns the source's result. */
  const migrateTo = async (uri: string, params: Record<string, unknown> = {}): Promise<Info> => {
    const capabilities = Object.entries(CAPS).map(([capability, state]) => ({ capability, state }));
    await pair.source.qmp.execute('migrate-set-capabilities', { capabilities });
    await pair.dest.qmp.execute('migrate-set-capabilities', { capabilities });
    await pair.source.qmp.execute('migrate-set-parameters', { 'multifd-channels': 2, ...params });
    await pair.source.qmp.execute('migrate', { uri });
    return (await pair.waitFinished(undefined, 20)) as Info;
  };

  /** A migration through a proxy that rewrites the source's frames. */
  const throughProxy = async (rewrite: FrameRewrite): Promise<Info> => {
    const target = Number((await pair.incomingUri()).split(':').pop());
    const proxy = await FrameProxy.start(target, rewrite);
    try {
      return await migrateTo(proxy.uri);
    } finally {
      await proxy.close();
    }
  };

  /** The destination refused, said why, stays waiting, and its emulator is alive. */
  const refused = async (src: Info, expected: RegExp): Promise<void> => {
    assert.equal(src.status, 'failed');
    assert.match(src['error-desc'] ?? '', expected);
    const dst = await pair.dest.qmp.execute<Info>('query-migrate');
    assert.equal(dst.status, 'failed');
    assert.match(dst['error-desc'] ?? '', expected);
    assert.equal(await status('dest'), 'inmigrate', 'the destination still waits');
    await sourceAlive();
  };

  try {
    await con.waitFor(/workload 'cp:8M' running/, 120_000);
    await con.waitFor(/livemig-counter 2\s/, 30_000);

    await t.test('migrate_cancel mid-migration: the source goes on', async () => {
      // A narrow link keeps the migration going long enough to cancel it.
      await pair.startMigration(CAPS, { 'multifd-channels': 2, 'max-bandwidth': 4 << 20 });
      await pair.waitSource((i) => i.status === 'active');
      await pair.source.qmp.execute('migrate_cancel');
      const src = await pair.waitFinished(undefined, 20);
      assert.equal(src.status, 'cancelled');
      await sourceAlive();
    });

    await t.test('yank mid-migration: the source goes on', async () => {
      await pair.source.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 4 << 20 });
      await pair.source.qmp.execute('migrate', { uri: await pair.incomingUri() });
      await pair.waitSource((i) => i.status === 'active');
      await pair.source.qmp.execute('yank', { instances: [{ type: 'migration' }] });
      const src = (await pair.waitFinished(undefined, 20)) as Info;
      assert.equal(src.status, 'failed');
      assert.match(src['error-desc'] ?? '', /yank/);
      await sourceAlive();
      await pair.source.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 0 });
    });

    await t.test('a destination of another machine type or RAM size is refused', async () => {
      await pair.newDestination(['--ram', RAM, '--incoming', 'defer']);
      await refused(
        await migrateTo(await pair.incomingUri()),
        /machine type mismatch: the source is a pc machine, this destination a synthetic machine \(start the destination with --machine pc\)/,
      );
      await pair.newDestination(['--machine', 'pc', '--ram', '256M', '--incoming', 'defer']);
      await refused(await migrateTo(await pair.incomingUri()), /RAM block 0 mismatch/);
      await pair.newDestination();
    });

    await t.test('a source with another emulator build is refused', async () => {
      const other = rewriteJson(FrameType.Hello, (hello) => {
        (hello.machine as Record<string, unknown>).emulator = 'v86 0.5.999+gdeadbee (wasm 0123)';
      });
      await refused(
        await throughProxy(other),
        /pc machine mismatch in emulator: source "v86 0\.5\.999\+gdeadbee \(wasm 0123\)", destination "v86 /,
      );
    });

    await t.test('a device state damaged on the way is refused', async () => {
      const damage: FrameRewrite = (type, payload) => {
        if (type !== FrameType.DeviceState) return payload;
        const copy = Buffer.from(payload);
        copy[copy.length - 100] ^= 0xff;
        return copy;
      };
      await refused(await throughProxy(damage), /device state refused: state damaged on the way/);
    });

    await t.test('a device state whose packing does not add up is refused', async () => {
      const cut: FrameRewrite = (type, payload) => {
        if (type !== FrameType.DeviceState) return payload;
        const { desc, state } = decodeDeviceState(payload);
        return Buffer.concat(encodeDeviceState(desc, state.subarray(0, state.length - 1)));
      };
      await refused(await throughProxy(cut), /device state refused: packed state ends inside/);
    });

    await t.test('a forged device state (its digest made to match) is refused', async () => {
      const forge: FrameRewrite = (type, payload) => {
        if (type !== FrameType.DeviceState) return payload;
        const { desc, state } = decodeDeviceState(payload);
        const pc = desc.pc as Record<string, unknown>;
        const forged = Buffer.from(unpackZeroBlocks(state, pc.bytes));
        forged.writeInt32LE(0x1234, 0);
        pc.crc32 = crc32(forged).toString(16).padStart(8, '0');
        return Buffer.concat(encodeDeviceState(desc, packZeroBlocks(forged)));
      };
      await refused(await throughProxy(forge), /device state refused: bad state magic 0x1234/);
    });

    await t.test('after all that, the same destination takes the guest', async () => {
      const src = await migrateTo(await pair.incomingUri());
      assert.equal(src.status, 'completed', src['error-desc']);
      assert.equal((src as Info & { livemig: { verify: string } }).livemig.verify, 'ok');
      const dst = await ConsoleClient.connect(pair.dest.console!);
      try {
        assert.match(await shell(dst, 'echo "moved $((3 * 3))"'), /moved 9/);
      } finally {
        await dst.close();
      }
      await pair.next();
    });
  } finally {
    await con.close();
    await pair.close();
  }
});

test('stop, cont, -S and query-status act on the PC emulator', async (t) => {
  if (!guestImage(t)) return;
  const pair = await LocalPair.start({
    machine: 'pc',
    ram: RAM,
    sourcePaused: true,
    pc: { append: `${DEFAULT_APPEND} livemig.workload=counter` },
  });
  const con = await ConsoleClient.connect(pair.source.console!);
  try {
    const qmp = pair.source.qmp;
    const status = async (): Promise<string> =>
      (await qmp.execute<{ status: string }>('query-status')).status;
    assert.equal(await status(), 'paused', '-S: the PC does not start');
    await sleep(500);
    assert.equal(con.text(), '', 'nothing ran, nothing was printed');
    const params = await qmp.execute<Record<string, unknown>>('query-migrate-parameters');
    assert.equal(
      params['x-migration-nice'],
      pcMigrationNice(),
      "a PC starts with its host's x-migration-nice (19 with fewer than 3 cores)",
    );
    await qmp.execute('migrate-set-capabilities', {
      capabilities: [{ capability: 'events', state: true }],
    });
    await qmp.execute('cont');
    await qmp.waitEvent('RESUME', undefined, 5000);
    assert.equal(await status(), 'running');
    await con.waitFor(/livemig-counter 2\s/, 120_000);
    await qmp.execute('stop');
    await qmp.waitEvent('STOP', undefined, 5000);
    assert.equal(await status(), 'paused');
    const stoppedAt = lastCounter(con);
    await sleep(2500);
    assert.ok(lastCounter(con) <= stoppedAt + 1, 'a stopped PC prints no more');
    await qmp.execute('cont');
    await con.waitFor(new RegExp(`livemig-counter ${stoppedAt + 2}\\s`), 20_000);
    assert.equal(await status(), 'running');
  } finally {
    await con.close();
    await pair.close();
  }
});
