// The PC's write log: one byte per 4 KiB page of the emulator's WebAssembly memory (all 4 GiB of
// it, so 1 MiB), in 16 pages the vCPU thread adds to the end of v86's initial memory, where v86's
// allocator never goes (it allocates only what memory.grow returns). Byte p is 1 once page p may
// have been written since dirty_sync last cleared it.
//
// Who writes what, in which order:
// - the vCPU thread: v86's code, rewritten by store-marking.ts, stores 1 into byte p after each
//   store to page p (a plain store, after the store it marks); v86's JavaScript writes guest RAM
//   through cpu.write_blob, which the vCPU thread wraps to mark the same way (markRange). It
//   never clears a byte.
// - dirty_sync only clears bytes, in one of two ways:
//   - a logged sync takes each set byte with Atomics.exchange(byte, 0) and only then compares the
//     page with the mirror: a write whose mark the exchange took is seen by the comparison, and
//     a write the comparison may have missed marks the byte again after (the exchange is a full
//     barrier, and each mark follows its write);
//   - a full sync (it compares every page) first clears the guest's part of the log, then makes
//     one seq-cst store (a barrier) before it reads guest RAM, for the same reason.
// So after any sync, a page of guest RAM whose byte is 0 equals its copy in the mirror, as long
// as every write to guest RAM marks its byte; writes that do not are the one risk, which is why
// the first sync of each emulator, and the first after a migration came in (the receive threads
// write guest RAM past the log), are full ones, and the mirror's refresh (no migration) stays one.
//
// The low 1 MiB is compared in full at every logged sync: v86 writes it from JavaScript when the
// guest writes the BIOS's alias at 4 GiB - 1 MiB, a path the log does not see.

/** Bytes of the log: one per 4 KiB page of a 4 GiB memory. */
export const LOG_BYTES = 2 ** 32 / 4096;
/** WebAssembly pages (64 KiB) the log takes. */
export const LOG_WASM_PAGES = LOG_BYTES / 65536;
/** Guest RAM compared in full at every logged sync (see above). */
export const ALWAYS_COMPARED_BYTES = 1024 * 1024;

const PAGE_SHIFT = 12;
/** A window of the log that is all zero is skipped with one native compare. */
const SCAN_WINDOW = 4096;
const ZERO_WINDOW = Buffer.alloc(SCAN_WINDOW);

/**
 * The log as the vCPU thread's memory holds it: `logBase`, the byte offset of the log in the
 * memory (the v86 module's initial size, store-marking.ts's base).
 */
export class WriteLog {
  /** the log's bytes for guest RAM's pages: byte i is guest page i */
  readonly guestPages: Buffer;

  /**
   * `memory` is the emulator's (shared) memory, `guestBase` the byte offset of guest RAM in it
   * (page-aligned, as v86 allocates it), `guestBytes` its size.
   */
  constructor(memory: SharedArrayBuffer, logBase: number, guestBase: number, guestBytes: number) {
    if (guestBase % 4096 !== 0) throw new Error(`guest RAM at ${guestBase} is not page-aligned`);
    if (logBase + LOG_BYTES > memory.byteLength) {
      throw new Error(`write log at ${logBase} runs past the memory (${memory.byteLength} bytes)`);
    }
    const first = logBase + (guestBase >>> PAGE_SHIFT);
    const pages = Math.ceil(guestBytes / 4096);
    this.guestPages = Buffer.from(memory, first, pages);
  }

  /** Full sync: clear every guest page's byte, then a barrier (see the header). */
  clear(): void {
    this.guestPages.fill(0);
    Atomics.store(this.guestPages, 0, 0);
  }

  /**
   * Logged sync: for every page marked, take its mark (Atomics.exchange) and then call
   * `page(i)`. Returns how many marks were taken.
   */
  take(page: (i: number) => void): number {
    const log = this.guestPages;
    const n = log.length;
    let taken = 0;
    for (let w = 0; w < n; w += SCAN_WINDOW) {
      const end = Math.min(n, w + SCAN_WINDOW);
      if (log.compare(ZERO_WINDOW, 0, end - w, w, end) === 0) continue;
      for (let i = w; i < end; i++) {
        if (log[i] !== 0 && Atomics.exchange(log, i, 0) !== 0) {
          page(i);
          taken++;
        }
      }
    }
    return taken;
  }
}

/** Marks bytes [from, to) of the memory as written (the vCPU thread's writes from JavaScript). */
export function markRange(
  memory: SharedArrayBuffer,
  logBase: number,
  from: number,
  to: number,
): void {
  if (to <= from) return;
  const log = new Uint8Array(memory, logBase, LOG_BYTES);
  log.fill(1, from >>> PAGE_SHIFT, ((to - 1) >>> PAGE_SHIFT) + 1);
}
