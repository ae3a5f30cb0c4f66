// The received map: one byte per page of each RAM block, shared by the multifdrecv_N threads
// that write pages and by a machine that takes pages into a guest of its own (the PC copies
// them into the emulator's memory while the migration runs, so that switchover copies little).
//
// States, and who moves a page between them:
// - NEVER (0): nothing arrived for the page; its memory is untouched and zero.
// - ZERO (1): it arrived only as zero pages; its memory is still untouched. Channels: 0 -> 1.
// - DATA (2): its memory was written since a machine last took it (with data, or zeroed after
//   data). Channels store DATA with Atomics.store *after* the page's bytes are in place.
// - TAKEN (3): a machine copied it into its guest. The machine moves DATA -> TAKEN with
//   Atomics.compareExchange *before* it copies; a page a channel rewrites meanwhile is DATA
//   again afterwards and is copied again.

export const RECEIVED = { never: 0, zero: 1, data: 2, taken: 3 } as const;

/**
 * A machine's side: copy every page in state DATA (marking it TAKEN first), with `copy(page)`.
 * Returns how many pages were copied.
 */
export function takeWrittenPages(map: Uint8Array, copy: (page: number) => void): number {
  let taken = 0;
  for (let p = 0; p < map.length; p++) {
    if (map[p] !== RECEIVED.data) continue;
    if (Atomics.compareExchange(map, p, RECEIVED.data, RECEIVED.taken) !== RECEIVED.data) continue;
    copy(p);
    taken++;
  }
  return taken;
}

/**
 * The first page of `[start, end)` whose memory holds data (DATA or TAKEN), or -1: a zero range
 * over pages that never had data is then marked with one fill, and nothing else is touched.
 */
export function firstWritten(map: Uint8Array, start: number, end: number): number {
  for (let p = start; p < end; p++) {
    if (map[p] >= RECEIVED.data) return p;
  }
  return -1;
}
