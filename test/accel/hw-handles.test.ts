// The native addon's handles: every use of a portal or a WQ fd is checked under the lock that
// closing takes, so a thread that is late never stores into an unmapped portal or writes
// descriptors into an fd number the process has reused since. Real threads, real files.

import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import {
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { addonStatus, loadAddon } from '../../src/accel/hw/addon.js';
import { addonSkip, captureStderr } from './hw-helpers.js';
import { submitPortal, type HwWqHandle } from '../../src/accel/hw/wq.js';
import { haltReason, newWqState } from '../../src/accel/hw/wq-state.js';

const skip = addonSkip();
const EBADF = -osConstants.errno.EBADF;
const POLLIN = 1;
const POLLNVAL = 0x20;

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'livemig-handles-'));
}

test('a portal handle is refused once unmapped, even after its entry is reused', { skip }, () => {
  const native = loadAddon()!;
  const dir = tempDir();
  try {
    const file = join(dir, 'portal');
    writeFileSync(file, Buffer.alloc(4096));
    const fd = openSync(file, 'r+');
    const h = native.mapPortal(fd);
    assert.ok(h >= 64, `a handle carries a generation: ${h}`);
    assert.equal(native.unmapPortal(h), 0);
    assert.equal(native.unmapPortal(h), EBADF, 'unmapping twice does nothing');
    const desc = new Uint8Array(64);
    assert.throws(
      () => native.submit(h, 1, desc, 1),
      (e: NodeJS.ErrnoException) =>
        e.code === 'EBADF' && /portal handle \d+ is closed/.test(e.message),
    );
    const h2 = native.mapPortal(fd);
    assert.notEqual(h2, h, 'the new mapping has a new handle');
    assert.throws(() => native.submit(h, 0, desc, 1), /is closed/, 'the stale one stays refused');
    assert.throws(() => native.submit(3, 1, desc, 1), /3 is not a portal handle/);
    assert.throws(() => native.submit(-1, 1, desc, 1), /-1 is not a portal handle/);
    assert.equal(native.unmapPortal(h2), 0);
    closeSync(fd);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  'an adopted fd: written through its handle, refused once closed, never reused',
  { skip },
  () => {
    const native = loadAddon()!;
    const dir = tempDir();
    try {
      const fd = openSync(join(dir, 'wq'), 'w');
      const h = native.adoptFd(fd);
      const bytes = Uint8Array.from({ length: 128 }, (_, i) => i);
      assert.equal(native.writeFd(h, bytes, 64, 64), 64);
      assert.deepEqual(readFileSync(join(dir, 'wq')), Buffer.from(bytes.subarray(64)));
      assert.throws(() => native.writeFd(h, bytes, 100, 64), /inside the view/);
      assert.equal(native.closeFd(h), 0);
      assert.equal(native.closeFd(h), EBADF);
      // The process reuses the number; the old handle must not write into the new file.
      const other = openSync(join(dir, 'other'), 'w');
      assert.equal(other, fd, 'the fd number was reused');
      assert.throws(
        () => native.writeFd(h, bytes, 0, 64),
        (e: NodeJS.ErrnoException) =>
          e.code === 'EBADF' && /work queue fd handle \d+ is closed/.test(e.message),
      );
      assert.equal(statSync(join(dir, 'other')).size, 0);
      closeSync(other);
      // An error of the fd itself comes back as -errno (a read-only fd: EBADF from write(2)).
      const ro = native.adoptFd(openSync(join(dir, 'wq'), 'r'));
      assert.equal(native.writeFd(ro, bytes, 0, 64), EBADF);
      assert.equal(native.closeFd(ro), 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test(
  'threads writing while the fd is closed: each write lands before, or is refused',
  { skip },
  async () => {
    const native = loadAddon()!;
    const dir = tempDir();
    try {
      const h = native.adoptFd(openSync('/dev/null', 'w'));
      const path = (addonStatus() as { path: string }).path;
      const started = new Int32Array(new SharedArrayBuffer(4));
      const workers = [0, 1, 2].map(
        () =>
          new Worker(
            `const { parentPort, workerData } = require('node:worker_threads');
           const native = require(workerData.path);
           const desc = new Uint8Array(64);
           let n = 0;
           Atomics.add(workerData.started, 0, 1);
           try {
             for (;;) { if (native.writeFd(workerData.h, desc, 0, 64) !== 64) break; n++; }
             parentPort.postMessage({ n, error: 'a short write' });
           } catch (e) {
             parentPort.postMessage({ n, code: e.code, error: e.message });
           }`,
            { eval: true, workerData: { h, path, started: started } },
          ),
      );
      const done = workers.map(
        (w) =>
          new Promise<{ n: number; code?: string; error: string }>((resolve, reject) => {
            w.once('message', resolve);
            w.once('error', reject);
          }),
      );
      while (Atomics.load(started, 0) < 3) await sleep(1);
      await sleep(20);
      assert.equal(native.closeFd(h), 0);
      // The number is free now: a file opened next may get it.
      const reused = openSync(join(dir, 'after'), 'w');
      const results = await Promise.all(done);
      for (const r of results) {
        assert.equal(r.code, 'EBADF', r.error);
        assert.match(r.error, /is closed/);
        assert.ok(r.n > 0, 'it wrote before the close');
      }
      assert.equal(statSync(join(dir, 'after')).size, 0, 'nothing reached the reused number');
      closeSync(reused);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  },
);

test('pollFds: readable when data waits, POLLNVAL once closed', { skip }, () => {
  const native = loadAddon()!;
  const dir = tempDir();
  try {
    const fifo = join(dir, 'wq');
    execFileSync('mkfifo', [fifo]);
    const h = native.adoptFd(openSync(fifo, constants.O_RDWR | constants.O_NONBLOCK));
    const handles = Int32Array.of(h);
    const revents = new Int32Array(1);
    assert.equal(native.pollFds(handles, 1, 0, revents), 0);
    assert.equal(revents[0], 0);
    const writer = openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK);
    writeSync(writer, Buffer.alloc(64));
    assert.equal(native.pollFds(handles, 1, 1000, revents), 1);
    assert.equal(revents[0] & POLLIN, POLLIN);
    closeSync(writer);
    assert.equal(native.closeFd(h), 0);
    assert.equal(native.pollFds(handles, 1, 0, revents), 1);
    assert.equal(revents[0], POLLNVAL);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test(
  "the driver's portal submission: a closed portal halts the WQ (EBADF) instead of throwing",
  { skip },
  () => {
    const native = loadAddon()!;
    const dir = tempDir();
    const stderr = captureStderr();
    try {
      const file = join(dir, 'portal');
      writeFileSync(file, Buffer.alloc(4096));
      const fd = openSync(file, 'r+');
      const portal = native.mapPortal(fd);
      assert.equal(native.unmapPortal(portal), 0);
      closeSync(fd);
      const h = {
        text: 'dsa:/dev/dsa/wq0.0',
        device: 'dsa0',
        wq: 'wq0.0',
        portal,
        state: newWqState(),
      } as unknown as HwWqHandle;
      assert.equal(submitPortal(h, 1, new Uint8Array(64), 1), 0);
      assert.match(haltReason(new Int32Array(h.state), h)!, /refused its descriptors \(EBADF\)/);
    } finally {
      stderr.restore();
      rmSync(dir, { recursive: true, force: true });
    }
    assert.match(stderr.text(), /stopped taking descriptors \(EBADF\)/);
  },
);
