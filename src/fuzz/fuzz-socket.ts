// Fuzzing a real destination process over real sockets: random and mutated main-channel
// streams, and valid sessions whose multifd channels then carry mutated packet streams.
// After every case the destination must still serve QMP and be ready for the next source.

import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import type { QmpClient } from '../control/qmp-client.js';
import {
  FrameType,
  MAIN_MAGIC,
  MULTIFD_MAGIC,
  PAGE_SIZE,
  PROTOCOL_VERSION,
  encodeFrame,
  encodeHandshake,
} from '../migration/protocol.js';
import { Rng, controlStream, mutate, validStream } from './streams.js';
import type { FuzzReport } from './fuzz-parser.js';

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, noDelay: true });
    s.once('error', reject);
    s.once('connect', () => {
      s.off('error', reject);
      s.on('error', () => {});
      resolve(s);
    });
  });
}

/** Read the HelloReply's ports from a main socket (or give up after a short while). */
function helloReply(s: Socket): Promise<number[] | null> {
  return new Promise((resolve) => {
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => resolve(null), 3000);
    s.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length < 12) return;
      const len = buf.readUInt32LE(8);
      if (buf.length < 12 + len) return;
      clearTimeout(timer);
      const type = buf.readUInt16LE(4);
      const payload = JSON.parse(buf.subarray(12, 12 + len).toString()) as { ports?: number[] };
      resolve(type === FrameType.HelloReply ? (payload.ports ?? null) : null);
    });
    s.once('close', () => resolve(null));
  });
}

async function destIdle(qmp: QmpClient): Promise<void> {
  for (let i = 0; i < 500; i++) {
    const yank = await qmp.execute<unknown[]>('query-yank');
    if (yank.length === 0) return;
    await sleep(10);
  }
  throw new Error('destination stayed busy after the case ended');
}

export async function fuzzSockets(
  port: number,
  qmp: QmpClient,
  ramBytes: number,
  cases: number,
  seed = 3,
): Promise<FuzzReport> {
  const rng = new Rng(seed);
  const report: FuzzReport = { cases: 0, rejected: 0, accepted: 0, failures: [] };
  const pages = ramBytes / PAGE_SIZE;
  for (let c = 0; c < cases; c++) {
    const r = new Rng(rng.next());
    const session = randomBytes(16);
    const main = await open(port);
    const handshake = encodeHandshake({
      magic: MAIN_MAGIC,
      version: PROTOCOL_VERSION,
      session,
      channel: 0xffffffff,
      channels: 1,
    });
    const kind = r.int(3);
    if (kind === 0) {
      // Noise or damaged control traffic on the main channel.
      main.write(mutate(r, Buffer.concat([handshake, controlStream(r)])));
    } else {
      main.write(handshake);
      const hello = {
        version: PROTOCOL_VERSION,
        session: session.toString('hex'),
        channels: 1,
        pageSize: PAGE_SIZE,
        packetPages: 64,
        verify: false,
        stallTimeoutMs: 2000,
        blocks: [{ id: 0, name: 'pc.ram', size: ramBytes }],
        machine: { type: 'synthetic', ramBytes },
      };
      const replied = helloReply(main);
      main.write(encodeFrame(FrameType.Hello, hello));
      const ports = await replied;
      if (ports) {
        const ch = await open(ports[0]);
        const hs = encodeHandshake({
          magic: MULTIFD_MAGIC,
          version: PROTOCOL_VERSION,
          session,
          channel: 0,
          channels: 1,
        });
        const stream = validStream(r, { blocks: [pages], packetPages: 64 });
        ch.write(
          kind === 1
            ? Buffer.concat([hs, mutate(r, stream)])
            : mutate(r, Buffer.concat([hs, stream])),
        );
        await sleep(20);
        ch.destroy();
      }
    }
    await sleep(10);
    main.destroy();
    try {
      await destIdle(qmp);
      const info = await qmp.execute<{ status?: string }>('query-migrate');
      if (info.status === 'failed' || info.status === 'cancelled') report.rejected++;
      else report.accepted++;
    } catch (e) {
      report.failures.push(`case ${c}: ${(e as Error).message}`);
      break;
    }
    report.cases++;
  }
  return report;
}
