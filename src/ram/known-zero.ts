// Which 64 KiB chunks of a RAM block are known to be all zero, without reading them: one byte
// per chunk in a SharedArrayBuffer (RamBlockDesc.knownZero), 1 while the chunk is known zero.
// A PC source's mirror has one: pass 1 then sends the chunks the guest never wrote as zero
// pages without reading them. Reading memory that was never written is not free: on a kernel
// without a shared zero page for reads (this host's: reading 256 MiB fresh memory made the
// process 256 MiB larger) each read allocates a page, and on others each one faults.
//
// Who writes what, in which order:
// - The map is created all 1 with its block, whose bytes are zero then, before any other thread
//   sees either.
// - Only a thread that writes the block's bytes clears a chunk's flag (the PC: dirty_sync and its
//   helper, mirror-sync.ts), with Atomics.store, BEFORE it writes any byte of the chunk and before
//   it sets the dirty bits of the pages it wrote. A flag never goes back to 1.
// - A reader (live_migration's pass 1) that sees 1 with Atomics.load may send the chunk's pages
//   as zero: whatever is written there comes later, and so do its dirty bits, which a later pass
//   takes.

import { PAGE_SIZE } from '../migration/protocol.js';

export const KNOWN_ZERO_CHUNK_BYTES = 64 * 1024;
export const KNOWN_ZERO_CHUNK_PAGES = KNOWN_ZERO_CHUNK_BYTES / PAGE_SIZE;

/** A map for a block of `size` bytes, every chunk known zero (the block is fresh memory). */
export function createKnownZeroMap(size: number): SharedArrayBuffer {
  const buf = new SharedArrayBuffer(Math.ceil(size / KNOWN_ZERO_CHUNK_BYTES));
  new Uint8Array(buf).fill(1);
  return buf;
}

/** The writer's side: before the first byte of chunk `chunk` is written. */
export function clearKnownZero(map: Uint8Array, chunk: number): void {
  Atomics.store(map, chunk, 0);
}

/** The reader's side: whether pages [first, first + count) are all in chunks known zero. */
export function pagesKnownZero(map: Uint8Array, first: number, count: number): boolean {
  if (count <= 0) return false;
  const last = Math.floor((first + count - 1) / KNOWN_ZERO_CHUNK_PAGES);
  for (let c = Math.floor(first / KNOWN_ZERO_CHUNK_PAGES); c <= last; c++) {
    if (Atomics.load(map, c) !== 1) return false;
  }
  return true;
}
