// The main channel: a 64-byte handshake, then control frames in both directions.
// Reading is bounded: a frame longer than its type allows (framePayloadLimit) ends the connection.

import type { Socket } from 'node:net';
import {
  FRAME_HEADER_SIZE,
  FRAME_MAGIC,
  FRAME_TYPE_MAX,
  FrameType,
  HANDSHAKE_SIZE,
  HEARTBEAT_MS,
  BINARY_FRAMES,
  ProtocolError,
  decodeHandshake,
  encodeBinaryFrameHeader,
  encodeFrame,
  framePayloadLimit,
  type Handshake,
} from './protocol.js';

export interface Frame {
  type: FrameType;
  /** the JSON object of a JSON frame; {} for a binary frame */
  payload: Record<string, unknown>;
  /** the bytes of a binary frame (BINARY_FRAMES) */
  data?: Buffer;
}

/**
 * Wraps a connected socket. `onHandshake` sees the peer's handshake (if `expectHandshake`),
 * `onFrame` every frame, `onError` the first protocol or socket error (once).
 */
export class ControlChannel {
  /** bytes received and not yet consumed, in arrival order */
  private chunks: Buffer[] = [];
  private buffered = 0;
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

  /** A binary frame of these parts: the header, then the parts as they are (not copied). */
  sendBinary(type: FrameType, parts: Uint8Array[]): number {
    if (this.socket.destroyed) return 0;
    const length = parts.reduce((n, p) => n + p.length, 0);
    this.socket.write(encodeBinaryFrameHeader(type, length));
    for (const p of parts) this.socket.write(p);
    return length;
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

  /** The first `n` buffered bytes as one Buffer (n <= buffered), without consuming them. */
  private peek(n: number): Buffer {
    if (this.chunks[0].length < n) {
      // Join only when a frame spans chunks: a large frame is joined once, when complete.
      const joined = Buffer.concat(this.chunks, this.buffered);
      this.chunks = [joined];
    }
    return this.chunks[0].subarray(0, n);
  }

  private consume(n: number): void {
    this.buffered -= n;
    const first = this.chunks[0];
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
  }

  private feed(chunk: Buffer): void {
    if (this.failed) return;
    this.lastHeard = performance.now();
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    try {
      for (;;) {
        if (!this.handshakeDone) {
          if (this.buffered < HANDSHAKE_SIZE) return;
          const h = decodeHandshake(this.peek(HANDSHAKE_SIZE));
          this.consume(HANDSHAKE_SIZE);
          this.handshakeDone = true;
          this.onHandshake(h);
          if (this.failed) return;
          continue;
        }
        if (this.buffered < FRAME_HEADER_SIZE) return;
        const header = this.peek(FRAME_HEADER_SIZE);
        const magic = header.readUInt32LE(0);
        if (magic !== FRAME_MAGIC)
          throw new ProtocolError('frame magic', magic, `expected ${FRAME_MAGIC}`);
        const type = header.readUInt16LE(4);
        if (type < 1 || type > FRAME_TYPE_MAX) {
          throw new ProtocolError('frame type', type, `expected 1..${FRAME_TYPE_MAX}`);
        }
        const reserved = header.readUInt16LE(6);
        if (reserved !== 0) throw new ProtocolError('frame reserved field', reserved, 'must be 0');
        const len = header.readUInt32LE(8);
        const limit = framePayloadLimit(type);
        if (len > limit) throw new ProtocolError('frame length', len, `limit is ${limit}`);
        if (this.buffered < FRAME_HEADER_SIZE + len) return;
        const body = this.peek(FRAME_HEADER_SIZE + len).subarray(FRAME_HEADER_SIZE);
        this.consume(FRAME_HEADER_SIZE + len);
        if (BINARY_FRAMES.has(type)) {
          this.onFrame({ type, payload: {}, data: body });
        } else {
          const payload = parseJsonPayload(type, body);
          if (type !== FrameType.Heartbeat) this.onFrame({ type, payload });
        }
        if (this.failed) return;
      }
    } catch (e) {
      this.fail(e as Error);
    }
  }
}

function parseJsonPayload(type: number, body: Buffer): Record<string, unknown> {
  let payload: unknown;
  try {
    payload = JSON.parse(body.toString('utf8'));
  } catch {
    throw new ProtocolError('frame payload', type, 'not valid JSON');
  }
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload)) {
    throw new ProtocolError('frame payload', type, 'expected a JSON object');
  }
  return payload as Record<string, unknown>;
}
