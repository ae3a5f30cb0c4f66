// zero-page-detection=dsa-accel end to end: the multifd senders hand their zero-page search to
// the emulated DSA device; the destination must end byte-exact whatever the device does.

import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LocalPair } from '../../src/harness/local-migration.js';
import { Vm } from '../../src/machine/vm.js';
import { parseWorkload } from '../../src/ram/vcpu-control.js';

type Info = Record<string, unknown> & {
  status: string;
  ram: Record<string, number>;
  livemig: Record<string, unknown> & {
    accelerator?: Record<string, unknown> & { cpuFallback: Record<string, number> };
    'thread-cpu-ms': Record<string, number>;
  };
};
const ACCEL = { 'zero-page-detection': 'dsa-accel', 'accel-path': ['dsa-emu:dsa0/wq0.0'] };

for (const channels of [1, 2, 4]) {
  test(`dsa-accel: byte-exact migration under the stress workload, ${channels} channel(s)`, async () => {
    const pair = await LocalPair.start({ ram: '64M', normalPageRatio: 0.5, workload: 'stress' });
    try {
      const { source, dest } = await pair.migrate(
        { multifd: true, 'x-verify-ram': true },
        { 'multifd-channels': channels, 'downtime-limit': 2000, ...ACCEL },
      );
      const src = source as Info;
      assert.equal(src.status, 'completed', String(src['error-desc']));
      assert.equal(src.livemig.verify, 'ok');
      assert.equal(dest.status, 'completed');
      const acc = src.livemig.accelerator!;
      assert.ok(acc, 'query-migrate carries the accelerator counters');
      assert.ok(Number(acc.pagesDevice) > 0, 'the device decided pages');
      assert.equal(Number(acc.pagesDevice) + Number(acc.pagesCpu), Number(acc.pages));
      assert.ok(src.ram.duplicate > 0, 'zero pages were found');
      const cpu = src.livemig['thread-cpu-ms'];
      assert.ok('dsa_completion' in cpu, 'dsa_completion CPU is reported');
      assert.ok(
        Object.keys(cpu).some((k) => k.startsWith('dsa0/engine')),
        'engine CPU is reported',
      );
      const info = await pair.source.qmp.execute<{ 'zero-page-detection': string }>(
        'query-migrate-parameters',
      );
      assert.equal(info['zero-page-detection'], 'dsa-accel');
    } finally {
      await pair.close();
    }
  });
}

test('dsa-accel without accel-path, or without multifd, is refused at migrate time', async () => {
  const pair = await LocalPair.start({ ram: '16M', workload: 'none' });
  try {
    await pair.source.qmp.execute('migrate-set-parameters', { 'zero-page-detection': 'dsa-accel' });
    const uri = await pair.incomingUri();
    await assert.rejects(
      pair.source.qmp.execute('migrate', { uri }),
      /needs the 'multifd' capability/,
    );
    await pair.source.qmp.execute('migrate-set-capabilities', {
      capabilities: [{ capability: 'multifd', state: true }],
    });
    await assert.rejects(pair.source.qmp.execute('migrate', { uri }), /needs 'accel-path'/);
    await pair.source.qmp.execute('migrate-set-parameters', {
      'accel-path': ['dsa-emu:dsa7/wq7.0'],
    });
    await assert.rejects(pair.source.qmp.execute('migrate', { uri }), /no emulated device 'dsa7'/);
    await assert.rejects(
      pair.source.qmp.execute('migrate-set-parameters', { 'accel-path': ['nvme:/dev/x'] }),
      /accel-path/,
    );
    const st = await pair.source.qmp.execute<{ status: string }>('query-status');
    assert.equal(st.status, 'running', 'a refused migrate leaves the guest running');
  } finally {
    await pair.close();
  }
});

/** Two machines in this process: the device's fault injection is then at hand. */
async function inProcessPair(
  ram: number,
  ratio: number,
): Promise<{ src: Vm; dst: Vm; uri: string }> {
  const src = new Vm({
    ramBytes: ram,
    workload: parseWorkload('stress', ram),
    normalPageRatio: ratio,
    memPrealloc: false,
    startPaused: false,
  });
  const dst = new Vm({
    ramBytes: ram,
    workload: parseWorkload('none', ram),
    normalPageRatio: 0,
    memPrealloc: false,
    startPaused: false,
    incoming: 'tcp:127.0.0.1:0',
  });
  const port = await dst.init();
  for (const m of [src, dst]) {
    m.setCapabilities([
      { capability: 'multifd', state: true },
      { capability: 'x-verify-ram', state: true },
    ]);
  }
  return { src, dst, uri: `tcp:127.0.0.1:${port}` };
}

async function waitDone(m: Vm): Promise<Info> {
  for (;;) {
    const i = m.queryMigrate() as Info;
    if (['completed', 'failed', 'cancelled'].includes(i.status)) return i;
    await sleep(20);
  }
}

test('dsa-accel: a device halted mid-migration only slows it down (CPU fallback, byte-exact)', async () => {
  const ram = 64 * 1024 * 1024;
  const { src, dst, uri } = await inProcessPair(ram, 0.5);
  try {
    src.setParameters({ 'multifd-channels': 2, 'downtime-limit': 2000, ...ACCEL });
    await src.migrate(uri);
    src.emulatedDevices!.device('dsa0').haltAfter(10);
    const info = await waitDone(src);
    assert.equal(info.status, 'completed', String(info['error-desc']));
    assert.equal(info.livemig.verify, 'ok', 'byte-exact through the fallback');
    const acc = info.livemig.accelerator!;
    assert.ok(acc.cpuFallback.deviceHalted > 0, `halted pages fell back: ${JSON.stringify(acc)}`);
    assert.ok(Number(acc.pagesCpu) > 0);
  } finally {
    await src.shutdown();
    await dst.shutdown();
  }
});

test('dsa-accel: page faults on chosen pages are finished on the CPU, byte-exact', async () => {
  const ram = 32 * 1024 * 1024;
  const { src, dst, uri } = await inProcessPair(ram, 0.25);
  try {
    src.setParameters({ 'multifd-channels': 2, 'downtime-limit': 2000, ...ACCEL });
    await src.migrate(uri);
    const emu = src.emulatedDevices!;
    for (let p = 1000; p < 1010; p++)
      emu.injectPageFault(src.guest.blocks[0].ram, src.guest.blocks[0].base + p * 4096 + 64, 1);
    const info = await waitDone(src);
    assert.equal(info.status, 'completed', String(info['error-desc']));
    assert.equal(info.livemig.verify, 'ok');
  } finally {
    await src.shutdown();
    await dst.shutdown();
  }
});

test('dsa-accel: two migrations in one process share one device and both complete', async () => {
  const ram = 32 * 1024 * 1024;
  const a = await inProcessPair(ram, 0.5);
  const b = await inProcessPair(ram, 0.5);
  try {
    for (const p of [a, b])
      p.src.setParameters({ 'multifd-channels': 2, 'downtime-limit': 2000, ...ACCEL });
    await Promise.all([a.src.migrate(a.uri), b.src.migrate(b.uri)]);
    assert.equal(a.src.emulatedDevices, b.src.emulatedDevices, 'one device for the process');
    const [ia, ib] = await Promise.all([waitDone(a.src), waitDone(b.src)]);
    for (const i of [ia, ib]) {
      assert.equal(i.status, 'completed', String(i['error-desc']));
      assert.equal(i.livemig.verify, 'ok');
      assert.ok(Number(i.livemig.accelerator!.pagesDevice) > 0);
    }
  } finally {
    for (const p of [a, b]) {
      await p.src.shutdown();
      await p.dst.shutdown();
    }
  }
});

/** Migrate a stopped 32 MiB guest (8192 pages, 64 packets) with dsa-accel; the source's info. */
async function migrateStopped(normalPageRatio: number): Promise<Info> {
  const pair = await LocalPair.start({
    ram: '32M',
    normalPageRatio,
    workload: 'none',
    sourcePaused: true,
  });
  try {
    const { source } = await pair.migrate(
      { multifd: true, 'x-verify-ram': true },
      { 'multifd-channels': 2, ...ACCEL },
    );
    const src = source as Info;
    assert.equal(src.status, 'completed', String(src['error-desc']));
    assert.equal(src.livemig.verify, 'ok');
    return src;
  } finally {
    await pair.close();
  }
}

test('dsa-accel: an all-zero guest is checked a packet per descriptor, ready packets batched', async () => {
  const acc = (await migrateStopped(0)).livemig.accelerator!;
  const pages = 8192;
  // Counters stay in 4 KiB pages whatever the descriptor covers.
  assert.equal(Number(acc.pages), pages, JSON.stringify(acc));
  assert.equal(Number(acc.zeroPages), pages);
  assert.equal(Number(acc.pagesDevice), pages);
  // One whole-packet descriptor per packet, not one per page; several packets per request.
  const descriptors = Number(acc.singleDescriptors) + Number(acc.batches);
  assert.ok(Number(acc.requests) <= 64, `requests ${acc.requests}`);
  assert.ok(descriptors <= 64, `${descriptors} submissions for 64 packets`);
});

test('dsa-accel: packets with normal pages fall back to per-page descriptors, byte-exact', async () => {
  const src = await migrateStopped(0.5);
  const acc = src.livemig.accelerator!;
  // Every page decided page by page (a few whole-packet tries count their pages too).
  assert.ok(Number(acc.pages) >= 8192, JSON.stringify(acc));
  assert.equal(Number(acc.zeroPages), 4096);
  // Every packet a channel holds can be in flight on the device at once: none is sent to the
  // CPU for want of a descriptor slot.
  assert.equal(Number(acc.pagesCpu), 0, JSON.stringify(acc));
  assert.equal(src.ram.duplicate, 4096);
  assert.equal(src.ram.normal, 4096);
});
