// A socket chardev as a client (server=off, QEMU's default): it connects out to a listening
// console, refuses to start when nobody listens, and with reconnect connects again.

import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { EventLog, InputLog, makeTmpDir, open } from './helpers.js';

const tmp = makeTmpDir();
after(() => tmp.cleanup());

/** A listening console on a UNIX socket that hands over each connection it accepts. */
class Listener {
  private readonly queue: Socket[] = [];
  private readonly waiting: ((socket: Socket) => void)[] = [];
  private constructor(readonly server: Server) {
    server.on('connection', (socket) => {
      const w = this.waiting.shift();
      if (w) w(socket);
      else this.queue.push(socket);
    });
  }

  static async listen(path: string): Promise<Listener> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(path, resolve));
    return new Listener(server);
  }

  next(): Promise<Socket> {
    const s = this.queue.shift();
    return s ? Promise.resolve(s) : new Promise((resolve) => this.waiting.push(resolve));
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

function readUntil(socket: Socket, text: string): Promise<string> {
  let seen = '';
  return new Promise((resolve) => {
    const onData = (data: Buffer): void => {
      seen += data.toString('latin1');
      if (!seen.includes(text)) return;
      socket.off('data', onData);
      resolve(seen);
    };
    socket.on('data', onData);
  });
}

describe('a serial client (server=off)', () => {
  test('connects out at open; output and input flow both ways', async () => {
    const path = tmp.path('listener.sock');
    const listener = await Listener.listen(path);
    const dev = await open(`unix:${path}`);
    const input = new InputLog(dev);
    assert.equal(dev.address, `unix:${path}`);
    await dev.ready();
    const peer = await listener.next();
    dev.write(new TextEncoder().encode('login: '));
    assert.equal(await readUntil(peer, 'login: '), 'login: ');
    peer.write('root\r');
    await input.until('root\r');
    assert.equal(dev.stats().attached, true);
    await dev.close();
    peer.destroy();
    await listener.close();
  });

  test('nobody listening and no reconnect: open fails and says how to listen instead', async () => {
    const path = tmp.path('nobody.sock');
    await assert.rejects(
      open(`unix:${path}`),
      new RegExp(`cannot connect serial to unix:${path}: .*ENOENT.*add ,server=on to listen`),
    );
  });

  test('reconnect: opens with nobody listening, connects when a listener comes and again after it drops', async () => {
    const path = tmp.path('later.sock');
    const dev = await open(`unix:${path},reconnect-ms=20`);
    const events = new EventLog(dev);
    await dev.ready(); // the guest does not wait for the peer
    assert.equal(dev.stats().attached, false);

    const listener = await Listener.listen(path);
    const first = await listener.next();
    await events.next('opened');
    first.destroy();
    await events.next('closed');
    const second = await listener.next();
    await events.next('opened');
    dev.write(new TextEncoder().encode('still here\n'));
    assert.equal(await readUntil(second, 'still here\n'), 'still here\n');
    assert.equal(dev.stats().attaches, 2);
    await dev.close();
    second.destroy();
    await listener.close();
  });
});
