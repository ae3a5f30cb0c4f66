// A main-channel proxy that can rewrite the control frames on their way, either way: what a
// source with another emulator build, or a damaged device state, looks like to a real
// destination, or a destination that never sends a frame, to a real source. Multifd channels
// connect to the destination directly (the ports in HelloReply are the destination's own).

import net from 'node:net';
import { FRAME_HEADER_SIZE, HANDSHAKE_SIZE } from '../../src/migration/protocol.js';

/**
 * Returns the frame's new payload (or the same one); null drops the link there: the frame is
 * not forwarded and both connections are closed, as a link that fails would close them.
 * 'withhold' keeps only that frame back: the link and every other frame go on, as a peer that
 * never sends it would look.
 */
export type FrameRewrite = (type: number, payload: Buffer) => Buffer | null | 'withhold';

export class FrameProxy {
  readonly server: net.Server;
  /** frame types seen going to the destination, in order */
  readonly seen: number[] = [];
  /** frame types seen coming back from the destination, in order */
  readonly seenBack: number[] = [];
  /** a rewrite dropped the link */
  dropped = false;
  private readonly sockets = new Set<net.Socket>();

  private constructor(target: number, toDestination: FrameRewrite, toSource: FrameRewrite) {
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
      const dropLink = (): void => {
        this.dropped = true;
        client.destroy();
        upstream.destroy();
      };
      // Only the source sends a handshake; the destination answers with frames alone.
      forwardFrames(client, upstream, HANDSHAKE_SIZE, toDestination, this.seen, dropLink);
      forwardFrames(upstream, client, 0, toSource, this.seenBack, dropLink);
    });
  }

  /** `toSource` rewrites the destination's frames on their way back (default: none). */
  static async start(
    targetPort: number,
    rewrite: FrameRewrite,
    toSource: FrameRewrite = (_t, payload) => payload,
  ): Promise<FrameProxy> {
    const p = new FrameProxy(targetPort, rewrite, toSource);
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

/** Pass `handshake` bytes through as they are, then frame by frame through `rewrite`. */
function forwardFrames(
  from: net.Socket,
  to: net.Socket,
  handshake: number,
  rewrite: FrameRewrite,
  seen: number[],
  dropLink: () => void,
): void {
  let buf = Buffer.alloc(0);
  let before = handshake;
  from.on('data', (chunk: Buffer) => {
    buf = Buffer.concat([buf, chunk]);
    for (;;) {
      if (before > 0) {
        if (buf.length < before) return;
        to.write(buf.subarray(0, before));
        buf = buf.subarray(before);
        before = 0;
        continue;
      }
      if (buf.length < FRAME_HEADER_SIZE) return;
      const len = buf.readUInt32LE(8);
      if (buf.length < FRAME_HEADER_SIZE + len) return;
      const type = buf.readUInt16LE(4);
      seen.push(type);
      const payload = rewrite(type, buf.subarray(FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + len));
      if (payload === null) return dropLink();
      if (payload !== 'withhold') {
        const header = Buffer.from(buf.subarray(0, FRAME_HEADER_SIZE));
        header.writeUInt32LE(payload.length, 8);
        to.write(Buffer.concat([header, payload]));
      }
      buf = buf.subarray(FRAME_HEADER_SIZE + len);
    }
  });
}

/** Keep back every frame of `type` (the peer never seems to send it); all else goes on. */
export function withhold(type: number): FrameRewrite {
  return (t, payload) => (t === type ? 'withhold' : payload);
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
