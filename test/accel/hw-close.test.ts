// Closing a hardware accelerator after a thread that submitted through it was ended inside a
// submission, its count left in the submit gate (src/accel/submit-gate.ts). close() cannot know
// that the thread is gone, so by default it keeps the WQ's fd open (a closed fd number could be
// reused under a late write()). A caller that knows every user thread has ended (the source,
// once its channels are gone) says so, and the fd is closed.

import { once } from 'node:events';
import { readlinkSync, realpathSync } from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { G_INSIDE } from '../../src/accel/arena.js';
import { openAccelerator } from '../../src/accel/driver.js';
import { FifoDevice, addonSkip, fakeIdxd } from './hw-helpers.js';

const skip = addonSkip();

/** A thread that enters the gate as a submitter does, says so, and never leaves. */
const ENTERS_AND_STAYS = `
const { workerData, parentPort } = require('node:worker_threads');
Atomics.add(new Int32Array(workerData), ${G_INSIDE}, 1);
parentPort.postMessage('inside');
for (;;) {}
`;

/** What fd `fd` of this process is open on, or undefined when it is closed. */
function openOn(fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

for (const usersEnded of [false, true]) {
  const name = usersEnded
    ? 'close({ usersEnded }) after a submitter was ended inside the gate: the WQ fd is closed'
    : 'close() after a submitter was ended inside the gate: the WQ fd stays open';
  test(name, { skip }, async () => {
    const idxd = fakeIdxd();
    const device = await FifoDevice.start(idxd.node);
    try {
      const accel = await openAccelerator(['dsa:/dev/dsa/wq0.0'], {
        sysfs: idxd.sysfs,
        hw: { allowFifo: true },
        deadlineMs: 20,
      });
      const fd = accel.handle.hw[0].fd;
      const node = realpathSync(idxd.node);
      assert.equal(openOn(fd), node);
      const w = new Worker(ENTERS_AND_STAYS, { eval: true, workerData: accel.handle.arena });
      await once(w, 'message');
      await w.terminate();
      await accel.close(usersEnded ? { usersEnded } : undefined);
      if (usersEnded) assert.notEqual(openOn(fd), node, 'the WQ fd is closed');
      else assert.equal(openOn(fd), node, 'the WQ fd stays open');
    } finally {
      await device.stop();
      idxd.cleanup();
    }
  });
}
