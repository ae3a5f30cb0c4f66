// The wire protocol: layouts, limits and the checks a receiver makes before touching RAM.
// docs/protocol.md is the prose form of this file; keep them in step.
//
// All integers are little-endian. Every connection starts with a 64-byte handshake. The main
// channel then carries length-prefixed control frames (JSON payloads, bounded); each multifd
// channel carries binary packets: a fixed header, an offset table, then the normal pages.

export const PAGE_SIZE = 4096;
export const PAGE_SHIFT = 12;
/** 4 MiB packets at most: the DSA batch limit, and QEMU's largest multifd-packet-size. */
export const MAX_PACKET_PAGES = 1024;
export const PROTOCOL_VERSION = 1;

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
}
export const FRAME_TYPE_MAX = 9;
export const HEARTBEAT_MS = 1000;
/** bounds of the stall timeout a source may ask for in Hello */
export const MIN_STALL_TIMEOUT_MS = 100;
export const MAX_STALL_TIMEOUT_MS = 3_600_000;

export function encodeFrame(type: FrameType, payload: unknown): Buffer {
  const body = Buffer.from(JSON.stringify(payload), 'utf8');
  if (body.length > MAX_FRAME_PAYLOAD) throw new Error(`control frame too large: ${body.length}`);
  const b = Buffer.alloc(FRAME_HEADER_SIZE + body.length);
  b.writeUInt32LE(FRAME_MAGIC, 0);
  b.writeUInt16LE(type, 4);
  b.writeUInt16LE(0, 6);
  b.writeUInt32LE(body.length, 8);
  body.copy(b, FRAME_HEADER_SIZE);
  return b;
}

// ---- Multifd packets --------------------------------------------------------------------------
export const PACKET_MAGIC = 0x4c4d5041; // 'LMPA'
export const PACKET_HEADER_SIZE = 32;
export const OFFSET_ENTRY_SIZE = 8;
export const FLAG_SYNC = 1;
export const KNOWN_FLAGS = FLAG_SYNC;
/** u32 word indices inside the packet header */
export const PH = {
  magic: 0,
  flags: 1, // u16 flags | u16 reserved (must be 0)
  block: 2,
  normal: 3,
  zero: 4,
  pass: 5,
  packetNumLo: 6,
  packetNumHi: 7,
} as const;

/** Byte size of a whole packet's header (fixed part + offsets) for `pages` pages. */
export function packetHeaderBytes(pages: number): number {
  return PACKET_HEADER_SIZE + OFFSET_ENTRY_SIZE * pages;
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
