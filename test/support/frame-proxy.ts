// A main-channel proxy that can rewrite the source's control frames on their way to the
// destination: what a source with another emulator build, or a damaged device state, looks
// like to a real destination. Multifd channels connect to the destination directly (the ports
// in HelloReply are the destination's own).

import net from 'node:net';
import { FRAME_HEADER_SIZE, HANDSHAKE_SIZE } from '../../src/migration/protocol.js';

/**
 * Returns the frame's new payload (or the same one); null drops the link there: the frame is
 * not forwarded and both connections are closed, as a link that fails would close them.
 */
export type FrameRewrite = (type: number, payload: Buffer) => Buffer | null;

export class FrameProxy {
  readonly server: net.Server;
  /** frame types seen going to the destination, in order */
  readonly seen: number[] = [];
  /** a rewrite dropped the link */
  dropped = false;
  private readonly sockets = new Set<net.Socket>();

  private constructor(target: number, rewrite: FrameRewrite) {
    this.server = net.createServer((client) => {
      const upstream = net.connect({ host: '127.0.0.1', port: target });
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('error', () => {});
        s.on('close', () => {
          this.sockets.delete(s);
          client.destroy();
          upstream.destroy();
        });
      }
      upstream.pipe(client);
      let buf = Buffer.alloc(0);
      let handshake = true;
      client.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        for (;;) {
          if (handshake) {
            if (buf.length < HANDSHAKE_SIZE) return;
            upstream.write(buf.subarray(0, HANDSHAKE_SIZE));
            buf = buf.subarray(HANDSHAKE_SIZE);
            handshake = false;
            continue;
          }
          if (buf.length < FRAME_HEADER_SIZE) return;
          const len = buf.readUInt32LE(8);
          if (buf.length < FRAME_HEADER_SIZE + len) return;
          const type = buf.readUInt16LE(4);
          this.seen.push(type);
          const payload = rewrite(type, buf.subarray(FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + len));
          if (payload === null) {
            this.dropped = true;
            client.destroy();
            upstream.destroy();
            return;
          }
          const header = Buffer.from(buf.subarray(0, FRAME_HEADER_SIZE));
          header.writeUInt32LE(payload.length, 8);
          upstream.write(Buffer.concat([header, payload]));
          buf = buf.subarray(FRAME_HEADER_SIZE + len);
        }
      });
    });
  }

  static async start(targetPort: number, rewrite: FrameRewrite): Promise<FrameProxy> {
    const p = new FrameProxy(targetPort, rewrite);
    await new Promise<void>((r) => p.server.listen(0, '127.0.0.1', r));
    return p;
  }

  get uri(): string {
    return `tcp:127.0.0.1:${(this.server.address() as net.AddressInfo).port}`;
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
  }
}

/** Drop the link when the source sends a frame of `type` (that frame is lost). */
export function dropAt(type: number): FrameRewrite {
  return (t, payload) => (t === type ? null : payload);
}

/** A rewrite of one frame type's JSON payload. */
export function rewriteJson(
  type: number,
  f: (payload: Record<string, unknown>) => void,
): FrameRewrite {
  return (t, payload) => {
    if (t !== type) return payload;
    const json = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    f(json);
    return Buffer.from(JSON.stringify(json), 'utf8');
  };
}
