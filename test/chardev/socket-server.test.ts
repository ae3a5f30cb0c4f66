// A socket chardev as a server, over real UNIX and TCP sockets: one client at a time, as QEMU;
// clients come, go and come back; output nobody is attached for is dropped; a slow client
// cannot make memory grow; `wait` holds the guest until the first client.

import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { spawnSync } from 'node:child_process';
import { parseSocketAddress } from '../../src/control/socket-address.js';
import { ConsoleClient } from '../../src/chardev/console-client.js';
import { EventLog, InputLog, makeTmpDir, open, turn } from './helpers.js';

const tmp = makeTmpDir();
after(() => tmp.cleanup());

let serial = 0;
function spec(kind: 'unix' | 'tcp', options: string): string {
  const where = kind === 'unix' ? `unix:${tmp.path(`s${++serial}.sock`)}` : 'tcp:127.0.0.1:0';
  return `${where},server=on${options}`;
}

function rawConnect(address: string): Promise<Socket> {
  const where = parseSocketAddress(address);
  return new Promise((resolve, reject) => {
    const s = where.kind === 'unix' ? connect(where.path) : connect(where.port, where.host);
    s.once('connect', () => resolve(s)).once('error', reject);
  });
}

const encoder = new TextEncoder();
const bytes = (text: string): Uint8Array => encoder.encode(text);

for (const kind of ['unix', 'tcp'] as const) {
  describe(`a ${kind} serial server`, () => {
    test('output reaches the attached client and its input reaches onInput', async () => {
      const dev = await open(spec(kind, ',wait=off'));
      const events = new EventLog(dev);
      const input = new InputLog(dev);
      const client = await ConsoleClient.connect(dev.address);
      await events.next('opened');
      for (const ch of 'Welcome to Linux\r\n') dev.write(bytes(ch)); // the UART's byte at a time
      await client.waitFor('Welcome to Linux\r\n', 5000);
      await client.send('root\r');
      await input.until('root\r');
      assert.equal(input.text, 'root\r');
      assert.equal(dev.stats().attached, true);
      await client.close();
      await dev.close();
    });

    test('a client can leave and attach again; output in between is dropped, not saved', async () => {
      const dev = await open(spec(kind, ',wait=off'));
      const events = new EventLog(dev);
      const first = await ConsoleClient.connect(dev.address);
      await events.next('opened');
      dev.write(bytes('one\n'));
      await first.waitFor('one\n', 5000);
      await first.close();
      await events.next('closed');

      dev.write(bytes('nobody hears this\n'));
      const again = await ConsoleClient.connect(dev.address);
      await events.next('opened');
      dev.write(bytes('two\n'));
      await again.waitFor('two\n', 5000);
      assert.equal(again.text(), 'two\n');
      assert.equal(first.text(), 'one\n');
      const stats = dev.stats();
      assert.equal(stats.droppedDetached, 'nobody hears this\n'.length);
      assert.equal(stats.attaches, 2);
      assert.equal(stats.written, 'one\nnobody hears this\ntwo\n'.length);
      await again.close();
      await dev.close();
    });

    test('a second client gets nothing while the first is attached, then what follows', async () => {
      const dev = await open(spec(kind, ',wait=off'));
      const events = new EventLog(dev);
      const input = new InputLog(dev);
      const a = await ConsoleClient.connect(dev.address);
      await events.next('opened');
      const b = await ConsoleClient.connect(dev.address);
      await b.send('typed by b\r');
      await a.send('typed by a\r');
      await input.until('typed by a\r');
      dev.write(bytes('for a\n'));
      await a.waitFor('for a\n', 5000);

      await a.close();
      await events.next('closed');
      assert.equal(input.text, 'typed by a\r', "b's bytes waited in the kernel");
      await events.next('opened'); // b, taken from the queue
      await input.until('typed by b\r');
      dev.write(bytes('for b\n'));
      await b.waitFor('for b\n', 5000);
      assert.equal(b.text(), 'for b\n');
      assert.deepEqual(events.seen, ['opened', 'closed', 'opened']);
      await b.close();
      await dev.close();
    });

    test('wait=on: ready() resolves only once a client has connected', async () => {
      const dev = await open(spec(kind, ''));
      const order: string[] = [];
      dev.onEvent((e) => order.push(e));
      const ready = dev.ready().then(() => order.push('ready'));
      assert.equal(await Promise.race([ready.then(() => 'ready'), turn()]), 'pending');
      assert.deepEqual(order, []);
      const client = await ConsoleClient.connect(dev.address);
      await ready;
      assert.deepEqual(order, ['opened', 'ready']);
      await client.close();
      await dev.close();
    });

    test('wait=on: close() before any client rejects ready()', async () => {
      const dev = await open(spec(kind, ',wait=on'));
      const ready = dev.ready();
      await dev.close();
      await assert.rejects(ready, /closed before a client came/);
    });

    test('wait=off: ready() resolves with nobody attached', async () => {
      const dev = await open(spec(kind, ',wait=off'));
      await dev.ready();
      assert.equal(dev.stats().attached, false);
      await dev.close();
    });

    test("close() sends the last output and ends the client's connection", async () => {
      const dev = await open(spec(kind, ',wait=off'));
      const events = new EventLog(dev);
      const client = await ConsoleClient.connect(dev.address);
      await events.next('opened');
      dev.write(bytes('reboot: Power down\r\n'));
      await dev.close();
      await client.disconnected();
      assert.equal(client.connected, false);
      assert.equal(client.text(), 'reboot: Power down\r\n');
    });

    test('input typed before anyone listens is kept (64 KiB) and delivered to the listener', async () => {
      const dev = await open(spec(kind, ',wait=off'));
      const events = new EventLog(dev);
      const client = await ConsoleClient.connect(dev.address);
      await events.next('opened');
      const typed = Buffer.alloc(100 * 1024, 'k');
      await client.send(typed);
      await client.close();
      await events.next('closed'); // its bytes were read before its EOF
      const received: Buffer[] = [];
      dev.onInput((data) => received.push(data));
      assert.equal(Buffer.concat(received).length, 64 * 1024);
      assert.equal(dev.stats().droppedInput, typed.length - 64 * 1024);
      await dev.close();
    });

    test('a client that does not read costs bounded memory: output beyond it is dropped', async () => {
      const dev = await open(spec(kind, ',wait=off'));
      const events = new EventLog(dev);
      const sluggish = await rawConnect(dev.address);
      sluggish.pause();
      await events.next('opened');
      const chunk = new Uint8Array(64 * 1024).fill(0x41);
      const total = 48 * 1024 * 1024; // far more than the kernel's buffers hold
      for (let n = 0; n < total; n += chunk.length) dev.write(chunk);
      const { written, droppedSlow, attached } = dev.stats();
      assert.equal(written, total);
      assert.ok(droppedSlow > 0, 'output beyond the bound was dropped');
      assert.ok(attached, 'a slow client is not thrown out');

      let received = 0;
      sluggish.on('data', (data: Buffer) => (received += data.length));
      const ended = new Promise((resolve) => sluggish.once('end', resolve));
      sluggish.resume();
      await dev.close();
      await ended;
      assert.equal(received, total - droppedSlow, 'everything not counted as dropped arrived');
      sluggish.destroy();
    });
  });
}

describe('a serial server on TCP', () => {
  test('port 0: the address reports the port the kernel chose, and it answers', async () => {
    const dev = await open('tcp:127.0.0.1:0,server=on,wait=off');
    const m = /^tcp:127\.0\.0\.1:(\d+)$/.exec(dev.address);
    assert.ok(m, dev.address);
    assert.notEqual(Number(m[1]), 0);
    const events = new EventLog(dev);
    const client = await ConsoleClient.connect(`tcp:127.0.0.1:${m[1]}`);
    await events.next('opened');
    await client.close();
    await dev.close();
  });

  test('a port in use is refused, naming it', async () => {
    const dev = await open('tcp:127.0.0.1:0,server=on,wait=off');
    await assert.rejects(
      open(`${dev.address},server=on,wait=off`),
      new RegExp(`cannot listen for serial on ${dev.address}: .*EADDRINUSE`),
    );
    await dev.close();
  });
});

describe('a serial server on a UNIX socket', () => {
  test('the socket file is mode 0600, addressed as unix:PATH, and removed on close', async () => {
    const path = tmp.path('mode.sock');
    const dev = await open(`unix:${path},server=on,wait=off`);
    assert.equal(dev.address, `unix:${path}`);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    await dev.close();
    assert.equal(existsSync(path), false);
  });

  test('a stale socket file is replaced; a live one or a regular file is refused', async () => {
    const stale = tmp.path('stale.sock');
    // A process killed while listening leaves its socket file behind.
    spawnSync(process.execPath, [
      '-e',
      `require('net').createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, 'SIGKILL'))`,
    ]);
    assert.ok(existsSync(stale), 'precondition: a stale socket file');
    const dev = await open(`unix:${stale},server=on,wait=off`);
    const events = new EventLog(dev);
    const client = await ConsoleClient.connect(dev.address);
    await events.next('opened');
    await client.close();
    await assert.rejects(open(`unix:${stale},server=on,wait=off`), /serial socket .* is in use/);
    await dev.close();

    const file = tmp.path('not-a-socket');
    writeFileSync(file, 'keep me');
    await assert.rejects(open(`unix:${file},server=on`), /serial socket path .* is not a socket/);
    assert.equal(readFileSync(file, 'utf8'), 'keep me');
  });
});
