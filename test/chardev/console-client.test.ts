// ConsoleClient: waiting for output from a mark, the timeout error that shows what the console
// did print, and one client following a guest from one chardev (process) to the next.

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { ConsoleClient } from '../../src/chardev/console-client.js';
import type { Chardev } from '../../src/chardev/index.js';
import { EventLog, makeTmpDir, open } from './helpers.js';

const tmp = makeTmpDir();
after(() => tmp.cleanup());
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

async function attached(
  path: string,
  client?: ConsoleClient,
): Promise<{ dev: Chardev; client: ConsoleClient }> {
  const dev = await open(`unix:${path},server=on,wait=off`);
  const opened = new EventLog(dev).next('opened');
  if (client) await client.connect(dev.address);
  else client = await ConsoleClient.connect(dev.address);
  await opened;
  return { dev, client };
}

test('waitFor looks only after the mark it is given, and reports absolute positions', async () => {
  const { dev, client } = await attached(tmp.path('mark.sock'));
  dev.write(bytes('prompt A\n'));
  await client.waitFor('prompt A', 5000);
  const mark = client.mark();
  assert.equal(mark, 'prompt A\n'.length);
  dev.write(bytes('prompt B\n'));
  const m = await client.waitFor(/prompt (\w)/, 5000, mark);
  assert.equal(m[1], 'B');
  assert.equal(m.index, mark);
  assert.equal(m.end, mark + 'prompt B'.length);
  assert.equal(client.text(m.end), '\n');
  await client.close();
  await dev.close();
});

test('a string pattern is literal text; a regexp keeps its flags (but not g/y)', async () => {
  const { dev, client } = await attached(tmp.path('literal.sock'));
  dev.write(bytes('a.b axb\nLOGIN: '));
  const dot = await client.waitFor('x', 5000);
  assert.equal(dot.index, 5);
  const literal = await client.waitFor('a.b', 5000);
  assert.equal(literal.index, 0);
  const sticky = /login:/giy;
  sticky.lastIndex = 99; // ignored
  assert.equal((await client.waitFor(sticky, 5000)).index, 8);
  assert.equal((await client.waitFor(/^LOGIN/m, 5000)).index, 8);
  await client.close();
  await dev.close();
});

test('a timeout names the pattern and shows the last 20 lines seen, controls made printable', async () => {
  const { dev, client } = await attached(tmp.path('timeout.sock'));
  for (let i = 1; i <= 30; i++) dev.write(bytes(`[    ${i}.0] boot line ${i}\r\n`));
  dev.write(bytes('\x1b[1;31mFAILED\x1b[0m to start \x07unit'));
  await client.waitFor('to start', 5000);
  const err = await client.waitFor(/login:/, 50).then(
    () => assert.fail('there is no login prompt'),
    (e: Error) => e,
  );
  assert.match(err.message, /^console: no \/login:\/ within 50 ms \(from position 0 of \d+/);
  assert.match(err.message, /connected to unix:/);
  assert.match(err.message, /last 20 lines:\n {2}\| \[ {4}12\.0\] boot line 12\n/);
  assert.doesNotMatch(err.message, /boot line 11\b/);
  assert.match(err.message, / {2}\| FAILED to start \^Gunit$/);
  await client.close();
  await dev.close();
});

test('a timeout with no output at all says so', async () => {
  const { dev, client } = await attached(tmp.path('silent.sock'));
  await assert.rejects(client.waitFor('anything', 20), /within 20 ms .*\(no output at all\)$/);
  await client.close();
  await dev.close();
});

test('lines() splits CRLF and LF and keeps a partial last line', async () => {
  const { dev, client } = await attached(tmp.path('lines.sock'));
  dev.write(bytes('one\r\ntwo\nthree'));
  await client.waitFor('three', 5000);
  assert.deepEqual(client.lines(), ['one', 'two', 'three']);
  assert.deepEqual(client.lines(5), ['two', 'three']);
  await client.close();
  await dev.close();
});

test('multi-byte characters split across writes arrive whole', async () => {
  const { dev, client } = await attached(tmp.path('utf8.sock'));
  const euro = bytes('€'); // three bytes
  for (const b of euro) dev.write(Uint8Array.of(b));
  dev.write(bytes('\n'));
  await client.waitFor('€\n', 5000);
  await client.close();
  await dev.close();
});

test('the guest moves: close, connect to the next chardev, wait on from a mark', async () => {
  const path = tmp.path('moving.sock');
  const src = await attached(path);
  const client = src.client;
  src.dev.write(bytes('on the source\n'));
  await client.waitFor('on the source\n', 5000);
  await client.close();
  assert.equal(client.connected, false);
  await assert.rejects(client.send('x'), /console: not connected/);
  await src.dev.close();

  const mark = client.mark();
  const dst = await attached(path, client); // same path, another chardev: the destination's
  dst.dev.write(bytes('on the destination\n'));
  const m = await client.waitFor(/on the (\w+)/, 5000, mark);
  assert.equal(m[1], 'destination');
  assert.equal(client.text(), 'on the source\non the destination\n');
  await client.close();
  await dst.dev.close();
});

test('the server going away ends the connection; a wait goes on across the reconnect', async () => {
  const path = tmp.path('away.sock');
  const src = await attached(path);
  const client = src.client;
  const waiting = client.waitFor('after the move', 10_000);
  await src.dev.close();
  await client.disconnected();
  const dst = await attached(path, client);
  dst.dev.write(bytes('after the move'));
  assert.equal((await waiting).index, 0);
  await client.close();
  await dst.dev.close();
});

test('connect refuses a second connection and can retry until the socket appears', async () => {
  const path = tmp.path('later.sock');
  await assert.rejects(
    ConsoleClient.connect(`unix:${path}`),
    /console: cannot connect to unix:.*ENOENT/,
  );
  const connecting = ConsoleClient.connect(`unix:${path}`, { retryForMs: 10_000 });
  const dev = await open(`unix:${path},server=on,wait=on`);
  const client = await connecting;
  await dev.ready();
  await assert.rejects(client.connect(`unix:${path}`), /already connected to unix:/);
  await client.close();
  await dev.close();
});
