// Channel binding: connections that do not belong to the migration in progress are dropped
// without affecting it: a second source while the destination is busy, multifd connections with
// a wrong session id, a duplicate or an out-of-range channel id, and a multifd handshake sent
// where no multifd channel is expected. The migration then completes byte-exact.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { LocalPair } from '../../src/harness/local-migration.js';
import { FaultProxy } from '../support/fault-proxy.js';
import {
  FrameType,
  MAIN_MAGIC,
  MULTIFD_MAGIC,
  PROTOCOL_VERSION,
  encodeHandshake,
} from '../../src/migration/protocol.js';

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('error', reject);
    s.once('connect', () => {
      s.on('error', () => {});
      resolve(s);
    });
  });
}

/** Resolves with what the peer sent before it closed the connection (or after 5 s). */
function untilClosed(s: Socket): Promise<Buffer> {
  return new Promise((resolve) => {
    const got: Buffer[] = [];
    s.on('data', (b: Buffer) => got.push(b));
    const done = (): void => resolve(Buffer.concat(got));
    s.once('close', done);
    setTimeout(() => {
      s.destroy();
      done();
    }, 5000).unref();
  });
}

test('connections that do not belong to the migration are dropped; it completes unharmed', async () => {
  const pair = await LocalPair.start({ ram: '32M', workload: 'stress:8', normalPageRatio: 0.5 });
  try {
    const direct = await pair.incomingUri();
    const destPort = Number(direct.split(':').pop());
    const proxy = await FaultProxy.start(destPort, null);
    await pair.configure(
      { multifd: true, 'x-verify-ram': true },
      {
        'multifd-channels': 2,
        'max-bandwidth': 8 * 1024 * 1024,
      },
    );
    await pair.source.qmp.execute('migrate', { uri: `tcp:127.0.0.1:${proxy.port}` });
    await pair.waitSource((i) => i.status === 'active' && proxy.upstreamPorts.length === 2);

    // A second source while the destination is busy: refused with a reason.
    const second = await open(destPort);
    second.write(
      encodeHandshake({
        magic: MAIN_MAGIC,
        version: PROTOCOL_VERSION,
        session: randomBytes(16),
        channel: 0xffffffff,
        channels: 1,
      }),
    );
    const reply = await untilClosed(second);
    assert.equal(reply.readUInt16LE(4), FrameType.Error);
    assert.match(reply.subarray(12).toString(), /busy/);

    // Multifd connections with a wrong session, a duplicate id, an out-of-range id. Once a
    // channel is bound its listener is closed, so they are refused, or dropped if they race it.
    const [p0, p1] = proxy.upstreamPorts;
    for (const [port, channel] of [
      [p0, 0],
      [p1, 1],
      [p0, 99],
    ] as const) {
      let s: Socket;
      try {
        s = await open(port);
      } catch (e) {
        assert.equal((e as NodeJS.ErrnoException).code, 'ECONNREFUSED');
        continue;
      }
      s.write(
        encodeHandshake({
          magic: MULTIFD_MAGIC,
          version: PROTOCOL_VERSION,
          session: randomBytes(16),
          channel,
          channels: 2,
        }),
      );
      await untilClosed(s);
    }

    // A multifd handshake on the main port, where no multifd channel is expected.
    const stray = await open(destPort);
    stray.write(
      encodeHandshake({
        magic: MULTIFD_MAGIC,
        version: PROTOCOL_VERSION,
        session: randomBytes(16),
        channel: 0,
        channels: 2,
      }),
    );
    await untilClosed(stray);

    await pair.source.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 0 });
    const end = await pair.waitFinished();
    assert.equal(end.status, 'completed', String(end['error-desc']));
    assert.equal((end.livemig as { verify?: string }).verify, 'ok');
    const logged = pair.dest.stderr.join('');
    assert.match(logged, /busy/);
    assert.match(logged, /bad main channel magic/);
    await proxy.close();
  } finally {
    await pair.close();
  }
});
