// The main channel: a 64-byte handshake, then control frames in both directions.
// Reading is bounded: a frame longer than MAX_FRAME_PAYLOAD ends the connection.

import type { Socket } from 'node:net';
import {
  FRAME_HEADER_SIZE,
  FRAME_MAGIC,
  FRAME_TYPE_MAX,
  FrameType,
  HANDSHAKE_SIZE,
  HEARTBEAT_MS,
  MAX_FRAME_PAYLOAD,
  ProtocolError,
  decodeHandshake,
  encodeFrame,
  type Handshake,
} from './protocol.js';

export interface Frame {
  type: FrameType;
  payload: Record<string, unknown>;
}

/**
 * Wraps a connected socket. `onHandshake` sees the peer's handshake (if `expectHandshake`),
 * `onFrame` every frame, `onError` the first protocol or socket error (once).
 */
export class ControlChannel {
  private buf: Buffer = Buffer.alloc(0);
  private handshakeDone: boolean;
  private failed = false;
  onFrame: (f: Frame) => void = () => {};
  onHandshake: (h: Handshake) => void = () => {};
  onError: (e: Error) => void = () => {};
  onClose: () => void = () => {};
  /** when the peer last sent anything (ms, performance.now()) */
  lastHeard = performance.now();
  private watchdog: NodeJS.Timeout | undefined;

  constructor(
    readonly socket: Socket,
    expectHandshake: boolean,
  ) {
    this.handshakeDone = !expectHandshake;
    socket.on('data', (chunk: Buffer) => this.feed(chunk));
    socket.on('error', (e) => this.fail(e));
    socket.on('close', () => {
      this.stopHeartbeat();
      this.onClose();
    });
  }

  send(type: FrameType, payload: Record<string, unknown>): void {
    if (!this.socket.destroyed) this.socket.write(encodeFrame(type, payload));
  }

  close(): void {
    this.stopHeartbeat();
    this.socket.destroy();
  }

  private fail(e: Error): void {
    if (this.failed) return;
    this.failed = true;
    this.stopHeartbeat();
    this.onError(e);
    this.socket.destroy();
  }

  /**
   * Send heartbeats, and report `onStall` when the peer has been silent for `timeoutMs`.
   * A stopped or wedged peer process, or a link that dropped without a reset, ends here
   * instead of hanging the migration.
   */
  startHeartbeat(timeoutMs: number, onStall: (silentMs: number) => void): void {
    this.stopHeartbeat();
    this.lastHeard = performance.now();
    this.watchdog = setInterval(
      () => {
        this.send(FrameType.Heartbeat, {});
        const silent = performance.now() - this.lastHeard;
        if (silent > timeoutMs) {
          this.stopHeartbeat();
          onStall(Math.round(silent));
        }
      },
      Math.min(HEARTBEAT_MS, timeoutMs / 2),
    );
    this.watchdog.unref();
  }

  stopHeartbeat(): void {
    clearInterval(this.watchdog);
    this.watchdog = undefined;
  }

  private feed(chunk: Buffer): void {
    if (this.failed) return;
    this.lastHeard = performance.now();
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
    try {
      for (;;) {
        if (!this.handshakeDone) {
          if (this.buf.length < HANDSHAKE_SIZE) return;
          const h = decodeHandshake(this.buf.subarray(0, HANDSHAKE_SIZE));
          this.buf = this.buf.subarray(HANDSHAKE_SIZE);
          this.handshakeDone = true;
          this.onHandshake(h);
          if (this.failed) return;
          continue;
        }
        if (this.buf.length < FRAME_HEADER_SIZE) return;
        const magic = this.buf.readUInt32LE(0);
        if (magic !== FRAME_MAGIC)
          throw new ProtocolError('frame magic', magic, `expected ${FRAME_MAGIC}`);
        const type = this.buf.readUInt16LE(4);
        if (type < 1 || type > FRAME_TYPE_MAX) {
          throw new ProtocolError('frame type', type, `expected 1..${FRAME_TYPE_MAX}`);
        }
        const reserved = this.buf.readUInt16LE(6);
        if (reserved !== 0) throw new ProtocolError('frame reserved field', reserved, 'must be 0');
        const len = this.buf.readUInt32LE(8);
        if (len > MAX_FRAME_PAYLOAD) {
          throw new ProtocolError('frame length', len, `limit is ${MAX_FRAME_PAYLOAD}`);
        }
        if (this.buf.length < FRAME_HEADER_SIZE + len) return;
        const body = this.buf.subarray(FRAME_HEADER_SIZE, FRAME_HEADER_SIZE + len);
        this.buf = this.buf.subarray(FRAME_HEADER_SIZE + len);
        let payload: unknown;
        try {
          payload = JSON.parse(body.toString('utf8'));
        } catch {
          throw new ProtocolError('frame payload', type, 'not valid JSON');
        }
        if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
          throw new ProtocolError('frame payload', type, 'expected a JSON object');
        }
        if (type !== FrameType.Heartbeat) {
          this.onFrame({ type, payload: payload as Record<string, unknown> });
        }
        if (this.failed) return;
      }
    } catch (e) {
      this.fail(e as Error);
    }
  }
}
