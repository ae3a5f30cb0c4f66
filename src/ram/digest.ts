// The RAM digest that x-verify-ram and x-query-ram-digest compare: SHA-256 over every 1 MiB
// chunk that is not all zero, each preceded by its block id and page number. Untouched memory
// is only read (never written), and both sides of a migration compute the same value for the
// same contents whatever their block allocation.

import { createHash } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import { isZeroRange } from '../zero/zero-check.js';
import type { RamBytes } from './layout.js';

const CHUNK = 1024 * 1024;

/** A block's bytes as consecutive segments (see layout.ts: segmentViews). */
export interface DigestBlock {
  id: number;
  segments: Uint8Array[];
}

export function ramDigest(blocks: DigestBlock[]): string {
  const h = createHash('sha256');
  const idx = Buffer.alloc(8);
  for (const b of blocks) {
    let base = 0;
    for (const s of b.segments) {
      const seg = Buffer.from(s.buffer, s.byteOffset, s.length);
      for (let off = 0; off < seg.length; off += CHUNK) {
        const end = Math.min(seg.length, off + CHUNK);
        // The project's zero check: WebAssembly SIMD over a block's memory (segmentViews).
        if (isZeroRange(seg, off, end - off)) continue;
        idx.writeUInt32LE(b.id, 0);
        idx.writeUInt32LE((base + off) / 4096, 4);
        h.update(idx);
        h.update(seg.subarray(off, end));
      }
      base += seg.length;
    }
  }
  return h.digest('hex');
}

/**
 * ramDigest of RAM blocks, computed on a worker thread (digest-worker.ts): the caller's event
 * loop goes on (a large guest takes about a second per GiB here).
 */
export function ramDigestInWorker(blocks: (RamBytes & { id: number })[]): Promise<string> {
  const worker = new Worker(new URL('./digest-worker.js', import.meta.url), {
    workerData: {
      // With its WebAssembly memory, so that the worker checks zero chunks in WebAssembly.
      blocks: blocks.map((b) => ({
        id: b.id,
        ram: b.ram,
        base: b.base,
        size: b.size,
        memory: b.memory,
      })),
    },
    name: 'ram_digest',
  });
  return new Promise<string>((resolve, reject) => {
    worker.once('message', (digest: string) => resolve(digest));
    worker.once('error', reject);
    worker.once('exit', (code) => reject(new Error(`RAM digest thread exited with code ${code}`)));
  });
}
