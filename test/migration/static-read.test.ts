// An accepted TCP socket moved to a Socket that reads into one reused buffer: every byte
// arrives, in order, in that buffer; returning false holds the buffer until resume(); a TLS
// socket is left alone.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import tls from 'node:tls';
import { createHash, randomBytes } from 'node:crypto';
import { rewrapForStaticReads } from '../../src/migration/destination/static-read.js';

function listen(onSocket: (s: net.Socket) => void): Promise<net.Server> {
  return new Promise((resolve) => {
    const server = net.createServer({ pauseOnConnect: true }, onSocket);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

test('static reads: all bytes, in order, in the one buffer; false pauses until resume()', async () => {
  const payload = randomBytes(8 * 1024 * 1024);
  const readBuf = Buffer.alloc(64 * 1024);
  const hash = createHash('sha256');
  let bytes = 0;
  let reads = 0;
  let otherBuffer = false;
  let paused = 0;
  const done = new Promise<void>((resolve, reject) => {
    void listen((socket) => {
      const s = rewrapForStaticReads(socket, readBuf, (sock, n, buf) => {
        if (buf.buffer !== readBuf.buffer) otherBuffer = true;
        reads++;
        // Every 10th read: hold the buffer for a moment; the data must still be there after.
        if (reads % 10 === 0) {
          const copy = Buffer.from(buf.subarray(0, n));
          paused++;
          sock.pause();
          setTimeout(() => {
            assert.ok(copy.equals(buf.subarray(0, n)), 'the held buffer was not overwritten');
            hash.update(buf.subarray(0, n));
            bytes += n;
            sock.resume();
          }, 2);
          return false;
        }
        hash.update(buf.subarray(0, n));
        bytes += n;
        return true;
      });
      if (!s) return reject(new Error('a plain TCP socket was not moved'));
      s.on('error', reject);
      s.on('close', () => resolve());
      s.resume();
    }).then((server) => {
      const { port } = server.address() as net.AddressInfo;
      const c = net.connect(port, '127.0.0.1', () => c.end(payload));
      c.on('close', () => server.close());
    });
  });
  await done;
  assert.equal(bytes, payload.length);
  assert.equal(hash.digest('hex'), createHash('sha256').update(payload).digest('hex'));
  assert.equal(otherBuffer, false, 'every read landed in the given buffer');
  assert.ok(paused > 0, 'the pause path was exercised');
});

test('static reads: a TLS socket is not moved (its handle is the TLS layer)', async () => {
  const server = await listen(() => {});
  const { port } = server.address() as net.AddressInfo;
  const raw = net.connect(port, '127.0.0.1');
  await new Promise((r) => raw.once('connect', r));
  const tlsSocket = new tls.TLSSocket(raw);
  assert.equal(
    rewrapForStaticReads(tlsSocket, Buffer.alloc(16), () => true),
    null,
  );
  tlsSocket.destroy();
  raw.destroy();
  server.close();
});
