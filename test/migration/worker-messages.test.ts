// The channel threads take only the messages they expect, in order: anything else is reported
// as an error naming it, never taken for something else.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { SEND_WORKER } from '../../src/migration/source/source.js';

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
