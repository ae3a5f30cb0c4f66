// The driver over the emulated device: zeroPages against the CPU's answer, and every path
// where the device does not finish (page faults, full WQ, halt, deadline), with real threads.

import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { DsaEmu } from '../../src/accel/dsa/emu/device.js';
import { completionWorkerFile, openAccelerator, type Accelerator } from '../../src/accel/driver.js';
import { WorkerPool } from '../../src/util/worker-pool.js';
import { A_COMPLETION_HANDLED } from '../../src/accel/arena.js';
import { devConf, eventually, expectedZeros, mixedBlock, wqConf } from './helpers.js';

// dsa0: wq0.0 the default shape, wq0.1 max_batch_size 32, wq0.2 dedicated, wq0.3 kernel,
// wq0.4 disabled. dsa2: a second device for round-robin.
const CONFIG = [
  devConf(
    0,
    [
      wqConf(0, 0),
      wqConf(0, 1, { max_batch_size: 32 }),
      { ...wqConf(0, 2, { mode: 'dedicated' }), threshold: 0, size: 8 },
      wqConf(0, 3, { type: 'kernel', size: 16, threshold: 16 }),
      wqConf(0, 4, { state: 'disabled', size: 16, threshold: 16 }),
    ],
    2,
  ),
  devConf(2, [wqConf(2, 0, { size: 32, threshold: 32 })]),
];

let emu: DsaEmu;

before(async () => {
  emu = await DsaEmu.start({ config: CONFIG });
});

after(async () => {
  await emu.close();
});

function packet(first: number, count: number, stride = 1): Uint32Array {
  const p = new Uint32Array(count);
  for (let i = 0; i < count; i++) p[i] = first + i * stride;
  return p;
}

async function withAccel(
  path: unknown,
  opts: Parameters<typeof openAccelerator>[1],
  fn: (a: Accelerator) => Promise<void>,
): Promise<void> {
  const accel = await openAccelerator(path, { devices: emu, ...opts });
  try {
    await fn(accel);
  } finally {
    await accel.close();
  }
}

describe('zeroPages agrees with the CPU', () => {
  test('128-page packets, contiguous and scattered, over a mixed 32 MiB block', async () => {
    await withAccel(['dsa-emu:dsa0/wq0.0'], {}, async (accel) => {
      const pages = 8192;
      const block = mixedBlock(pages, 1);
      const task = accel.createBatchTask(0, 128);
      const results = new Uint8Array(128);
      let zeros = 0;
      for (let first = 0; first < pages; first += 128) {
        const p = packet(first, 128);
        zeros += await task.zeroPages(block, p, 128, results);
        assert.deepEqual(results, expectedZeros(block, p, 128), `packet at ${first}`);
      }
      const scattered = packet(5, 128, 61);
      zeros += await task.zeroPages(block, scattered, 128, results);
      assert.deepEqual(results, expectedZeros(block, scattered, 128));
      let expected = expectedZeros(block, scattered, 128).reduce((s, z) => s + z, 0);
      for (let first = 0; first < pages; first += 128)
        expected += expectedZeros(block, packet(first, 128), 128).reduce((s, z) => s + z, 0);
      assert.ok(expected > 0 && expected < pages + 128, 'the block mixes zero and normal pages');
      const c = accel.counters();
      assert.equal(c.pages, pages + 128);
      assert.equal(c.pagesDevice, pages + 128, 'the device decided every page');
      assert.equal(c.pagesCpu, 0);
      assert.equal(c.batches, 65);
      assert.equal(zeros, expected, 'zeroPages resolves to the zero pages it found');
      assert.equal(c.zeroPages, expected, 'the zeroPages counter counts them');
      assert.ok(c.completionWaitMs > 0);
    });
  });

  test('a one-page request is a plain descriptor; a tail of one after full batches too', async () => {
    await withAccel(['dsa-emu:dsa0/wq0.1'], {}, async (accel) => {
      const block = mixedBlock(256, 2);
      const task = accel.createBatchTask(0, 128);
      const r = new Uint8Array(128);
      await task.zeroPages(block, packet(7, 1), 1, r);
      assert.equal(r[0], expectedZeros(block, [7], 1)[0]);
      assert.deepEqual(accel.counters().singleDescriptors, 1);
      assert.deepEqual(accel.counters().batches, 0);
      // max_batch_size 32: 97 pages = 3 batches of 32 + 1 single.
      const p = packet(100, 97);
      await task.zeroPages(block, p, 97, r);
      assert.deepEqual(r.subarray(0, 97), expectedZeros(block, p, 97));
      const c = accel.counters();
      assert.equal(c.batches, 3);
      assert.equal(c.singleDescriptors, 2);
      assert.equal(c.pagesDevice, 98);
    });
  });

  test('pipelined requests on one task, then one more on the same slots', async () => {
    await withAccel(['dsa-emu:dsa0/wq0.0'], {}, async (accel) => {
      const block = mixedBlock(1024, 3);
      const task = accel.createBatchTask(1, 256);
      const rs = [0, 1, 2, 3].map(() => new Uint8Array(256));
      await Promise.all(rs.map((r, k) => task.zeroPages(block, packet(k * 256, 256), 256, r)));
      rs.forEach((r, k) => assert.deepEqual(r, expectedZeros(block, packet(k * 256, 256), 256)));
      const r = new Uint8Array(256);
      const zeros = await task.zeroPages(block, packet(512, 256), 256, r);
      assert.deepEqual(r, expectedZeros(block, packet(512, 256), 256));
      assert.equal(
        zeros,
        r.reduce((s, x) => s + x, 0),
      );
    });
  });

  for (const mode of ['thread', 'direct'] as const) {
    test(`'${mode}' completion mode: ${mode === 'thread' ? 'dsa_completion wakes the channel' : 'the interrupt wakes the channel'}`, async () => {
      await withAccel(['dsa-emu:dsa0/wq0.0'], { completion: mode }, async (accel) => {
        const block = mixedBlock(512, 4);
        const task = accel.createBatchTask(0, 128);
        const r = new Uint8Array(128);
        // A slow engine: the channel is asleep when the batch completes, so only the
        // completion path under test can wake it (before the 1 s deadline).
        emu.device('dsa0').setEngineDelay(20_000);
        try {
          for (let first = 0; first < 512; first += 128) {
            await task.zeroPages(block, packet(first, 128), 128, r);
            assert.deepEqual(r, expectedZeros(block, packet(first, 128), 128));
          }
        } finally {
          emu.device('dsa0').setEngineDelay(0);
        }
        assert.equal(
          Atomics.load(accel.arena.i32, A_COMPLETION_HANDLED),
          mode === 'thread' ? 4 : 0,
          'completions handled by dsa_completion',
        );
        const c = accel.counters();
        assert.equal(c.pagesDevice, 512);
        assert.equal(c.deadlinesMissed, 0);
      });
    });
  }
});

describe('CPU fallback for whatever the device does not finish', () => {
  test('page faults: partial completion, then the CPU checks the rest of the page', async () => {
    await withAccel(['dsa-emu:dsa0/wq0.0'], {}, async (accel) => {
      // 8 KiB pages, so a 4 KiB device page fault can land in a guest page's second half.
      const ps = 8192;
      const block = new SharedArrayBuffer(64 * ps);
      const u8 = new Uint8Array(block);
      u8[3 * ps + 5000] = 1; // page 3: non-zero in the faulting half
      u8[5 * ps + 10] = 1; // page 5: non-zero before the fault
      for (const p of [2, 3, 5]) emu.injectPageFault(block, p * ps + 4096, 1); // second halves
      emu.injectPageFault(block, 7 * ps, 1); // page 7: first half
      const task = accel.createBatchTask(0, 64, { pageSize: ps });
      const r = new Uint8Array(64);
      const all = packet(0, 64);
      await task.zeroPages(block, all, 64, r);
      assert.deepEqual(r, expectedZeros(block, all, 64, ps));
      assert.equal(r[3], 0);
      assert.equal(r[2], 1);
      const c = accel.counters();
      // Page 5 differs before its fault: the device decides it (result 1), no fallback.
      assert.equal(c.cpuFallback.pageFault, 3);
      assert.equal(c.pagesDevice, 61);
      emu.clearPageFaults();
    });
  });

  test('a full WQ: submissions are retried, then accepted', async () => {
    await withAccel(['dsa-emu:dsa0/wq0.0'], {}, async (accel) => {
      const block = mixedBlock(128, 5);
      const task = accel.createBatchTask(0, 128);
      const r = new Uint8Array(128);
      emu.device('dsa0').refuseSubmissions('wq0.0', 10);
      await task.zeroPages(block, packet(0, 128), 128, r);
      assert.deepEqual(r, expectedZeros(block, packet(0, 128), 128));
      const c = accel.counters();
      assert.equal(c.submitRetries, 10);
      assert.equal(c.pagesDevice, 128);
      assert.equal(c.pagesCpu, 0);
    });
  });

  test('retries exhausted: the pages go to the CPU, counted as submitFailed', async () => {
    await withAccel(['dsa-emu:dsa0/wq0.0'], { submitRetries: 8 }, async (accel) => {
      const block = mixedBlock(128, 6);
      const task = accel.createBatchTask(0, 128);
      const r = new Uint8Array(128);
      emu.device('dsa0').refuseSubmissions('wq0.0', 1000);
      await task.zeroPages(block, packet(0, 128), 128, r);
      emu.device('dsa0').refuseSubmissions('wq0.0', 0);
      assert.deepEqual(r, expectedZeros(block, packet(0, 128), 128));
      const c = accel.counters();
      assert.equal(c.cpuFallback.submitFailed, 128);
      assert.equal(c.submitRetries, 9);
      assert.equal(c.pagesDevice, 0);
    });
  });

  test('device halted mid-batch: finished members count, the rest go to the CPU; reset recovers', async () => {
    await withAccel(['dsa-emu:dsa2/wq2.0'], { slots: 2 }, async (accel) => {
      const dev = emu.device('dsa2');
      const block = mixedBlock(1024, 7);
      const task = accel.createBatchTask(0, 128);
      const r = new Uint8Array(128);
      dev.haltAfter(50);
      await task.zeroPages(block, packet(0, 128), 128, r);
      assert.deepEqual(r, expectedZeros(block, packet(0, 128), 128));
      let c = accel.counters();
      assert.equal(dev.state, 'halted');
      assert.equal(c.pagesDevice, 50);
      assert.equal(c.cpuFallback.deviceHalted, 78);
      assert.equal(c.cpuFallback.deadline, 0, 'noticed the halt, not a deadline');
      // While halted every page goes to the CPU, without touching the device.
      for (let first = 128; first < 1024; first += 128) {
        await task.zeroPages(block, packet(first, 128), 128, r);
        assert.deepEqual(r, expectedZeros(block, packet(first, 128), 128));
      }
      c = accel.counters();
      assert.equal(c.cpuFallback.deviceHalted, 78 + 896);
      await dev.reset();
      // The abandoned slot is reclaimed (new epoch) and the device decides again.
      for (let k = 0; k < 3; k++) {
        await task.zeroPages(block, packet(0, 128), 128, r);
        assert.deepEqual(r, expectedZeros(block, packet(0, 128), 128));
      }
      assert.equal(accel.counters().pagesDevice, 50 + 3 * 128);
      assert.equal(accel.counters().cpuFallback.noSlot, 0);
    });
  });

  test('device halted while a slow engine holds the batch: the channel wakes at once', async () => {
    await withAccel(['dsa-emu:dsa2/wq2.0'], { deadlineMs: 60_000 }, async (accel) => {
      const dev = emu.device('dsa2');
      const block = mixedBlock(128, 8);
      const task = accel.createBatchTask(0, 128);
      const r = new Uint8Array(128);
      dev.setEngineDelay(5_000_000);
      const pending = task.zeroPages(block, packet(0, 128), 128, r);
      await eventually(
        () => dev.wqStats()[0].occupancy === 0 && dev.wqStats()[0].accepted > 0,
        'dispatch',
      );
      dev.halt();
      await pending;
      dev.setEngineDelay(0);
      assert.deepEqual(r, expectedZeros(block, packet(0, 128), 128));
      const c = accel.counters();
      assert.equal(c.cpuFallback.deviceHalted, 128);
      assert.equal(c.deadlinesMissed, 0);
      await dev.reset();
    });
  });

  test('deadline: a slow engine makes the CPU decide; the slot comes back when the device is done', async () => {
    await withAccel(['dsa-emu:dsa2/wq2.0'], { deadlineMs: 30, slots: 1 }, async (accel) => {
      const dev = emu.device('dsa2');
      const block = mixedBlock(128, 9);
      const task = accel.createBatchTask(0, 128);
      const r = new Uint8Array(128);
      dev.setEngineDelay(300_000);
      await task.zeroPages(block, packet(0, 128), 128, r);
      assert.deepEqual(r, expectedZeros(block, packet(0, 128), 128));
      let c = accel.counters();
      assert.equal(c.deadlinesMissed, 1);
      assert.equal(c.cpuFallback.deadline, 128);
      dev.setEngineDelay(0);
      // The only slot stays out of use until the late batch completes, then is reused.
      await eventually(
        () => dev.engineStats()[0].batches >= 1 && dev.wqStats()[0].occupancy === 0,
        'late batch',
      );
      await eventually(async () => {
        const before = accel.counters().cpuFallback.noSlot;
        await task.zeroPages(block, packet(0, 128), 128, r);
        return accel.counters().cpuFallback.noSlot === before;
      }, 'the slot to be reclaimed');
      assert.deepEqual(r, expectedZeros(block, packet(0, 128), 128));
      c = accel.counters();
      assert.ok(c.pagesDevice >= 128);
    });
  });

  test('deadline: requests that start apart each end at their own deadline (one watch per thread)', async () => {
    await withAccel(['dsa-emu:dsa2/wq2.0'], { deadlineMs: 40, slots: 2 }, async (accel) => {
      const dev = emu.device('dsa2');
      const block = mixedBlock(64, 5);
      const tasks = [accel.createBatchTask(0, 32), accel.createBatchTask(1, 32)];
      const results = [new Uint8Array(32), new Uint8Array(32)];
      dev.setEngineDelay(300_000);
      const first = tasks[0].zeroPages(block, packet(0, 32), 32, results[0]);
      await sleep(25); // the second starts after the watch was armed for the first
      const second = tasks[1].zeroPages(block, packet(32, 32), 32, results[1]);
      await Promise.all([first, second]);
      assert.deepEqual(results[0], expectedZeros(block, packet(0, 32), 32));
      assert.deepEqual(results[1], expectedZeros(block, packet(32, 32), 32));
      const c = accel.counters();
      assert.equal(c.deadlinesMissed, 2);
      assert.equal(c.cpuFallback.deadline, 64);
      dev.setEngineDelay(0);
      await eventually(() => dev.wqStats()[0].occupancy === 0, 'the late batches');
    });
  });

  test('a client closed while its request is in flight: the request still ends at its deadline', async () => {
    await withAccel(['dsa-emu:dsa2/wq2.0'], { deadlineMs: 30 }, async (accel) => {
      const dev = emu.device('dsa2');
      const block = mixedBlock(32, 4);
      const r = new Uint8Array(32);
      dev.setEngineDelay(300_000);
      const pending = accel.createBatchTask(0, 32).zeroPages(block, packet(0, 32), 32, r);
      accel.closeClient();
      await pending;
      assert.deepEqual(r, expectedZeros(block, packet(0, 32), 32));
      assert.equal(accel.counters().deadlinesMissed, 1);
      dev.setEngineDelay(0);
      await eventually(() => dev.wqStats()[0].occupancy === 0, 'the late batch');
    });
  });

  test('tasks created and closed one after another leave no requests behind for the watch', async () => {
    await withAccel(['dsa-emu:dsa2/wq2.0'], {}, async (accel) => {
      const block = mixedBlock(8, 3);
      const watched = accel.requests.length;
      for (let i = 0; i < 50; i++) {
        const task = accel.createBatchTask(0, 8);
        await task.zeroPages(block, packet(0, 8), 8, new Uint8Array(8));
        task.close();
      }
      assert.equal(accel.requests.length, watched);
    });
  });
});

describe('sharing and assignment', () => {
  test('two devices are used round-robin by channel', async () => {
    await withAccel(
      ['dsa-emu:dsa0/wq0.0', { type: 'dsa-emu', device: 'dsa2', wq: 'wq2.0' }],
      {},
      async (accel) => {
        const before = [emu.device('dsa0'), emu.device('dsa2')].map((d) =>
          d.engineStats().reduce((s, e) => s + e.batches, 0),
        );
        const tasks = [0, 1, 2, 3].map((ch) => accel.createBatchTask(ch, 128));
        assert.deepEqual(
          tasks.map((t) => t.target),
          ['dsa-emu:dsa0/wq0.0', 'dsa-emu:dsa2/wq2.0', 'dsa-emu:dsa0/wq0.0', 'dsa-emu:dsa2/wq2.0'],
        );
        const block = mixedBlock(512, 10);
        await Promise.all(
          tasks.map(async (t, ch) => {
            const r = new Uint8Array(128);
            await t.zeroPages(block, packet(ch * 128, 128), 128, r);
            assert.deepEqual(r, expectedZeros(block, packet(ch * 128, 128), 128));
          }),
        );
        const afterB = [emu.device('dsa0'), emu.device('dsa2')].map((d) =>
          d.engineStats().reduce((s, e) => s + e.batches, 0),
        );
        assert.deepEqual([afterB[0] - before[0], afterB[1] - before[1]], [2, 2]);
      },
    );
  });

  test('two users (two migrations) share one device and both complete', async () => {
    const a = await openAccelerator(['dsa-emu:dsa0/wq0.0'], { devices: emu });
    const b = await openAccelerator('dsa-emu:dsa0/wq0.0', { devices: emu });
    try {
      const blockA = mixedBlock(2048, 11);
      const blockB = mixedBlock(2048, 12);
      const run = async (accel: Accelerator, block: SharedArrayBuffer) => {
        const task = accel.createBatchTask(0, 128);
        const r = new Uint8Array(128);
        for (let first = 0; first < 2048; first += 128) {
          await task.zeroPages(block, packet(first, 128), 128, r);
          assert.deepEqual(r, expectedZeros(block, packet(first, 128), 128));
        }
      };
      await Promise.all([run(a, blockA), run(b, blockB)]);
      assert.equal(a.counters().pagesDevice, 2048);
      assert.equal(b.counters().pagesDevice, 2048);
    } finally {
      await a.close();
      await b.close();
    }
  });

  test('a worker thread attaches with the handle and its counters show in the opener', async () => {
    await withAccel(['dsa-emu:dsa0/wq0.0'], {}, async (accel) => {
      const block = mixedBlock(1024, 13);
      const worker = new Worker(new URL('./driver-worker.js', import.meta.url), {
        workerData: { accel: accel.handle, block, channel: 3 },
      });
      const exited = new Promise((r) => worker.once('exit', r));
      const msg = (await new Promise((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
        worker.once('exit', (code) =>
          reject(new Error(`the worker exited (${code}) without a result`)),
        );
      })) as { results: Uint8Array; cpu: Record<string, number> };
      await exited;
      assert.deepEqual(msg.results, expectedZeros(block, packet(0, 1024), 1024));
      assert.equal(accel.counters().pagesDevice, 1024);
      assert.ok('dsa_completion' in msg.cpu);
      assert.ok(msg.cpu['dsa0/engine0.0'] > 0);
    });
  });

  test("closing the accelerator unmaps what its workers registered, even if they didn't", async () => {
    const baseline = emu.addressSpace.mappedRegions();
    const accel = await openAccelerator(['dsa-emu:dsa0/wq0.0'], { devices: emu });
    const block = mixedBlock(1024, 15);
    const worker = new Worker(new URL('./driver-worker.js', import.meta.url), {
      workerData: { accel: accel.handle, block, channel: 0, keep: true },
    });
    // Listened for from the start: a worker that exits right after its message has both
    // events emitted in one go, before code after an await could start listening.
    const exited = new Promise((r) => worker.once('exit', r));
    await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    await exited;
    assert.equal(emu.addressSpace.mappedRegions(), baseline + 2, 'the arena and the block');
    await accel.close();
    assert.equal(emu.addressSpace.mappedRegions(), baseline);
  });

  test('idle threads sleep: no polling in dsa_completion or the engines', async () => {
    await withAccel(['dsa-emu:dsa0/wq0.0'], {}, async (accel) => {
      const block = mixedBlock(256, 16);
      const task = accel.createBatchTask(0, 128);
      await task.zeroPages(block, packet(0, 128), 128, new Uint8Array(128));
      const before = await accel.threadCpu();
      await sleep(300);
      const after = await accel.threadCpu();
      for (const k of Object.keys(after)) {
        // A poller would burn most of the 300 ms; a sleeper only answers the CPU request.
        assert.ok(after[k] - before[k] < 30, `${k} used ${after[k] - before[k]} ms while idle`);
      }
    });
  });

  test('a dsa_completion started ahead (WorkerPool) serves the accelerator opened later', async () => {
    const pool = new WorkerPool();
    pool.prespawn(completionWorkerFile('dsa-emu'), 1);
    try {
      await withAccel(
        ['dsa-emu:dsa2/wq2.0'],
        { threads: pool, deadlineMs: 60_000 },
        async (accel) => {
          assert.equal(
            pool.idleCount(completionWorkerFile('dsa-emu')),
            0,
            'the pooled thread was taken',
          );
          // Only dsa_completion notices a halt before the (60 s) deadline: the pooled thread does.
          const dev = emu.device('dsa2');
          const block = mixedBlock(256, 3);
          const task = accel.createBatchTask(0, 128);
          const r = new Uint8Array(128);
          dev.haltAfter(10);
          await task.zeroPages(block, packet(0, 128), 128, r);
          assert.deepEqual(r, expectedZeros(block, packet(0, 128), 128));
          assert.equal(accel.counters().cpuFallback.deviceHalted, 118);
          assert.ok((await accel.threadCpu()).dsa_completion > 0);
          await dev.reset();
        },
      );
    } finally {
      await pool.close();
    }
  });

  test('thread CPU: dsa_completion and every engine, measured by the threads themselves', async () => {
    await withAccel(['dsa-emu:dsa0/wq0.0'], {}, async (accel) => {
      const cpu = await accel.threadCpu();
      assert.deepEqual(Object.keys(cpu).sort(), [
        'dsa0/engine0.0',
        'dsa0/engine0.1',
        'dsa_completion',
      ]);
      for (const v of Object.values(cpu))
        assert.ok(v > 0 && Number.isFinite(v), JSON.stringify(cpu));
    });
  });
});

describe('configuration errors', () => {
  const cases: [unknown, RegExp][] = [
    [[], /accel-path is empty/],
    [['dsa-emu:dsa9/wq9.0'], /no emulated device 'dsa9' \(configured: dsa0, dsa2\)/],
    [
      ['dsa-emu:dsa0/wq0.7'],
      /dsa0 has no work queue 'wq0.7' \(configured: wq0.0, wq0.1, wq0.2, wq0.3, wq0.4\)/,
    ],
    [['dsa-emu:dsa0/wq0.3'], /type 'kernel'/],
    [['dsa-emu:dsa0/wq0.4'], /not enabled/],
    [['dsa-emu:dsa0/wq0.0', 'dsa-emu:dsa0/wq0.0'], /duplicate of entry 1/],
    [['foo:bar'], /unknown scheme 'foo'/],
  ];
  for (const [path, re] of cases) {
    test(`${JSON.stringify(path)} is refused`, async () => {
      await assert.rejects(openAccelerator(path, { devices: emu }), re);
    });
  }

  test('a dedicated WQ has one user at a time (EBUSY)', async () => {
    const a = await openAccelerator(['dsa-emu:dsa0/wq0.2'], { devices: emu });
    try {
      await assert.rejects(openAccelerator(['dsa-emu:dsa0/wq0.2'], { devices: emu }), /EBUSY/);
      // It works, with credits.
      const block = mixedBlock(256, 14);
      const task = a.createBatchTask(0, 256);
      const r = new Uint8Array(256);
      await task.zeroPages(block, packet(0, 256), 256, r);
      assert.deepEqual(r, expectedZeros(block, packet(0, 256), 256));
      assert.equal(a.counters().pagesDevice, 256);
    } finally {
      await a.close();
    }
    const again = await openAccelerator(['dsa-emu:dsa0/wq0.2'], { devices: emu });
    await again.close();
  });

  test('bad requests throw; the task stays usable', async () => {
    await withAccel(['dsa-emu:dsa0/wq0.0'], {}, async (accel) => {
      const task = accel.createBatchTask(0, 16);
      const block = new SharedArrayBuffer(16 * 4096);
      const r = new Uint8Array(16);
      await assert.rejects(
        task.zeroPages(block, packet(0, 17), 17, new Uint8Array(17)),
        /maxPages 16/,
      );
      await assert.rejects(
        task.zeroPages(block, packet(10, 16), 16, r),
        /outside the 65536-byte block/,
      );
      assert.equal(await task.zeroPages(block, packet(0, 16), 16, r), 16);
      assert.throws(() => accel.createBatchTask(0, 2000), /maxPages 2000/);
    });
  });
});
