// Two RAM files compared: the QEMU peer backs guest RAM with files (memory-backend-file,
// share=on), so that after a migration the source's and the paused destination's RAM can be
// compared on the host. A file shorter than the RAM reads as zeros past its end, as QEMU maps it.

import { closeSync, openSync, readSync } from 'node:fs';

const CHUNK = 16 * 1024 * 1024;
const PAGE = 4096;

function readFull(fd: number, buf: Buffer, len: number, pos: number): number {
  let got = 0;
  while (got < len) {
    const n = readSync(fd, buf, got, len - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/** Call `fn` with equal-length chunks of both files (zero-filled past a short file's end). */
function eachChunk(
  a: string,
  b: string,
  bytes: number,
  fn: (off: number, ca: Buffer, cb: Buffer) => boolean,
): void {
  const fa = openSync(a, 'r');
  const fb = openSync(b, 'r');
  try {
    const ba = Buffer.alloc(CHUNK);
    const bb = Buffer.alloc(CHUNK);
    for (let off = 0; off < bytes; off += CHUNK) {
      const len = Math.min(CHUNK, bytes - off);
      ba.fill(0, readFull(fa, ba, len, off), len);
      bb.fill(0, readFull(fb, bb, len, off), len);
      if (!fn(off, ba.subarray(0, len), bb.subarray(0, len))) return;
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

/** Compare two files byte for byte; the offset of the first difference, or -1 when equal. */
export function firstDifference(a: string, b: string, bytes: number): number {
  let at = -1;
  eachChunk(a, b, bytes, (off, ca, cb) => {
    if (ca.equals(cb)) return true;
    for (let i = 0; i < ca.length; i++) {
      if (ca[i] !== cb[i]) {
        at = off + i;
        return false;
      }
    }
    return true;
  });
  return at;
}

/** The 4 KiB pages (of the first `bytes`) whose contents differ, by page number. */
export function differingPages(a: string, b: string, bytes: number): number[] {
  const out: number[] = [];
  eachChunk(a, b, bytes, (off, ca, cb) => {
    if (ca.equals(cb)) return true;
    for (let p = 0; p < ca.length; p += PAGE) {
      const end = Math.min(p + PAGE, ca.length);
      if (!ca.subarray(p, end).equals(cb.subarray(p, end))) out.push((off + p) / PAGE);
    }
    return true;
  });
  return out;
}
