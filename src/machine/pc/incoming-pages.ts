// A PC destination takes the pages of an arriving migration into its emulator's memory while the
// migration runs, so that switchover copies only what arrived last. It runs on the vCPU thread
// (the only one that can write the emulator's memory) on a timer, and once more at Complete.

import { takeWrittenPages } from '../../migration/destination/received-map.js';
import { PAGE_SIZE } from '../../migration/protocol.js';

/**
 * How often pages are taken in. A first write to the emulator's fresh memory faults (10-30 us a
 * page on these VMs); taken as pages arrive, the ~10,000-18,000 faults of a 256 MiB Linux guest
 * fall into the transfer rather than into the downtime.
 */
export const TAKE_EVERY_MS = 5;

export class IncomingPages {
  /** pages taken in so far, and the time it took (query-migrate's `into-guest`) */
  pages = 0;
  ms = 0;
  private readonly list = new Int32Array(0x10000);
  private timer: NodeJS.Timeout | null = null;

  /**
   * `map`: the migration's received map; `target()` the emulator's memory and `mirror()` the RAM
   * block as they are at each call (the emulator's memory may move when it grows).
   */
  constructor(
    readonly map: Uint8Array,
    private readonly target: () => Buffer,
    private readonly mirror: () => Buffer,
  ) {}

  start(): void {
    this.timer ??= setInterval(() => this.take(), TAKE_EVERY_MS);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /**
   * Copy the pages written since the last call (received map: DATA -> TAKEN, then the copy).
   * Their first-touch faults are taken in a tight loop of one byte per page before the copies:
   * about a third cheaper here than inside them. Returns how many pages were copied.
   */
  take(): number {
    const guest = this.target();
    const mirror = this.mirror();
    const list = this.list;
    const t0 = performance.now();
    let taken = 0;
    let batch = 0;
    const flush = (): void => {
      for (let i = 0; i < batch; i++) guest[list[i] * PAGE_SIZE] = 0;
      for (let i = 0; i < batch; i++) {
        const off = list[i] * PAGE_SIZE;
        mirror.copy(guest, off, off, off + PAGE_SIZE);
      }
      taken += batch;
      batch = 0;
    };
    takeWrittenPages(this.map, (page) => {
      list[batch++] = page;
      if (batch === list.length) flush();
    });
    flush();
    this.pages += taken;
    this.ms += performance.now() - t0;
    return taken;
  }
}
