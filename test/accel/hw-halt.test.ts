// A kernel WQ that halts under the driver, through the FIFO stand-in (hw-fifo-device.ts): the
// device stops completing and its sysfs state turns `disabled`, with or without making the node
// readable (the kernel's software-error signal). dsa_completion must notice it, send the WQ's
// pages to the CPU, give back its slots and credits, and the whole halt must cost at most the
// requests in flight one deadline — not one deadline per request.

import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openAccelerator } from '../../src/accel/driver.js';
import { A_CREDITS, M_STATE, SLOT_FREE } from '../../src/accel/arena.js';
import { H_CHECKS, haltedWorkQueues } from '../../src/accel/hw/wq-state.js';
import { expectedZeros, mixedBlock } from './helpers.js';
import { D_HALTED, HALT_SILENT, HALT_SWERR } from './hw-fifo-device.js';
import { FifoDevice, addonSkip, captureStderr, fakeIdxd } from './hw-helpers.js';
import { Vm } from '../../src/machine/vm.js';
import { parseWorkload } from '../../src/ram/vcpu-control.js';

const skip = addonSkip();
const TASKS = 4;
const REQUESTS = 30;
const PAGES = 64;

async function haltedRun(
  mode: number,
  wq: Record<string, string | number>,
): Promise<{
  counters: ReturnType<Awaited<ReturnType<typeof openAccelerator>>['counters']>;
  halted: Record<string, string> | undefined;
  credits: number;
  freeSlots: boolean;
  checks: number;
}> {
  const idxd = fakeIdxd({ wq });
  const device = await FifoDevice.start(idxd.node, idxd.wqState);
  const accel = await openAccelerator(['dsa:/dev/dsa/wq0.0'], {
    sysfs: idxd.sysfs,
    hw: { allowFifo: true },
    deadlineMs: 1000,
    submitRetries: 64,
  });
  const stderr = captureStderr();
  try {
    // A few requests go through the device, then it halts in the middle of the run.
    device.haltAfter(mode, 3 * PAGES);
    const block = mixedBlock(TASKS * REQUESTS * PAGES, 13);
    await Promise.all(
      Array.from({ length: TASKS }, async (_, t) => {
        const task = accel.createBatchTask(t, PAGES);
        const pages = new Uint32Array(PAGES);
        const results = new Uint8Array(PAGES);
        for (let r = 0; r < REQUESTS; r++) {
          const first = (t * REQUESTS + r) * PAGES;
          for (let i = 0; i < PAGES; i++) pages[i] = first + i;
          await task.zeroPages(block, pages, PAGES, results);
          assert.deepEqual(results, expectedZeros(block, pages, PAGES), `task ${t} request ${r}`);
        }
        task.close();
      }),
    );
    assert.equal(device.get(D_HALTED), 1, 'the device halted during the run');
    const a = accel.arena;
    let freeSlots = true;
    for (let s = 0; s < a.layout.slots; s++) {
      if (Atomics.load(a.i32, a.meta(s, M_STATE)) !== SLOT_FREE) freeSlots = false;
    }
    const h = accel.handle.hw[0];
    return {
      counters: accel.counters(),
      halted: haltedWorkQueues(accel.handle.hw)['halted-work-queues'],
      credits: Atomics.load(a.i32, A_CREDITS),
      freeSlots,
      checks: Atomics.load(new Int32Array(h.state), H_CHECKS),
    };
  } finally {
    stderr.restore();
    await accel.close();
    await device.stop();
    idxd.cleanup();
    const said = stderr.text();
    assert.equal(said.match(/halted: its sysfs state is 'disabled'/g)?.length, 1, said);
  }
}

test(
  'a dedicated WQ halts with a software error: seen through poll(), no deadline, every slot and credit back',
  { skip },
  async () => {
    const r = await haltedRun(HALT_SWERR, { mode: 'dedicated', size: 16, threshold: 0 });
    const c = r.counters;
    console.log(`swerr halt: ${JSON.stringify(c)}; sysfs reads ${r.checks}`);
    assert.equal(c.pages, TASKS * REQUESTS * PAGES);
    assert.ok(c.pagesDevice > 0, 'the device decided pages before the halt');
    assert.ok(c.cpuFallback.deviceHalted > 0, 'then the CPU');
    assert.equal(c.deadlinesMissed, 0, 'the readable fd told dsa_completion before any deadline');
    assert.match(r.halted!['dsa:/dev/dsa/wq0.0'], /sysfs state is 'disabled'/);
    assert.ok(r.freeSlots, 'every slot is free again');
    assert.equal(r.credits, 16, 'every credit came back');
  },
);

test(
  'a WQ halts silently (descriptors dropped, no poll() signal): one deadline for what was in flight, then the CPU',
  { skip },
  async () => {
    const wqs: Record<string, string | number>[] = [
      {},
      { mode: 'dedicated', size: 16, threshold: 0 },
    ];
    for (const wq of wqs) {
      const r = await haltedRun(HALT_SILENT, wq);
      const c = r.counters;
      console.log(
        `silent halt (${JSON.stringify(wq)}): ${JSON.stringify(c)}; sysfs reads ${r.checks}`,
      );
      // Each task has one request in flight: at most those miss the deadline, together.
      assert.ok(
        c.deadlinesMissed <= TASKS,
        `${c.deadlinesMissed} deadlines for ${c.requests} requests`,
      );
      assert.ok(c.cpuFallback.deviceHalted >= (REQUESTS - 5) * PAGES, JSON.stringify(c));
      assert.match(r.halted!['dsa:/dev/dsa/wq0.0'], /sysfs state is 'disabled'/);
      assert.ok(r.freeSlots, 'every slot is free again');
      if (wq.mode === 'dedicated') assert.equal(r.credits, 16, 'every credit came back');
    }
  },
);

test(
  'a migration whose kernel WQ halts in the middle finishes on the CPU, byte-exact, and says why',
  { skip },
  async () => {
    const idxd = fakeIdxd();
    const device = await FifoDevice.start(idxd.node, idxd.wqState);
    const env = { DSA_SYSFS_PATH: idxd.sysfs.sysfsRoot, DSA_DEV_PATH: idxd.sysfs.devRoot };
    const saved = Object.fromEntries(
      ['DSA_SYSFS_PATH', 'DSA_DEV_PATH', 'LIVEMIG_DSA_TEST_FIFO'].map((k) => [k, process.env[k]]),
    );
    Object.assign(process.env, env, { LIVEMIG_DSA_TEST_FIFO: '1' });
    const ram = 32 * 1024 * 1024;
    const machine = (incoming?: string) =>
      new Vm({
        ramBytes: ram,
        workload: parseWorkload(incoming ? 'none' : 'stress', ram),
        normalPageRatio: incoming ? 0 : 0.5,
        memPrealloc: false,
        startPaused: false,
        incoming,
      });
    const src = machine();
    const dst = machine('tcp:127.0.0.1:0');
    const stderr = captureStderr();
    try {
      const port = await dst.init();
      for (const m of [src, dst]) {
        m.setCapabilities([
          { capability: 'multifd', state: true },
          { capability: 'x-verify-ram', state: true },
        ]);
      }
      src.setParameters({
        'multifd-channels': 2,
        'downtime-limit': 2000,
        'zero-page-detection': 'dsa-accel',
        'accel-path': ['dsa:/dev/dsa/wq0.0'],
      });
      device.haltAfter(HALT_SWERR, 500);
      await src.migrate(`tcp:127.0.0.1:${port}`);
      let info: MigrateInfo;
      for (;;) {
        info = src.queryMigrate() as MigrateInfo;
        if (['completed', 'failed', 'cancelled'].includes(info.status)) break;
        await sleep(20);
      }
      assert.equal(info.status, 'completed', String(info['error-desc']));
      assert.equal(info.livemig.verify, 'ok', 'the destination RAM is byte-exact');
      assert.equal(device.get(D_HALTED), 1);
      const acc = info.livemig.accelerator;
      assert.ok(Number(acc.pagesDevice) > 0, 'the device decided pages before the halt');
      assert.ok(acc.cpuFallback.deviceHalted > 0, JSON.stringify(acc));
      assert.equal(acc.deadlinesMissed, 0);
      assert.match(
        acc['halted-work-queues']?.['dsa:/dev/dsa/wq0.0'] ?? '',
        /work queue dsa0\/wq0.0 halted: its sysfs state is 'disabled'/,
      );
    } finally {
      stderr.restore();
      await src.shutdown();
      await dst.shutdown();
      await device.stop();
      for (const [k, v] of Object.entries(saved)) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
      idxd.cleanup();
    }
  },
);

type MigrateInfo = {
  status: string;
  'error-desc'?: string;
  livemig: {
    verify: string;
    accelerator: Record<string, unknown> & {
      cpuFallback: Record<string, number>;
      deadlinesMissed: number;
      'halted-work-queues'?: Record<string, string>;
    };
  };
};
