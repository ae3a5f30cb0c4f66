// Test helpers: a registered "DMA" buffer for hand-built descriptors, records and data.

import { setTimeout as sleep } from 'node:timers/promises';
import {
  decodeCompletionRecord,
  encodeDescriptor,
  type CompletionRecord,
  type DescriptorFields,
} from './dsa-builders.js';
import type { DsaEmu } from '../../src/accel/dsa/emu/device.js';

export class Dma {
  readonly sab: SharedArrayBuffer;
  readonly u8: Uint8Array;
  readonly base: number;

  constructor(emu: DsaEmu, bytes: number) {
    this.sab = new SharedArrayBuffer(bytes);
    this.u8 = new Uint8Array(this.sab);
    this.base = emu.register(this.sab).base;
  }

  /** Device address of byte `off`. */
  addr(off: number): bigint {
    return BigInt(this.base + off);
  }

  /** Write a descriptor at `off` and return its bytes (for a portal). */
  desc(off: number, d: DescriptorFields): Uint8Array {
    encodeDescriptor(this.u8, off, d);
    return this.u8.subarray(off, off + 64);
  }

  clearRecord(off: number): void {
    this.u8.fill(0, off, off + 32);
  }

  status(off: number): number {
    return Atomics.load(new Int32Array(this.sab, off, 1), 0) & 0xff;
  }

  /** Poll until the record at `off` has a status (test code may poll). */
  async record(off: number, timeoutMs = 10_000): Promise<CompletionRecord> {
    const end = Date.now() + timeoutMs;
    while (this.status(off) === 0) {
      if (Date.now() > end) throw new Error(`no completion record at ${off} after ${timeoutMs} ms`);
      await sleep(1);
    }
    return decodeCompletionRecord(this.u8, off);
  }
}

/** Wait until `cond()` holds (polling; test code only). */
export async function eventually(
  cond: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 10_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(1);
  }
}

export function isZero(u8: Uint8Array, off: number, len: number): boolean {
  for (let i = off; i < off + len; i++) if (u8[i] !== 0) return false;
  return true;
}

/** A deterministic pseudo-random generator (xorshift32). */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x / 4294967296;
  };
}

/**
 * A RAM block whose pages are zero, fully random, or zero but for one byte, chosen by `rand`
 * (fractions: zero 50%, one byte 25%, random 25%).
 */
export function mixedBlock(pages: number, seed: number, pageSize = 4096): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(pages * pageSize);
  const u8 = new Uint8Array(sab);
  const r = rng(seed);
  for (let p = 0; p < pages; p++) {
    const x = r();
    if (x < 0.5) continue;
    if (x < 0.75) u8[p * pageSize + Math.floor(r() * pageSize)] = 1 + Math.floor(r() * 255);
    else for (let i = 0; i < pageSize; i += 97) u8[p * pageSize + i] = 1 + (i & 0x7f);
  }
  return sab;
}

/** Zero-ness of each page, computed byte by byte. */
export function expectedZeros(
  sab: SharedArrayBuffer,
  pages: ArrayLike<number>,
  count: number,
  pageSize = 4096,
): Uint8Array {
  const u8 = new Uint8Array(sab);
  const out = new Uint8Array(count);
  for (let i = 0; i < count; i++) out[i] = isZero(u8, pages[i] * pageSize, pageSize) ? 1 : 0;
  return out;
}

const MiB = 1024 * 1024;

/** accel-config JSON of a work queue: shared, size 32, the default limits; `extra` overrides. */
export function wqConf(dev: number, wq: number, extra: Record<string, unknown> = {}) {
  return {
    dev: `wq${dev}.${wq}`,
    mode: 'shared',
    size: 32,
    group_id: 0,
    priority: 10,
    max_batch_size: 1024,
    max_transfer_size: 2 * MiB,
    type: 'user',
    name: 'livemig',
    threshold: 32,
    ...extra,
  };
}

/** accel-config JSON of a device with one group of `engines` engines. */
export function devConf(id: number, wqs: Record<string, unknown>[], engines = 1) {
  return {
    dev: `dsa${id}`,
    groups: [
      {
        dev: `group${id}.0`,
        grouped_workqueues: wqs,
        grouped_engines: Array.from({ length: engines }, (_, i) => ({
          dev: `engine${id}.${i}`,
          group_id: 0,
        })),
      },
    ],
  };
}
