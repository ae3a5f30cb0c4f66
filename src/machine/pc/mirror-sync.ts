// A PC source sends guest RAM from a mirror (pc-machine.ts says why). These are the copies
// between guest RAM and the mirror, run by the dirty_sync thread (dirty-sync-worker.ts) while the
// guest runs, and by it and its helper together once the guest has stopped.

import { PAGE_SIZE } from '../../migration/protocol.js';
import { isZeroRange } from '../../zero/zero-check.js';
import { registerWasmRam } from '../../zero/wasm-zero.js';
import { KNOWN_ZERO_CHUNK_BYTES, clearKnownZero } from '../../ram/known-zero.js';
import type { GuestRamPlace } from './pc-config.js';
import { ALWAYS_COMPARED_BYTES, type WriteLog } from './write-log.js';

/**
 * How much is compared at once before looking page by page: one native memcmp per 64 KiB finds
 * unchanged memory at memory speed (a 256 MiB guest: 6-8 ms per sync, against 10-13 ms page by
 * page; docs/pc-machine.md). The chunks of the mirror's known-zero map (src/ram/known-zero.ts).
 */
export const SYNC_CHUNK_BYTES = KNOWN_ZERO_CHUNK_BYTES;

/**
 * A dirty sync of bytes [from, to) (64 KiB chunks; all of RAM by default): find the pages of
 * `guest` that differ from `mirror`, copy them into `mirror`
 * and set their bits in `dirty` (one bit per page, Atomics.or: live_migration takes them with
 * Atomics.exchange). Returns how many pages changed. Content comparison also catches writes
 * no write-path log would see (devices, the emulator's own), and a page rewritten with the
 * same bytes costs nothing to send.
 *
 * `zeroChunks` (the mirror's known-zero map) says which chunks of the mirror are zero: those
 * are checked for zero instead (zero/zero-check.ts: WebAssembly SIMD over the emulator's memory),
 * which reads half the memory. Most of a booted
 * guest's RAM is zero, and once the guest has touched it all (a page cache that filled its RAM)
 * a comparison with the mirror would read both copies of every page.
 */
export function syncMirror(
  guest: Buffer,
  mirror: Buffer,
  dirty: Int32Array,
  zeroChunks: Uint8Array,
  from = 0,
  to = guest.length,
): number {
  if (guest.length !== mirror.length) {
    throw new Error(`guest RAM ${guest.length} bytes, its mirror ${mirror.length}`);
  }
  if (from % SYNC_CHUNK_BYTES !== 0 || from < 0 || to > guest.length || from > to) {
    throw new Error(`sync range ${from}..${to} is not whole 64 KiB chunks of ${guest.length}`);
  }
  let changed = 0;
  for (let chunk = from, c = from / SYNC_CHUNK_BYTES; chunk < to; chunk += SYNC_CHUNK_BYTES, c++) {
    const end = Math.min(to, chunk + SYNC_CHUNK_BYTES);
    if (zeroChunks[c] === 1) {
      if (isZeroRange(guest, chunk, end - chunk)) continue;
      clearKnownZero(zeroChunks, c); // before the chunk's first byte and dirty bit (known-zero.ts)
    } else if (guest.compare(mirror, chunk, end, chunk, end) === 0) {
      continue;
    }
    for (let off = chunk; off < end; off += PAGE_SIZE) {
      const pageEnd = off + PAGE_SIZE;
      if (guest.compare(mirror, off, pageEnd, off, pageEnd) === 0) continue;
      guest.copy(mirror, off, off, pageEnd);
      const page = off / PAGE_SIZE;
      Atomics.or(dirty, page >>> 5, 1 << (page & 31));
      changed++;
    }
  }
  return changed;
}

/**
 * Two threads share a sync by stripes of this size, taking every other one: Linux fills RAM from
 * the top, so halves would leave one thread most of the memory that differs.
 */
export const SYNC_STRIPE_BYTES = 16 * SYNC_CHUNK_BYTES;

/**
 * syncMirror over stripe `part` of every `parts` (SYNC_STRIPE_BYTES each): parts 0 and 1 of 2
 * are the two threads' shares of one sync. Returns how many pages changed.
 */
export function syncMirrorPart(
  guest: Buffer,
  mirror: Buffer,
  dirty: Int32Array,
  zeroChunks: Uint8Array,
  part: number,
  parts: number,
): number {
  let changed = 0;
  const step = parts * SYNC_STRIPE_BYTES;
  for (let from = part * SYNC_STRIPE_BYTES; from < guest.length; from += step) {
    const to = Math.min(guest.length, from + SYNC_STRIPE_BYTES);
    changed += syncMirror(guest, mirror, dirty, zeroChunks, from, to);
  }
  return changed;
}

/**
 * A logged dirty sync: the pages the write log marked since the last sync (write-log.ts), each
 * compared with the mirror as syncMirror compares a page, and the page after it (a store that
 * crosses into the next page marks only its first), and the low 1 MiB in full. Returns how many
 * pages changed. It reads a few pages per page the guest wrote, not all of RAM.
 */
export function syncLoggedPages(
  guest: Buffer,
  mirror: Buffer,
  dirty: Int32Array,
  zeroChunks: Uint8Array,
  log: WriteLog,
): number {
  const low = Math.min(guest.length, ALWAYS_COMPARED_BYTES);
  let changed = syncMirror(guest, mirror, dirty, zeroChunks, 0, low);
  const pages = guest.length / PAGE_SIZE;
  log.take((p) => {
    if (p < pages) changed += syncPage(guest, mirror, dirty, zeroChunks, p);
    if (p + 1 < pages) changed += syncPage(guest, mirror, dirty, zeroChunks, p + 1);
  });
  return changed;
}

/** syncMirror for one page: 1 if it changed (copied, and its dirty bit set), else 0. */
function syncPage(
  guest: Buffer,
  mirror: Buffer,
  dirty: Int32Array,
  zeroChunks: Uint8Array,
  page: number,
): number {
  const off = page * PAGE_SIZE;
  const end = off + PAGE_SIZE;
  const c = Math.floor(off / SYNC_CHUNK_BYTES);
  if (zeroChunks[c] === 1) {
    // the mirror's chunk is zero and unread: check the guest's page for zero instead
    if (isZeroRange(guest, off, PAGE_SIZE)) return 0;
    clearKnownZero(zeroChunks, c);
  } else if (guest.compare(mirror, off, end, off, end) === 0) {
    return 0;
  }
  guest.copy(mirror, off, off, end);
  Atomics.or(dirty, page >>> 5, 1 << (page & 31));
  return 1;
}

const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);

/**
 * Zero every page of `ram` that is not zero, leaving zero pages untouched (never faulted in).
 * A destination's emulator starts with its BIOS in low memory; after this its RAM is what a
 * migration's untouched pages promise: zero. Returns how many pages were written.
 */
export function zeroRam(ram: Buffer): number {
  let written = 0;
  for (let off = 0; off < ram.length; off += PAGE_SIZE) {
    if (ZERO_PAGE.compare(ram, off, off + PAGE_SIZE) === 0) continue;
    ram.fill(0, off, off + PAGE_SIZE);
    written++;
  }
  return written;
}

/**
 * Guest RAM as a thread other than the vCPU's sees it: `size` bytes of the emulator's shared
 * memory from the place the vCPU thread gave, checked for zero in WebAssembly.
 */
export function guestRamView(place: GuestRamPlace, size: number): Buffer {
  registerWasmRam(place.ram, place.memory);
  return Buffer.from(place.ram, place.base, size);
}
