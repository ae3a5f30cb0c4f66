// Inputs for fuzzing a destination: valid multifd packet streams and control frames, and
// mutations of them (bit flips, truncation, splices, random runs), from a seeded generator
// so that any failing case can be replayed.

import {
  FLAG_SYNC,
  PACKET_HEADER_SIZE,
  PACKET_MAGIC,
  PAGE_SIZE,
  PH,
  ZERO_RANGES_SHIFT,
  packetHeaderBytes,
  encodeFrame,
  type FrameType,
} from '../migration/protocol.js';

/** xorshift32: small, fast, reproducible. */
export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0 || 0x9e3779b9;
  }
  next(): number {
    let x = this.s;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.s = x >>> 0;
    return this.s;
  }
  int(n: number): number {
    return this.next() % n;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.next() & 0xff;
    return b;
  }
}

export interface StreamShape {
  blocks: number[]; // pages per block
  packetPages: number;
}

/** A valid stream: a few passes of packets, each pass ended by a SYNC. */
export function validStream(rng: Rng, shape: StreamShape): Buffer {
  const parts: Buffer[] = [];
  const passes = 1 + rng.int(3);
  let num = 0;
  for (let pass = 1; pass <= passes; pass++) {
    const packets = rng.int(4);
    for (let k = 0; k < packets; k++) {
      const block = rng.int(shape.blocks.length);
      const count = 1 + rng.int(Math.min(shape.packetPages, shape.blocks[block]));
      const normal = rng.int(Math.min(count, 4) + 1);
      const start = rng.int(shape.blocks[block] - count + 1);
      // Pages start.. start+count-1: the first `normal` are normal, the rest zero, cut into
      // ranges of random lengths (as a sender that found them in several runs would).
      const ranges: [number, number][] = [];
      for (let p = start + normal; p < start + count;) {
        const n = 1 + rng.int(start + count - p);
        ranges.push([p, n]);
        p += n;
      }
      const hdr = Buffer.alloc(packetHeaderBytes(normal + ranges.length));
      const u32 = new Uint32Array(hdr.buffer, hdr.byteOffset, hdr.length >>> 2);
      u32[PH.magic] = PACKET_MAGIC;
      u32[PH.flags] = ranges.length << ZERO_RANGES_SHIFT;
      u32[PH.block] = block;
      u32[PH.normal] = normal;
      u32[PH.zero] = count - normal;
      u32[PH.pass] = pass;
      u32[PH.packetNumLo] = num++;
      let w = PACKET_HEADER_SIZE >>> 2;
      for (let i = 0; i < normal; i++) {
        const page = start + i;
        u32[w++] = (page * PAGE_SIZE) >>> 0;
        u32[w++] = Math.floor((page * PAGE_SIZE) / 2 ** 32);
      }
      for (const [first, n] of ranges) {
        u32[w++] = first;
        u32[w++] = n;
      }
      parts.push(hdr, rng.bytes(normal * PAGE_SIZE));
    }
    const sync = Buffer.alloc(PACKET_HEADER_SIZE);
    const s32 = new Uint32Array(sync.buffer, sync.byteOffset, 8);
    s32[PH.magic] = PACKET_MAGIC;
    s32[PH.flags] = FLAG_SYNC;
    s32[PH.pass] = pass;
    s32[PH.packetNumLo] = num++;
    parts.push(sync);
  }
  return Buffer.concat(parts);
}

/** Damage a stream the ways a broken or hostile peer would. */
export function mutate(rng: Rng, input: Buffer): Buffer {
  const b = Buffer.from(input);
  switch (rng.int(6)) {
    case 0: // flip a few bits
      for (let i = rng.int(8) + 1; i > 0 && b.length > 0; i--)
        b[rng.int(b.length)] ^= 1 << rng.int(8);
      return b;
    case 1: // overwrite an aligned header-sized word with an extreme value
      if (b.length >= 4) {
        const at = rng.int(Math.min(b.length, 4096) >>> 2) << 2;
        b.writeUInt32LE([0, 1, 0xffffffff, 0x7fffffff, 0x1000, 1025][rng.int(6)], at);
      }
      return b;
    case 2: // truncate
      return b.subarray(0, rng.int(b.length + 1));
    case 3: // splice random bytes in
      return Buffer.concat([b.subarray(0, rng.int(b.length + 1)), rng.bytes(rng.int(256)), b]);
    case 4: // duplicate a region
      if (b.length > 8) {
        const at = rng.int(b.length - 8);
        return Buffer.concat([b.subarray(0, at + 8), b.subarray(at)]);
      }
      return b;
    default: // pure noise
      return rng.bytes(rng.int(2048));
  }
}

/** A control frame stream: valid frames of random types with random JSON-ish payloads. */
export function controlStream(rng: Rng): Buffer {
  const parts: Buffer[] = [];
  for (let i = rng.int(4); i >= 0; i--) {
    const type = (1 + rng.int(9)) as FrameType;
    const payload: Record<string, unknown> = {};
    for (let k = rng.int(4); k > 0; k--) {
      payload[['ports', 'finalPass', 'device', 'blocks', 'digest', 'ok', 'session'][rng.int(7)]] = [
        null,
        -1,
        2 ** 53,
        'x'.repeat(rng.int(40)),
        [1, 2],
        { vcpu: { position: -1 } },
        true,
      ][rng.int(7)];
    }
    parts.push(encodeFrame(type, payload));
  }
  return Buffer.concat(parts);
}
