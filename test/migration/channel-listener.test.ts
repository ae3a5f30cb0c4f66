// A receive thread's listener opened before the thread is bound (channel-listener.ts), and what
// the pool keeps of a pooled thread's first words (worker-pool.ts): the destination answers Hello
// with ports its pooled threads already listen on. Real sockets on loopback, a real thread.

import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { once } from 'node:events';
import { ChannelListener } from '../../src/migration/destination/channel-listener.js';
import { WorkerPool } from '../../src/util/worker-pool.js';

async function listening(): Promise<ChannelListener> {
  let l!: ChannelListener;
  await new Promise<void>((resolve) => {
    l = new ChannelListener('127.0.0.1', () => resolve());
  });
  return l;
}

test('a connection that arrives before the thread is bound is held, then handed over with its bytes', async () => {
  const l = await listening();
  assert.ok(l.port > 0);
  const early = net.connect({ host: '127.0.0.1', port: l.port });
  await once(early, 'connect');
  early.write('handshake-bytes');
  // Not handed yet: nothing reads it.
  await sleep(50);
  const got: net.Socket[] = [];
  l.hand((s) => got.push(s));
  assert.equal(got.length, 1, 'the held connection is handed at once');
  const [data] = (await once(got[0], 'data')) as [Buffer];
  assert.equal(data.toString(), 'handshake-bytes');
  // Later connections go straight to the handler.
  const late = net.connect({ host: '127.0.0.1', port: l.port });
  await once(late, 'connect');
  await sleep(20);
  assert.equal(got.length, 2);
  for (const s of [early, late, ...got]) s.destroy();
  l.close();
});

test('no more than 8 connections are held before the thread is bound', async () => {
  const l = await listening();
  const clients = await Promise.all(
    Array.from({ length: 10 }, async () => {
      const c = net.connect({ host: '127.0.0.1', port: l.port });
      c.on('error', () => {});
      await once(c, 'connect');
      return c;
    }),
  );
  await sleep(100);
  const closed = clients.filter((c) => c.destroyed || c.readableEnded).length;
  const got: net.Socket[] = [];
  l.hand((s) => got.push(s));
  assert.equal(got.length, 8, 'eight held');
  assert.ok(closed <= 2, 'the other two dropped, not held');
  for (const s of [...clients, ...got]) s.destroy();
  l.close();
});

test('the pool keeps what an idle thread said for the one who takes it', async () => {
  const pool = new WorkerPool();
  const code = new URL(
    'data:text/javascript,' +
      encodeURIComponent(
        "import { parentPort, workerData } from 'node:worker_threads';" +
          "parentPort.postMessage({ type: 'listening', port: workerData?.port });" +
          "parentPort.on('message', (m) => parentPort.postMessage({ type: 'bound', data: m.data }));",
      ),
  );
  pool.prespawn(code, 1, { port: 4242 });
  // Let it start and speak while idle.
  await sleep(1000);
  const w = pool.take(code, 'x');
  assert.deepEqual(pool.saidWhileIdle(w), { type: 'listening', port: 4242 });
  const [m] = (await once(w, 'message')) as [unknown];
  assert.deepEqual(m, { type: 'bound', data: 'x' }, 'the bind still reaches it');
  const fresh = pool.take(code, 'y');
  assert.equal(pool.saidWhileIdle(fresh), undefined, 'a thread started by take said nothing idle');
  await Promise.all([w.terminate(), fresh.terminate(), pool.close()]);
});
