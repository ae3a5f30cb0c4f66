// The wire protocol: layouts, limits and the checks a receiver makes before touching RAM.
// docs/protocol.md is the prose form of this file; keep them in step.
//
// All integers are little-endian. Every connection starts with a 64-byte handshake. The main
// channel then carries length-prefixed control frames (JSON payloads, bounded); each multifd
// channel carries binary packets: a fixed header, the normal pages' offsets, the zero pages as
// ranges, then the normal pages.

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;
/** 4 MiB packets at most: the DSA batch limit, and QEMU's largest multifd-packet-size. */
export const MAX_PACKET_PAGES = 1024;
export const PROTOCOL_VERSION = 6;

// ---- Handshake (both channel kinds) -------------------------------------------------------
export const HANDSHAKE_SIZE = 64;
export const MAIN_MAGIC = 0x4c4d4947; // 'LMIG'
export const MULTIFD_MAGIC = 0x4c4d4644; // 'LMFD'
export const SESSION_ID_BYTES = 16;
/** byte offsets inside the handshake */
export const HS = { magic: 0, version: 4, session: 8, channel: 24, channels: 28 } as const;

export interface Handshake {
  magic: number;
  version: number;
  session: Buffer; // 16 bytes
  channel: number; // 0xffffffff for the main channel
  channels: number;
}

export function encodeHandshake(h: Handshake): Buffer {
  const b = Buffer.alloc(HANDSHAKE_SIZE);
  b.writeUInt32LE(h.magic, HS.magic);
  b.writeUInt32LE(h.version, HS.version);
  h.session.copy(b, HS.session, 0, SESSION_ID_BYTES);
  b.writeUInt32LE(h.channel >>> 0, HS.channel);
  b.writeUInt32LE(h.channels, HS.channels);
  return b;
}

export function decodeHandshake(b: Buffer): Handshake {
  if (b.length < HANDSHAKE_SIZE) throw new ProtocolError('handshake', b.length, 'truncated');
  return {
    magic: b.readUInt32LE(HS.magic),
    version: b.readUInt32LE(HS.version),
    session: Buffer.from(b.subarray(HS.session, HS.session + SESSION_ID_BYTES)),
    channel: b.readUInt32LE(HS.channel),
    channels: b.readUInt32LE(HS.channels),
  };
}

// ---- Main channel control frames ------------------------------------------------------------
export const FRAME_HEADER_SIZE = 12;
export const FRAME_MAGIC = 0x4c4d4346; // 'LMCF'
/** Control payloads are small JSON objects; bounded so a peer cannot make us buffer much. */
export const MAX_FRAME_PAYLOAD = 64 * 1024;

export const enum FrameType {
  Hello = 1,
  HelloReply = 2,
  Complete = 3,
  CompleteAck = 4,
  Digest = 5,
  VerifyResult = 6,
  Error = 7,
  Cancel = 8,
  /** both directions, every HEARTBEAT_MS: a peer silent for x-stall-timeout has stalled */
  Heartbeat = 9,
  /** source to destination, after the vCPU stopped: the machine's binary device state */
  DeviceState = 10,
  /**
   * destination to source: it has every page, the device state and (x-verify-ram) the source's
   * verdict, and runs the guest once released. Until the source has it, the source's guest is
   * the one that runs if anything fails (docs/reliability.md, "Who runs the guest").
   */
  Ready = 11,
  /** source to destination, on Ready: the source gives the guest up; the destination runs it */
  Release = 12,
  /**
   * destination to source, `{ pass }`: every channel has applied pass `pass` (its pages are in
   * guest RAM). The source stops its guest only once the passes it sent are applied, so that
   * the downtime does not include the destination catching up.
   */
  PassApplied = 13,
}
export const FRAME_TYPE_MAX = 13;
/** Frames whose payload is raw bytes rather than a JSON object. */
export const BINARY_FRAMES: ReadonlySet<number> = new Set([FrameType.DeviceState]);
/**
 * A DeviceState payload's limit: a PC's state without RAM is ~1.3 MB (CPU, devices, 256 KiB of
 * VGA memory); the limit leaves room for larger VGA memory without letting a peer make the
 * destination buffer without bound.
 */
export const MAX_DEVICE_STATE_BYTES = 32 * 1024 * 1024;
export const HEARTBEAT_MS = 1000;
/** bounds of the stall timeout a source may ask for in Hello */
export const MIN_STALL_TIMEOUT_MS = 100;
export const MAX_STALL_TIMEOUT_MS = 3_600_000;

export function encodeFrame(type: FrameType, payload: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(payload), 'utf8');
  if (body.length > MAX_FRAME_PAYLOAD) throw new Error(`control frame too large: ${body.length}`);
  const b = Buffer.alloc(FRAME_HEADER_SIZE + body.length);
  writeFrameHeader(b, type, body.length);
  body.copy(b, FRAME_HEADER_SIZE);
  return b;
}

/** The header of a binary frame; its payload follows as its own write (no copy of it). */
export function encodeBinaryFrameHeader(type: FrameType, length: number): Buffer {
  if (!BINARY_FRAMES.has(type)) throw new Error(`frame type ${type} carries JSON, not bytes`);
  if (length > MAX_DEVICE_STATE_BYTES) throw new Error(`binary frame too large: ${length}`);
  const b = Buffer.alloc(FRAME_HEADER_SIZE);
  writeFrameHeader(b, type, length);
  return b;
}

/**
 * A DeviceState payload: u32 length of a JSON object describing the state (the machine's own
 * fields: for a PC its emulator build, size and SHA-256), the JSON, then the state's bytes.
 * The description travels with the bytes so that a destination can check and load them as
 * soon as they arrive, while the final pass is still on its way.
 */
export const DEVICE_STATE_DESC_LIMIT = 64 * 1024;

export function encodeDeviceState(desc: Record<string, unknown>, state: Uint8Array): Buffer[] {
  const json = Buffer.from(JSON.stringify(desc), 'utf8');
  if (json.length > DEVICE_STATE_DESC_LIMIT) {
    throw new Error(`device state description too large: ${json.length}`);
  }
  const head = Buffer.alloc(4);
  head.writeUInt32LE(json.length, 0);
  return [head, json, Buffer.from(state.buffer, state.byteOffset, state.length)];
}

export function decodeDeviceState(payload: Buffer): {
  desc: Record<string, unknown>;
  state: Buffer;
} {
  if (payload.length < 4) throw new ProtocolError('device state', payload.length, 'truncated');
  const len = payload.readUInt32LE(0);
  if (len > DEVICE_STATE_DESC_LIMIT || 4 + len > payload.length) {
    throw new ProtocolError(
      'device state description length',
      len,
      `limit is ${Math.min(DEVICE_STATE_DESC_LIMIT, payload.length - 4)}`,
    );
  }
  let desc: unknown;
  try {
    desc = JSON.parse(payload.subarray(4, 4 + len).toString('utf8'));
  } catch {
    throw new ProtocolError('device state description', len, 'not valid JSON');
  }
  if (typeof desc !== 'object' || desc === null || Array.isArray(desc)) {
    throw new ProtocolError('device state description', len, 'expected a JSON object');
  }
  return { desc: desc as Record<string, unknown>, state: payload.subarray(4 + len) };
}

/** The largest payload a frame of `type` may carry. */
export function framePayloadLimit(type: number): number {
  return BINARY_FRAMES.has(type) ? MAX_DEVICE_STATE_BYTES : MAX_FRAME_PAYLOAD;
}

function writeFrameHeader(b: Buffer, type: FrameType, length: number): void {
  b.writeUInt32LE(FRAME_MAGIC, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt16LE(0, 6);
  b.writeUInt32LE(length, 8);
}

// ---- Multifd packets --------------------------------------------------------------------------
/**
 * A page's entry in a packet's offset table: its u64 byte offset in the block, as the low and
 * high u32 words (the low one's bits as an int32) (pages < 2^32, so the high word is page >>> 20). Numbers, not PAGE_SHIFT, for
 * speed on the per-page path (see segmentOf in src/ram/layout.ts).
 */
export function offsetLo(page: number): number {
  // As an int32 (negative from 2 GiB on): a Uint32Array store takes the same bits, and V8 keeps
  // int32 arithmetic in compiled code where `>>> 0` past 2^31 would throw it away mid-migration.
  return (page & 0xfffff) << 12;
}

export function offsetHi(page: number): number {
  return page >>> 20;
}

export const PACKET_MAGIC = 0x4c4d5041; // 'LMPA'
export const PACKET_HEADER_SIZE = 32;
export const OFFSET_ENTRY_SIZE = 8;
/**
 * A zero range's entry (protocol 4): u32 first page, u32 page count, in the block. A run of zero
 * pages costs 8 bytes whatever its length (an all-zero packet: one range instead of 128
 * offsets), and a lone zero page costs what its offset did.
 */
export const ZERO_RANGE_SIZE = 8;
export const FLAG_SYNC = 1;
export const KNOWN_FLAGS = FLAG_SYNC;
/** u32 word indices inside the packet header */
export const PH = {
  magic: 0,
  flags: 1, // u16 flags | u16 zero ranges (the number of zero-range entries)
  block: 2,
  normal: 3,
  zero: 4,
  pass: 5,
  packetNumLo: 6,
  packetNumHi: 7,
} as const;

/** The zero-range count lives in the high half of the flags word. */
export const ZERO_RANGES_SHIFT = 16;

/**
 * Byte size of a whole packet's header (fixed part, offsets, zero ranges) for `entries` offsets
 * and ranges together; `packetHeaderBytes(pages)` is the most a packet of `pages` pages needs.
 */
export function packetHeaderBytes(entries: number): number {
  return PACKET_HEADER_SIZE + OFFSET_ENTRY_SIZE * entries;
}

/** A receiver-side error naming the field, its value and why it was refused. */
export class ProtocolError extends Error {
  constructor(
    readonly field: string,
    readonly value: number | string,
    reason: string,
  ) {
    super(
      `invalid ${field} ${typeof value === 'number' ? value : JSON.stringify(value)}: ${reason}`,
    );
    this.name = 'ProtocolError';
  }
}

/** The session id as text, for logs and JSON. */
export function sessionHex(session: Buffer): string {
  return session.toString('hex');
}
