// A TCP proxy between a source and a destination that injects network faults on any channel:
// a reset, a stall (stops forwarding, keeps the connection open) or a half-close. It speaks
// just enough of the protocol to put itself in front of the multifd channels too: it rewrites
// the ports in HelloReply to ports of its own.

import net from 'node:net';
import { FRAME_HEADER_SIZE, FrameType, encodeFrame } from '../../src/migration/protocol.js';

export type Fault = 'reset' | 'stall' | 'half-close';

export interface FaultPlan {
  fault: Fault;
  /** 'main' or a multifd channel index */
  channel: 'main' | number;
  /**
   * When to inject: once this many bytes went source → destination on that channel, this many
   * ms after the channel connected ({ ms }), or when the main channel carries Complete.
   */
  after: number | { ms: number } | 'complete';
}

export class FaultProxy {
  readonly server: net.Server;
  injected = false;
  /** the destination's own multifd ports, as its HelloReply announced them */
  upstreamPorts: number[] = [];
  private readonly sockets = new Set<net.Socket>();
  private readonly servers: net.Server[] = [];

  private constructor(
    target: number,
    private readonly plan: FaultPlan | null,
  ) {
    this.server = net.createServer((s) => this.pipe(s, target, 'main'));
  }

  static async start(targetPort: number, plan: FaultPlan | null): Promise<FaultProxy> {
    const p = new FaultProxy(targetPort, plan);
    await new Promise<void>((r) => p.server.listen(0, '127.0.0.1', r));
    return p;
  }

  get port(): number {
    return (this.server.address() as net.AddressInfo).port;
  }

  private pipe(client: net.Socket, port: number, channel: 'main' | number): void {
    const upstream = net.connect({ host: '127.0.0.1', port });
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    const mine = this.plan && this.plan.channel === channel;
    let sent = 0;
    let stalled = false;
    let tail: Buffer = Buffer.alloc(0);
    const inject = (): void => {
      if (this.injected) return;
      this.injected = true;
      switch (this.plan!.fault) {
        case 'reset':
          client.resetAndDestroy();
          upstream.resetAndDestroy();
          return;
        case 'stall':
          stalled = true;
          client.pause();
          upstream.pause();
          return;
        case 'half-close':
          upstream.end();
          return;
      }
    };
    const after = this.plan?.after;
    if (mine && typeof after === 'object') {
      const timer = setTimeout(inject, after.ms);
      client.once('close', () => clearTimeout(timer));
    }
    // source -> destination
    client.on('data', (chunk: Buffer) => {
      if (stalled) return;
      if (mine && this.plan!.after === 'complete') {
        const seen = Buffer.concat([tail, chunk]);
        if (hasFrame(seen, FrameType.Complete)) return inject();
        tail = seen.subarray(Math.max(0, seen.length - 64));
      }
      if (mine && typeof after === 'number' && sent + chunk.length > after) {
        const n = after - sent;
        if (n > 0) upstream.write(chunk.subarray(0, n));
        sent += chunk.length;
        return inject();
      }
      sent += chunk.length;
      if (this.injected && this.plan?.fault === 'half-close' && mine) return;
      upstream.write(chunk);
    });
    // destination -> source, rewriting HelloReply's ports on the main channel
    let back: Buffer = Buffer.alloc(0);
    upstream.on('data', (chunk: Buffer) => {
      if (stalled) return;
      if (channel !== 'main') {
        client.write(chunk);
        return;
      }
      back = Buffer.concat([back, chunk]);
      void this.forwardFrames(
        client,
        () => back,
        (b) => (back = b),
      );
    });
  }

  private async forwardFrames(
    client: net.Socket,
    get: () => Buffer,
    set: (b: Buffer) => void,
  ): Promise<void> {
    for (;;) {
      const buf = get();
      if (buf.length < FRAME_HEADER_SIZE) return;
      const len = buf.readUInt32LE(8);
      if (buf.length < FRAME_HEADER_SIZE + len) return;
      const type = buf.readUInt16LE(4);
      const frame = buf.subarray(0, FRAME_HEADER_SIZE + len);
      set(buf.subarray(FRAME_HEADER_SIZE + len));
      if (type === FrameType.HelloReply) {
        const body = JSON.parse(frame.subarray(FRAME_HEADER_SIZE).toString()) as {
          ports: number[];
        };
        const ports: number[] = [];
        this.upstreamPorts = [...body.ports];
        for (let i = 0; i < body.ports.length; i++) {
          const target = body.ports[i];
          const srv = net.createServer((s) => this.pipe(s, target, i));
          await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
          this.servers.push(srv);
          ports.push((srv.address() as net.AddressInfo).port);
        }
        client.write(encodeFrame(FrameType.HelloReply, { ports }));
      } else {
        client.write(frame);
      }
    }
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    for (const srv of [this.server, ...this.servers]) srv.close();
  }
}

function hasFrame(buf: Buffer, type: FrameType): boolean {
  // A frame header: magic 'LMCF' then the type; scanning is enough for a test proxy.
  for (let i = 0; i + 6 <= buf.length; i++) {
    if (buf.readUInt32LE(i) === 0x4c4d4346 && buf.readUInt16LE(i + 4) === type) return true;
  }
  return false;
}
