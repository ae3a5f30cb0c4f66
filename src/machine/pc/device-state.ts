// The PC's device state: v86's saved state without RAM (RAM travels as pages), checked on the
// destination before any of it reaches the emulator. A state is tied to the exact v86 build, so
// the JSON part names it; its CRC-32 catches damage on the way (a checksum, not a seal: the
// frame that carries it could carry another; TLS is what protects the channel). CRC-32 rather
// than SHA-256: the check sits on the downtime's path, and on this state (about 1.3 MB) it costs
// a tenth of a millisecond against one to two.

import { crc32 } from 'node:zlib';
import { PAGE_SIZE } from '../../migration/protocol.js';
import type { V86Core } from './v86-internals.js';

/** v86's state header (src/state.js): four int32 words, then the JSON info block. */
const STATE_MAGIC = 0x86768676 | 0;
const STATE_VERSION = 6;
const STATE_HEADER_BYTES = 16;
const ZSTD_MAGIC = 0xfd2fb528;
/** Indices in v86's CPU state array (cpu.js get_state): RAM size, packed pages, page bitmap. */
const STATE_MEMORY_SIZE = 0;
const STATE_PACKED_MEMORY = 77;
const STATE_MEMORY_BITMAP = 78;

/** The JSON part, in Complete's `device`. */
export interface PcStateInfo {
  emulator: string;
  bytes: number;
  /** CRC-32 of the state, as 8 hex digits */
  crc32: string;
}

/** Save the CPU and devices, leaving RAM out (v86 would pack every non-zero page). */
export function saveDeviceState(core: V86Core, ramBytes: number): Uint8Array {
  const cpu = core.cpu;
  const bitmapBytes = Math.ceil(ramBytes / PAGE_SIZE / 8);
  const restore = override(cpu, 'pack_memory', () => ({
    bitmap: { get_buffer: () => new ArrayBuffer(bitmapBytes) },
    packed_memory: new Uint8Array(0),
  }));
  try {
    return new Uint8Array(core.save_state());
  } finally {
    restore();
  }
}

export function describeState(blob: Uint8Array, emulator: string): PcStateInfo {
  return { emulator, bytes: blob.length, crc32: crc32Hex(blob) };
}

/**
 * Every check a state passes before the emulator sees it. Throws an error that says what is
 * wrong: a state from another build, damaged bytes, a malformed layout, a state for another
 * RAM size, or one that carries RAM.
 */
export function checkDeviceState(
  info: unknown,
  blob: Uint8Array | null,
  expect: { emulator: string; ramBytes: number },
): void {
  if (typeof info !== 'object' || info === null) throw new Error('no PC state description');
  const i = info as Partial<PcStateInfo>;
  if (i.emulator !== expect.emulator) {
    throw new Error(
      `state from emulator ${String(i.emulator)}, this destination runs ${expect.emulator}`,
    );
  }
  if (!blob) throw new Error('the device state (DeviceState frame) never arrived');
  if (i.bytes !== blob.length) {
    throw new Error(`state is ${blob.length} bytes, the source sent ${String(i.bytes)}`);
  }
  const digest = crc32Hex(blob);
  if (i.crc32 !== digest) {
    throw new Error(`state damaged on the way: CRC-32 ${digest}, the source's ${String(i.crc32)}`);
  }
  checkLayout(blob, expect.ramBytes);
}

function checkLayout(blob: Uint8Array, ramBytes: number): void {
  if (blob.length < STATE_HEADER_BYTES) throw new Error(`state of ${blob.length} bytes: too short`);
  const dv = new DataView(blob.buffer, blob.byteOffset, blob.length);
  if (dv.getUint32(0, true) === ZSTD_MAGIC) throw new Error('compressed states are not accepted');
  const magic = dv.getInt32(0, true);
  if (magic !== STATE_MAGIC) throw new Error(`bad state magic 0x${(magic >>> 0).toString(16)}`);
  const version = dv.getInt32(4, true);
  if (version !== STATE_VERSION) {
    throw new Error(`state format version ${version}, expected ${STATE_VERSION}`);
  }
  const total = dv.getInt32(8, true);
  if (total !== blob.length)
    throw new Error(`state header says ${total} bytes, got ${blob.length}`);
  const infoLen = dv.getInt32(12, true);
  if (infoLen <= 0 || STATE_HEADER_BYTES + infoLen > blob.length) {
    throw new Error(`state info block of ${infoLen} bytes does not fit in ${blob.length}`);
  }
  let info: unknown;
  try {
    info = JSON.parse(
      Buffer.from(blob.buffer, blob.byteOffset + STATE_HEADER_BYTES, infoLen).toString('utf8'),
    );
  } catch {
    throw new Error('state info block is not valid JSON');
  }
  const { buffer_infos: buffers, state } = (info ?? {}) as {
    buffer_infos?: unknown;
    state?: unknown;
  };
  if (!Array.isArray(buffers) || !Array.isArray(state)) {
    throw new Error('state info block lacks buffer_infos or state');
  }
  const bufferStart = (STATE_HEADER_BYTES + infoLen + 3) & ~3;
  const lengths = buffers.map((b: unknown, n) => {
    const { offset, length } = (b ?? {}) as { offset?: unknown; length?: unknown };
    if (
      !Number.isInteger(offset) ||
      !Number.isInteger(length) ||
      (offset as number) < 0 ||
      (length as number) < 0 ||
      bufferStart + (offset as number) + (length as number) > blob.length
    ) {
      throw new Error(
        `state buffer ${n} (offset ${String(offset)}, ${String(length)} bytes) is out of bounds`,
      );
    }
    return length as number;
  });
  if (state[STATE_MEMORY_SIZE] !== ramBytes) {
    throw new Error(
      `state is for ${String(state[STATE_MEMORY_SIZE])} bytes of RAM, this PC has ${ramBytes}`,
    );
  }
  const packed = bufferLength(state[STATE_PACKED_MEMORY], lengths);
  const bitmap = bufferLength(state[STATE_MEMORY_BITMAP], lengths);
  if (packed !== 0 || bitmap !== Math.ceil(ramBytes / PAGE_SIZE / 8)) {
    throw new Error(
      'state carries RAM, or its RAM bitmap has the wrong size: RAM travels as pages',
    );
  }
}

function bufferLength(ref: unknown, lengths: number[]): number {
  const id = (ref as { buffer_id?: unknown } | null)?.buffer_id;
  if (!Number.isInteger(id) || (id as number) < 0 || (id as number) >= lengths.length) {
    throw new Error(`state refers to buffer ${String(id)}, which it does not have`);
  }
  return lengths[id as number];
}

/**
 * Restore the CPU and devices from a checked state, keeping the RAM already placed (v86 would
 * zero all of it first). Throws what v86 throws; the emulator is then in an unknown state and
 * must be replaced.
 */
export function restoreDeviceState(core: V86Core, blob: Uint8Array): void {
  // An exact, aligned copy: v86 reads the header as Int32 words of the buffer.
  const exact = blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.length) as ArrayBuffer;
  const restoreRam = override(core.cpu, 'unpack_memory', () => {});
  // No screen is attached in this thread: a full redraw would only feed one (in text mode, 2000
  // characters through cold code, about half of a restore's time).
  const restoreRedraw = override(core.cpu.devices.vga, 'complete_redraw', () => {});
  try {
    core.restore_state(exact);
  } finally {
    restoreRedraw();
    restoreRam();
  }
}

/** Replace a method of `obj` for a moment; returns what puts the original back. */
function override<T extends object, K extends keyof T>(obj: T, key: K, value: T[K]): () => void {
  const own = Object.prototype.hasOwnProperty.call(obj, key);
  const original = obj[key];
  obj[key] = value;
  return () => {
    if (own) obj[key] = original;
    else delete obj[key];
  };
}

function crc32Hex(b: Uint8Array): string {
  return crc32(b).toString(16).padStart(8, '0');
}
