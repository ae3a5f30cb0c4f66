// The VCPU words between the vCPU thread and those who drive it, with real threads: stop and
// its acknowledgement, and dirty-sync tickets.

import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { REQ_RUN, REQ_STOP, VcpuControl } from '../../src/ram/vcpu-control.js';

/** A stand-in vCPU thread that answers the words as the PC's does, counting its syncs. */
function fakeVcpu(ctl: VcpuControl): Worker {
  const url = new URL('../../src/ram/vcpu-control.js', import.meta.url).href;
  return new Worker(
    `import { workerData } from 'node:worker_threads';
     const { VcpuControl, REQ_RUN, VCPU } = await import(${JSON.stringify(url)});
     const v = new VcpuControl(workerData);
     let syncs = 0;
     for (;;) {
       if (v.syncPending) {
         const upTo = v.takeSyncTickets();
         syncs++;
         v.finishSync(upTo, syncs, 1000 * syncs, 500 * syncs);
       }
       const req = v.requested;
       if (req === 2) break;
       v.acknowledge(req === REQ_RUN ? 1 : 0);
       Atomics.wait(v.words, VCPU.syncRequest, Atomics.load(v.words, VCPU.syncRequest), 5);
     }`,
    { eval: true, type: 'module', workerData: ctl.buffer } as never,
  );
}

test('a ticket is served by a sync that started after it was taken', async () => {
  const ctl = new VcpuControl();
  const w = fakeVcpu(ctl);
  try {
    const t1 = ctl.requestSync();
    const t2 = ctl.requestSync();
    assert.equal(t2, t1 + 1);
    await ctl.waitSyncAsync(t2);
    assert.ok(ctl.syncServed(t1) && ctl.syncServed(t2));
    const first = ctl.lastSync();
    assert.ok(first.pages >= 1, 'the sync published its figures');
    // The vCPU may take the next ticket at once: whenever it is served, a later sync served it.
    const t3 = ctl.requestSync();
    ctl.waitSync(t3);
    assert.ok(ctl.lastSync().pages > first.pages, 'served by a later sync');
  } finally {
    ctl.request(2);
    await w.terminate();
  }
});

test('a ticket taken after a sync took the tickets is not served by that sync', () => {
  // Both sides of the words on one thread, in the order the protocol allows: deterministic.
  const ctl = new VcpuControl();
  const t1 = ctl.requestSync();
  assert.equal(ctl.syncServed(t1), false, 'nobody synced yet');
  const upTo = ctl.takeSyncTickets();
  const t2 = ctl.requestSync();
  ctl.finishSync(upTo, 7, 1000, 400.4);
  assert.deepEqual(ctl.lastSync(), { pages: 7, micros: 1000, cpuMicros: 400, logged: false });
  assert.equal(ctl.syncServed(t1), true);
  assert.equal(ctl.syncServed(t2), false, 'taken after the sync started: a later sync serves it');
  ctl.finishSync(ctl.takeSyncTickets(), 8, 1000, Number.NaN, true);
  assert.equal(ctl.lastSync().cpuMicros, 0, 'no CPU figure (no /proc) is published as 0');
  assert.equal(ctl.lastSync().logged, true, 'a sync that read only the write log says so');
  assert.equal(ctl.syncServed(t2), true);
});

test('run and stop are acknowledged; waitStopped returns once the vCPU has stopped', async () => {
  const ctl = new VcpuControl();
  const w = fakeVcpu(ctl);
  try {
    ctl.request(REQ_RUN);
    while (ctl.acknowledged !== 1) await sleep(1);
    assert.equal(ctl.runRequested, true);
    ctl.request(REQ_STOP);
    await ctl.waitStoppedAsync();
    assert.equal(ctl.acknowledged, 0);
    assert.equal(ctl.runRequested, false);
  } finally {
    ctl.request(2);
    await w.terminate();
  }
});

test('waitSync gives up when its check throws (a migration that is aborted)', () => {
  const ctl = new VcpuControl();
  const ticket = ctl.requestSync(); // nobody serves it
  let checks = 0;
  assert.throws(
    () =>
      ctl.waitSync(
        ticket,
        () => {
          if (++checks === 3) throw new Error('aborted');
        },
        1,
      ),
    /aborted/,
  );
  assert.equal(checks, 3);
});
