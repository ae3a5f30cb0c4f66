// Guest pages must be OS pages. A SharedArrayBuffer's memory comes from malloc, which puts a
// 16-byte header in front of large (mmapped) chunks, so byte 0 of the buffer sits 16 bytes into
// an OS page and every 4 KiB guest page straddles two OS pages. Then one page written on the
// destination allocates two (twice the first-touch faults, and RSS for pages that were never
// received), and QEMU's "never-received RAM stays unallocated" cannot hold.
//
// (Buffers under glibc's mmap threshold, at most 32 MiB, may come from its heap instead, even
// recycled; the probe finds nothing there and the block is only not aligned, which costs speed,
// never correctness. Guests are far larger.)
//
// JavaScript cannot see addresses, so the offset of the first page boundary is found by
// reading: a read of a never-touched page takes a minor fault (it maps the shared zero page, so
// nothing is allocated), and the calling thread's fault count in /proc/thread-self/stat says
// where that happened. The buffer is allocated one page larger and the guest's page 0 starts at
// that boundary.

import { closeSync, openSync, readSync } from 'node:fs';
import { PAGE_SIZE } from '../migration/protocol.js';

/** Where the probe looks: every 16 bytes (malloc's alignment) of the first page. */
const PROBE_STEP = 16;

const statBuf = Buffer.alloc(1024);

/** Minor faults of the calling thread, or -1 where /proc does not say. */
function threadMinorFaults(): number {
  let fd: number;
  try {
    fd = openSync('/proc/thread-self/stat', 'r');
  } catch {
    return -1;
  }
  try {
    const n = readSync(fd, statBuf, 0, statBuf.length, 0);
    // Fields after "(comm) ": state is field 3, minflt field 10.
    let i = statBuf.lastIndexOf(0x29, n) + 2;
    for (let field = 3; field < 10 && i < n; i++) if (statBuf[i] === 0x20) field++;
    let v = 0;
    for (; i < n && statBuf[i] !== 0x20; i++) v = v * 10 + statBuf[i] - 0x30;
    return v;
  } finally {
    closeSync(fd);
  }
}

/**
 * Byte offset (0..PAGE_SIZE-1) of the first OS page boundary in a fresh, untouched buffer, or
 * null when the probe cannot tell (no /proc, or faults it cannot attribute).
 */
export function probePageBoundary(sab: SharedArrayBuffer): number | null {
  if (sab.byteLength < 2 * PAGE_SIZE) return null;
  const u8 = new Uint8Array(sab, 0, PAGE_SIZE + 1);
  const hits: number[] = [];
  let sink = 0;
  for (let off = 0; off <= PAGE_SIZE; off += PROBE_STEP) {
    const before = threadMinorFaults();
    if (before < 0) return null;
    sink |= u8[off];
    if (threadMinorFaults() > before) hits.push(off);
  }
  if (sink !== 0) return null; // not a fresh buffer
  // One boundary in the first PAGE_SIZE + 1 bytes. A fault at 0 and one at PAGE_SIZE is a
  // page-aligned buffer whose first page was not touched yet; a single fault at b is the
  // boundary (the page before it holds malloc's header, so it was already there).
  if (hits.length === 2 && hits[0] === 0 && hits[1] === PAGE_SIZE) return 0;
  if (hits.length === 1) return hits[0] % PAGE_SIZE;
  return null;
}

/** Warm the probe's code path once, so its first real use is not disturbed by lazy compilation. */
let warmed = false;

/** The offset a probe could not find: glibc's header size, which is what Node's malloc gives. */
const GLIBC_MMAP_HEADER = 16;

/**
 * A buffer of `size` bytes whose byte `base` is at an OS page boundary. `aligned` says whether
 * the probe confirmed it (otherwise `base` is glibc's usual offset, still correct as data, only
 * possibly not page-aligned).
 */
export function allocatePageAligned(size: number): {
  sab: SharedArrayBuffer;
  base: number;
  aligned: boolean;
} {
  if (!warmed) {
    warmed = true;
    probePageBoundary(new SharedArrayBuffer(64 * PAGE_SIZE));
  }
  for (let attempt = 0; attempt < 3; attempt++) {
    const sab = new SharedArrayBuffer(size + PAGE_SIZE);
    const b = probePageBoundary(sab);
    if (b !== null) return { sab, base: b, aligned: true };
  }
  return {
    sab: new SharedArrayBuffer(size + PAGE_SIZE),
    base: PAGE_SIZE - GLIBC_MMAP_HEADER,
    aligned: false,
  };
}
