// A pooled multifdsend_N thread's warm-up (send-warm-up.ts): it sends its private guest's
// packets through the real SendChannel (so every shape of packet was built and written), stops
// when its thread is bound, and leaves no socket or server behind.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { warmUpSendChannel } from '../../src/migration/source/send-warm-up.js';

/** TCP sockets and servers this thread holds, once those closing are gone (at most 2 s). */
async function tcpHandles(): Promise<string[]> {
  const tcp = (): string[] => process.getActiveResourcesInfo().filter((r) => r.startsWith('TCP'));
  for (let i = 0; i < 200 && tcp().length > 0; i++) await new Promise((r) => setTimeout(r, 10));
  return tcp();
}

test('the warm-up sends every pass of its private guest through the channel', async () => {
  const r = await warmUpSendChannel(() => false);
  assert.equal(r.stopped, false);
  // 80 passes of 1,024 pages in packets of 16: 60 of every page (64 packets), 20 of every
  // third page (342 pages, 22 packets); every eighth page of each block's second half has data.
  assert.equal(r.packets, 60 * 64 + 20 * 22);
  assert.equal(r.normal + r.zero, 60 * 1024 + 20 * 342);
  assert.equal(r.normal, 60 * 64 + 20 * 21);
  assert.deepEqual(await tcpHandles(), []);
});

test('the warm-up stops at its next packet once its thread is bound', async () => {
  let asked = 0;
  const r = await warmUpSendChannel(() => ++asked > 100);
  assert.equal(r.stopped, true);
  assert.ok(r.packets > 0 && r.packets <= 100, `${r.packets} packets`);
  assert.deepEqual(await tcpHandles(), []);
});

test('a warm-up bound before it connects sends nothing', async () => {
  const r = await warmUpSendChannel(() => true);
  assert.deepEqual({ packets: r.packets, stopped: r.stopped }, { packets: 0, stopped: true });
});
