// A migration and the process's warm-ups (src/util/warm-up-gate.ts): `migrate` pauses them, and
// they may run again once the migration has failed or been cancelled, or when `migrate` was
// refused before anything started. A machine made with warmUp: false keeps them paused.

import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { Vm } from '../../src/machine/vm.js';
import { parseWorkload } from '../../src/ram/vcpu-control.js';
import { warmUpsPaused } from '../../src/util/warm-up-gate.js';

function source(warmUp?: boolean): Vm {
  return new Vm({
    ramBytes: 4 << 20,
    workload: parseWorkload('none', 4 << 20),
    normalPageRatio: 0,
    memPrealloc: false,
    warmUp,
    startPaused: true,
  });
}

async function until(vm: Vm, statuses: string[]): Promise<string> {
  for (;;) {
    const s = String(vm.queryMigrate().status);
    if (statuses.includes(s)) return s;
    await sleep(10);
  }
}

/** A port that takes connections and never says a word. */
async function silentPort(): Promise<{ port: number; close(): void }> {
  const sockets: net.Socket[] = [];
  const server = net.createServer((s) => sockets.push(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () => {
      sockets.forEach((s) => s.destroy());
      server.close();
    },
  };
}

test('warm-ups are paused while a migration runs, and run again once it failed', async () => {
  const vm = source();
  const free = await silentPort();
  free.close(); // nobody listens there any more: the connection is refused
  try {
    assert.equal(warmUpsPaused(), false);
    await vm.migrate(`tcp:127.0.0.1:${free.port}`);
    assert.equal(warmUpsPaused(), true, 'paused from `migrate` on');
    assert.equal(await until(vm, ['failed', 'completed']), 'failed');
    assert.equal(warmUpsPaused(), false);
  } finally {
    await vm.shutdown();
  }
});

test('warm-ups run again once a migration is cancelled', async () => {
  const vm = source();
  const peer = await silentPort();
  try {
    await vm.migrate(`tcp:127.0.0.1:${peer.port}`);
    assert.equal(warmUpsPaused(), true);
    vm.migrateCancel();
    assert.equal(await until(vm, ['cancelled', 'failed']), 'cancelled');
    assert.equal(warmUpsPaused(), false);
  } finally {
    peer.close();
    await vm.shutdown();
  }
});

test('a `migrate` refused before it starts leaves warm-ups running', async () => {
  const vm = source();
  try {
    // dsa-accel without the multifd capability: refused with a clear error
    vm.setParameters({ 'zero-page-detection': 'dsa-accel', 'accel-path': ['dsa-emu:dsa0/wq0.0'] });
    await assert.rejects(vm.migrate('tcp:127.0.0.1:1'), /needs the 'multifd' capability/);
    assert.equal(warmUpsPaused(), false);
  } finally {
    await vm.shutdown();
  }
});

test('warmUp: false (--no-warm-up) keeps the warm-ups from running while the machine lives', async () => {
  assert.equal(warmUpsPaused(), false);
  const vm = source(false);
  try {
    await vm.init();
    assert.equal(warmUpsPaused(), true);
  } finally {
    await vm.shutdown();
  }
  assert.equal(warmUpsPaused(), false, 'a later machine in the process may warm up');
});
