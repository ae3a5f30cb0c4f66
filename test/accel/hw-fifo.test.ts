// The hardware path end to end, without hardware: a FIFO stands in for /dev/dsa/wq0.0 in a fake
// sysfs tree, and a test device thread (hw-fifo-device.ts) reads the idxd descriptors the driver
// write()s into it and executes them on the real virtual addresses they carry. The driver is the
// one migration uses — batching, retries, deadlines, counters, CPU fallback — and dsa_completion
// waits on the records in native code (UMWAIT where the CPU has WAITPKG, else a pause loop).
//
// Not verified here: the mmap/ENQCMD/MOVDIR64B portal path and real DSA timing (no device; see
// docs/hardware.md for the commands that verify them on a DSA host).

import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { openAccelerator, type Accelerator } from '../../src/accel/driver.js';
import { loadAddon } from '../../src/accel/hw/addon.js';
import { cpuSupport } from '../../src/accel/hw/cpu.js';
import { addressOf } from './native-testing.js';
import { A_CREDITS } from '../../src/accel/arena.js';
import { expectedZeros, mixedBlock } from './helpers.js';
import {
  D_BATCHES,
  D_DELAY_US,
  D_DROP_NEXT,
  D_DROPPED,
  D_FAULTS,
  D_RECEIVED,
} from './hw-fifo-device.js';
import { FifoDevice, addonSkip, fakeIdxd, type FakeIdxd } from './hw-helpers.js';

const skip = addonSkip();
if (skip) console.log(`hardware-path tests skipped: ${skip}`);

describe('the write() path through the whole driver, a FIFO as the device node', { skip }, () => {
  let idxd: FakeIdxd;
  let device: FifoDevice;
  let accel: Accelerator;
  const PAGES = 2048;
  let block: SharedArrayBuffer;

  before(async () => {
    idxd = fakeIdxd();
    device = await FifoDevice.start(idxd.node);
    accel = await openAccelerator(['dsa:/dev/dsa/wq0.0'], {
      sysfs: idxd.sysfs,
      hw: { allowFifo: true },
      deadlineMs: 1000,
      submitRetries: 8,
    });
    block = mixedBlock(PAGES, 7);
  });

  after(async () => {
    await accel?.close();
    await device?.stop();
    idxd?.cleanup();
  });

  test('the FIFO cannot be mapped, so write() is chosen automatically and says why', () => {
    const h = accel.handle.hw[0];
    assert.equal(accel.handle.space, 'hw');
    assert.equal(h.submit, 'write');
    assert.equal(h.fifo, true);
    const cpu = cpuSupport().usable;
    // Without ENQCMD the portal is not even tried; with it, mmap of a FIFO fails (ENODEV).
    assert.match(h.why, cpu.enqcmd ? /ENODEV/ : /does not offer ENQCMD/);
    assert.match(
      h.why,
      /BATCH is refused there, so each page's COMPVAL goes as its own descriptor/,
    );
    assert.equal(accel.handle.hwWait, 'sleep', 'the default wait sleeps');
    console.log(`submission: ${h.submit} (${h.why}); completion wait: ${accel.handle.hwWait}`);
  });

  test('128-page packets: every page decided by the device, right, no BATCH on write()', async () => {
    const task = accel.createBatchTask(0, 128);
    const before = device.get(D_RECEIVED);
    const pages = new Uint32Array(128);
    const results = new Uint8Array(PAGES);
    for (let first = 0; first < PAGES; first += 128) {
      for (let i = 0; i < 128; i++) pages[i] = first + i;
      await task.zeroPages(block, pages, 128, results.subarray(first, first + 128));
    }
    const all = Uint32Array.from({ length: PAGES }, (_, i) => i);
    assert.deepEqual(results, expectedZeros(block, all, PAGES));
    const c = task.counters();
    assert.equal(c.pages, PAGES);
    assert.equal(c.pagesDevice, PAGES, JSON.stringify(c));
    assert.equal(c.batches, 0);
    assert.equal(c.singleDescriptors, PAGES);
    assert.equal(c.submissions, PAGES);
    assert.equal(device.get(D_RECEIVED) - before, PAGES);
    assert.equal(device.get(D_BATCHES), 0, 'write() never carries BATCH');
    task.close();
  });

  test('the descriptors carry real virtual addresses: 64-byte aligned, pointing into the block', () => {
    const a = accel.arena;
    const base = accel.handle.arenaBase;
    assert.equal((base + a.descByte(0, 0)) % 64, 0);
    assert.equal((base + a.recordByte(0, 1)) % 32, 0);
    const w = a.i32;
    const d0 = a.descByte(0, 0) / 4;
    const src = (w[d0 + 4] >>> 0) + (w[d0 + 5] >>> 0) * 4294967296;
    const blockAddr = addressOf(new Uint8Array(block, 0, 1));
    assert.ok(src >= blockAddr && src < blockAddr + block.byteLength, 'src_addr is in the block');
    assert.equal(w[d0 + 1] >>> 24, 0x06, 'COMPVAL');
  });

  test('page faults (PAGE_FAULT_NOBOF, partial completion): the CPU finishes those pages', async () => {
    const task = accel.createBatchTask(1, 128);
    const blockAddr = addressOf(new Uint8Array(block, 0, 1));
    // Fault the 4 KiB (OS) page under chosen guest pages, wherever the block starts.
    const faulted = [3, 40, 41, 127];
    for (const p of faulted) {
      device.injectFault(Math.ceil((blockAddr + p * 4096) / 4096) * 4096);
    }
    const faultsBefore = device.get(D_FAULTS);
    const pages = Uint32Array.from({ length: 128 }, (_, i) => i);
    const results = new Uint8Array(128);
    await task.zeroPages(block, pages, 128, results);
    device.clearFaults();
    assert.deepEqual(results, expectedZeros(block, pages, 128));
    const c = task.counters();
    const reported = device.get(D_FAULTS) - faultsBefore;
    assert.ok(reported >= 1, 'the device reported faults');
    assert.equal(c.cpuFallback.pageFault, reported, JSON.stringify(c));
    assert.equal(c.pagesDevice + c.pagesCpu, 128);
    task.close();
  });

  test('a dropped descriptor: the deadline passes and the CPU decides that page', async () => {
    const task = accel.createBatchTask(2, 128);
    device.set(D_DROP_NEXT, 5);
    const dropped = device.get(D_DROPPED);
    const pages = Uint32Array.from({ length: 128 }, (_, i) => 256 + i);
    const results = new Uint8Array(128);
    await task.zeroPages(block, pages, 128, results);
    assert.deepEqual(results, expectedZeros(block, pages, 128));
    const c = task.counters();
    assert.equal(device.get(D_DROPPED) - dropped, 5);
    assert.equal(c.deadlinesMissed, 1);
    assert.equal(c.cpuFallback.deadline, 5, JSON.stringify(c));
    assert.equal(c.pagesDevice, 123);
    task.close();
  });

  test('a slow device past the deadline, then back to normal', async () => {
    const task = accel.createBatchTask(3, 128);
    device.set(D_DELAY_US, 30_000); // 30 ms per descriptor: 64 of them pass the 1 s deadline
    const pages = Uint32Array.from({ length: 64 }, (_, i) => 512 + i);
    const results = new Uint8Array(64);
    await task.zeroPages(block, pages, 64, results);
    assert.deepEqual(results, expectedZeros(block, pages, 64));
    assert.ok(task.counters().cpuFallback.deadline > 0);
    device.set(D_DELAY_US, 0); // the rest of the given-up request drains quickly now
    const p2 = Uint32Array.from({ length: 128 }, (_, i) => 1024 + i);
    const r2 = new Uint8Array(128);
    const before = task.counters().pagesDevice;
    await task.zeroPages(block, p2, 128, r2);
    assert.deepEqual(r2, expectedZeros(block, p2, 128));
    assert.equal(task.counters().pagesDevice - before, 128);
    task.close();
  });

  test('a multifdsend-like worker thread attaches with the handle and gets right answers', async () => {
    const small = mixedBlock(1024, 11);
    const w = new Worker(new URL('./driver-worker.js', import.meta.url), {
      workerData: { accel: accel.handle, block: small, channel: 4 },
    });
    const msg = await new Promise<{ results: Uint8Array; cpu: Record<string, number> }>(
      (resolve, reject) => {
        w.once('message', resolve);
        w.once('error', reject);
      },
    );
    const all = Uint32Array.from({ length: 1024 }, (_, i) => i);
    assert.deepEqual(msg.results, expectedZeros(small, all, 1024));
    assert.ok(Number.isFinite(msg.cpu.dsa_completion), 'dsa_completion reports its CPU');
  });

  test('dsa_completion reports the CPU it used, and sleeps when nothing is in flight', async () => {
    const c1 = (await accel.threadCpu()).dsa_completion;
    await sleep(200);
    const c2 = (await accel.threadCpu()).dsa_completion;
    assert.ok(Number.isFinite(c1) && c1 >= 0);
    assert.ok(c2 - c1 < 20, `idle dsa_completion used ${c2 - c1} ms in 200 ms`);
  });
});

describe('a WQ whose write() fails for good', { skip }, () => {
  test('its pages go to the CPU, the failure is explained once, and it stays halted', async () => {
    const idxd = fakeIdxd();
    const device = await FifoDevice.start(idxd.node);
    const accel = await openAccelerator(['dsa:/dev/dsa/wq0.0'], {
      sysfs: idxd.sysfs,
      hw: { allowFifo: true },
    });
    const h = accel.handle.hw[0];
    const messages: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    process.stderr.write = ((s: string) => (messages.push(String(s)), true)) as typeof write;
    try {
      // The node goes away under the driver (closed through the addon's handle, as close()
      // does): its next write() is refused with EBADF, never sent to a reused fd number.
      assert.equal(loadAddon()!.closeFd(h.fdHandle), 0);
      const block = mixedBlock(256, 3);
      const task = accel.createBatchTask(0, 128);
      const pages = Uint32Array.from({ length: 128 }, (_, i) => i);
      const results = new Uint8Array(128);
      await task.zeroPages(block, pages, 128, results);
      assert.deepEqual(results, expectedZeros(block, pages, 128));
      const r2 = new Uint8Array(128);
      await task.zeroPages(block, pages, 128, r2);
      assert.deepEqual(r2, results);
      const c = task.counters();
      assert.equal(c.pagesDevice, 0);
      assert.equal(c.cpuFallback.deviceHalted, 256, JSON.stringify(c));
      task.close();
    } finally {
      process.stderr.write = write;
      await accel.close();
      await device.stop();
      idxd.cleanup();
    }
    const text = messages.join('');
    assert.match(
      text,
      /dsa:\/dev\/dsa\/wq0.0: the work queue dsa0\/wq0.0 stopped taking descriptors \(EBADF\)/,
    );
    assert.equal(text.match(/stopped taking descriptors/g)?.length, 1, 'explained once');
  });
});

describe('a dedicated WQ through write(): the driver holds credits', { skip }, () => {
  test('16 credits and 128-page requests: right, by the device, every credit back', async () => {
    const idxd = fakeIdxd({ wq: { mode: 'dedicated', size: 16, threshold: 0 } });
    const device = await FifoDevice.start(idxd.node);
    const accel = await openAccelerator(['dsa:/dev/dsa/wq0.0'], {
      sysfs: idxd.sysfs,
      hw: { allowFifo: true },
      submitRetries: 10_000,
    });
    try {
      assert.equal(accel.handle.hw[0].mode, 'dedicated');
      assert.equal(Atomics.load(accel.arena.i32, A_CREDITS), 16);
      device.set(D_DELAY_US, 100);
      const block = mixedBlock(256, 5);
      const task = accel.createBatchTask(0, 128);
      const results = new Uint8Array(256);
      for (const first of [0, 128]) {
        const pages = Uint32Array.from({ length: 128 }, (_, i) => first + i);
        await task.zeroPages(block, pages, 128, results.subarray(first, first + 128));
      }
      const all = Uint32Array.from({ length: 256 }, (_, i) => i);
      assert.deepEqual(results, expectedZeros(block, all, 256));
      const c = task.counters();
      assert.equal(c.pagesDevice, 256, JSON.stringify(c));
      assert.ok(c.submitRetries > 0, 'it waited for credits');
      assert.equal(Atomics.load(accel.arena.i32, A_CREDITS), 16, 'every credit came back');
      task.close();
    } finally {
      await accel.close();
      await device.stop();
      idxd.cleanup();
    }
  });
});

describe(
  'the batch path with real addresses (BATCH over the FIFO, as the mapped portal sends it)',
  { skip },
  () => {
    for (const mode of ['shared', 'dedicated'] as const) {
      test(`${mode} WQ: a packet is one BATCH, member records and batch record, all right`, async () => {
        const idxd = fakeIdxd({
          wq:
            mode === 'shared'
              ? { max_batch_size: 64 }
              : { mode, size: 4, threshold: 0, max_batch_size: 64 },
        });
        const device = await FifoDevice.start(idxd.node);
        const accel = await openAccelerator(['dsa:/dev/dsa/wq0.0'], {
          sysfs: idxd.sysfs,
          hw: { allowFifo: true, batchOverWrite: true },
          submitRetries: 10_000,
        });
        try {
          assert.match(accel.handle.hw[0].why, /\[test: BATCH over write\(\)\]/);
          const block = mixedBlock(512, 9);
          const task = accel.createBatchTask(0, 256);
          const results = new Uint8Array(512);
          const batches = device.get(D_BATCHES);
          for (const first of [0, 256]) {
            // 256 pages with max_batch_size 64: four BATCH descriptors per request.
            const pages = Uint32Array.from({ length: 256 }, (_, i) => first + i);
            await task.zeroPages(block, pages, 256, results.subarray(first, first + 256));
          }
          // A one-page request is a plain descriptor (hardware refuses a batch of one).
          const one = new Uint8Array(1);
          await task.zeroPages(block, Uint32Array.of(3), 1, one);
          const all = Uint32Array.from({ length: 512 }, (_, i) => i);
          assert.deepEqual(results, expectedZeros(block, all, 512));
          assert.equal(one[0], expectedZeros(block, Uint32Array.of(3), 1)[0]);
          const c = task.counters();
          assert.equal(c.batches, 8);
          assert.equal(c.singleDescriptors, 1);
          assert.equal(device.get(D_BATCHES) - batches, 8);
          assert.equal(c.pagesDevice, 513, JSON.stringify(c));
          if (mode === 'dedicated') {
            assert.equal(Atomics.load(accel.arena.i32, A_CREDITS), 4, 'every credit came back');
          }
          task.close();
        } finally {
          await accel.close();
          await device.stop();
          idxd.cleanup();
        }
      });
    }
  },
);
