// The channel threads take only the messages they expect, in order: anything else is reported
// as an error naming it, never taken for something else.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { SEND_WORKER } from '../../src/migration/source/source.js';
import type { SendWorkerData } from '../../src/migration/source/worker-data.js';
import {
  CHAN_STAT,
  CHAN_WORD,
  MIG,
  createSlots,
} from '../../src/migration/source/channel-slots.js';
import { allocateBlocks } from '../../src/ram/layout.js';
import { CpuRegistry } from '../../src/util/cpu-slots.js';

const RECV_WORKER = new URL('../../src/migration/destination/recv-worker.js', import.meta.url);

async function firstReply(
  file: URL,
  messages: unknown[],
): Promise<{ type: string; message?: string }> {
  const worker = new Worker(file);
  try {
    const reply = new Promise<{ type: string; message?: string }>((resolve) =>
      worker.once('message', resolve),
    );
    for (const m of messages) worker.postMessage(m);
    return await reply;
  } finally {
    await worker.terminate();
  }
}

test('multifdsend_N reports a message other than bind first', async () => {
  for (const m of [{ type: 'connect', port: 1 }, { type: 'finish' }, 'bind']) {
    const r = await firstReply(SEND_WORKER, [m]);
    assert.equal(r.type, 'error');
    assert.match(String(r.message), /^multifdsend: unexpected message .* before 'bind'$/);
  }
});

test("multifdsend_N says 'channel-stopped' once it has finished", { timeout: 10_000 }, async () => {
  // The source ends a channel thread, and closes the accelerator, when it says so (without it,
  // only after a grace period of seconds).
  const cpu = new CpuRegistry();
  const data: SendWorkerData = {
    blocks: allocateBlocks(1024 * 1024),
    slots: createSlots(1),
    mig: new SharedArrayBuffer(MIG.size * 4),
    chanStats: new SharedArrayBuffer(CHAN_STAT.size * 8),
    chanWords: new SharedArrayBuffer(CHAN_WORD.size * 4),
    cpuSlots: cpu.slots,
    channels: 1,
    packetPages: 128,
    stallTimeoutMs: 1000,
    threadNice: 0,
    mode: 'multifd',
    transport: {},
    index: 0,
    host: '127.0.0.1',
    session: new Uint8Array(16),
    cpuSlot: cpu.slot('multifdsend_0'),
  };
  const r = await firstReply(SEND_WORKER, [{ type: 'bind', data }, { type: 'finish' }]);
  assert.deepEqual(r, { type: 'channel-stopped', index: 0 });
});

test('multifdrecv_N reports a message other than bind first', async () => {
  for (const [m, name] of [
    [{ type: 'finish' }, "'finish'"],
    [{ type: 'start' }, "'start'"],
    [{ nothing: true }, '{"nothing":true}'],
  ] as const) {
    const r = await firstReply(RECV_WORKER, [m]);
    assert.equal(r.type, 'error');
    assert.equal(
      r.message,
      `multifdrecv: unexpected message ${name} before 'bind' (expected 'bind', then 'finish')`,
    );
  }
});
