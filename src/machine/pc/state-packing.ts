// The PC's device state travels with its zero 4 KiB blocks left out. v86's state without RAM is
// ~1.3 MB, but most of it is zero: VGA planes and buffers a text console never fills. A BIOS-only
// PC's state had 308 of its 317 blocks zero. The state is on the downtime's path (the
// destination restores it before it acknowledges), and ~1.3 MB over the main channel took
// 16-28 ms to reach the destination's main thread on two busy cores (docs/benchmarks.md): tens of
// socket reads, each waiting for a core. Leaving out zero blocks costs one zero check on each
// side; deflate would save a little more at ~2 ms each way.
//
// Layout (little-endian): magic "LMZB", the state's length (u32), then one bit per 4 KiB block
// (1 = the block follows), then the blocks marked, in order; the last block may be short.

const MAGIC = 0x425a4d4c; // "LMZB"
const HEADER_BYTES = 8;
const BLOCK = 4096;
const ZERO_BLOCK = Buffer.alloc(BLOCK);

/** `state` with its zero blocks left out (a fresh buffer, in an ArrayBuffer of its own). */
export function packZeroBlocks(state: Uint8Array): Uint8Array {
  const src = Buffer.from(state.buffer, state.byteOffset, state.length);
  const blocks = Math.ceil(src.length / BLOCK);
  const bitmapBytes = Math.ceil(blocks / 8);
  const bitmap = new Uint8Array(bitmapBytes);
  let dataBytes = 0;
  for (let b = 0; b < blocks; b++) {
    const from = b * BLOCK;
    const to = Math.min(src.length, from + BLOCK);
    if (src.compare(ZERO_BLOCK, 0, to - from, from, to) === 0) continue;
    bitmap[b >>> 3] |= 1 << (b & 7);
    dataBytes += to - from;
  }
  const out = new Uint8Array(HEADER_BYTES + bitmapBytes + dataBytes);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, MAGIC, true);
  dv.setUint32(4, src.length, true);
  out.set(bitmap, HEADER_BYTES);
  let at = HEADER_BYTES + bitmapBytes;
  for (let b = 0; b < blocks; b++) {
    if ((bitmap[b >>> 3] & (1 << (b & 7))) === 0) continue;
    const from = b * BLOCK;
    const to = Math.min(src.length, from + BLOCK);
    out.set(src.subarray(from, to), at);
    at += to - from;
  }
  return out;
}

/**
 * The state `packed` carries, which must be `expectedBytes` long (the source's description
 * says so). Throws on a header, bitmap or length that does not add up; the state's own checks
 * (device-state.ts) then run on what comes out.
 */
export function unpackZeroBlocks(packed: Uint8Array, expectedBytes: unknown): Uint8Array {
  if (packed.length < HEADER_BYTES) {
    throw new Error(`packed state of ${packed.length} bytes: too short`);
  }
  const dv = new DataView(packed.buffer, packed.byteOffset, packed.length);
  const magic = dv.getUint32(0, true);
  if (magic !== MAGIC) {
    throw new Error(`packed state magic 0x${magic.toString(16)}, expected 0x${MAGIC.toString(16)}`);
  }
  const length = dv.getUint32(4, true);
  if (length !== expectedBytes) {
    throw new Error(
      `packed state unpacks to ${length} bytes, the source sent ${String(expectedBytes)}`,
    );
  }
  const blocks = Math.ceil(length / BLOCK);
  const bitmapBytes = Math.ceil(blocks / 8);
  let at = HEADER_BYTES + bitmapBytes;
  if (at > packed.length) throw new Error('packed state ends inside its block map');
  for (let b = blocks; b < bitmapBytes * 8; b++) {
    if ((packed[HEADER_BYTES + (b >>> 3)] & (1 << (b & 7))) !== 0) {
      throw new Error(`packed state marks block ${b}, past its last (${blocks - 1})`);
    }
  }
  const out = new Uint8Array(length);
  for (let b = 0; b < blocks; b++) {
    if ((packed[HEADER_BYTES + (b >>> 3)] & (1 << (b & 7))) === 0) continue;
    const from = b * BLOCK;
    const n = Math.min(length, from + BLOCK) - from;
    if (at + n > packed.length) throw new Error(`packed state ends inside block ${b}`);
    out.set(packed.subarray(at, at + n), from);
    at += n;
  }
  if (at !== packed.length) {
    throw new Error(`packed state has ${packed.length - at} bytes after its last block`);
  }
  return out;
}
