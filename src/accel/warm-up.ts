// Warm-up of the emulated devices: requests of the shapes a migration sends, run once when
// the devices start, behind their users' backs: it stops at the next round when a migration
// starts using the devices (`signal`), so it never competes with one.
//
// Engines are Node worker threads, and V8 compiles their hot path (the batch and COMPVAL code,
// address translation, records) only after it has run a while: ~25 ms of TurboFan per engine,
// measured with --trace-opt. Without a warm-up the first migration pays that inside its window,
// on a machine whose cores the channels need. DSA hardware is as fast
// on its first descriptor as on its millionth, so the emulated device warms up when it starts,
// as part of enabling its work queues, not as part of `migrate`.
//
// The shapes matter: code compiled for other descriptors would deoptimize at the first real
// one. So this goes through the driver the channels use, with both kinds of request a channel
// sends (page by page, and whole-packet runs), over memory with zero and non-zero pages.

import { openAccelerator } from './driver.js';
import type { DsaEmu } from './dsa/emu/device.js';

const PAGE = 4096;
/** Pages per request: the default multifd packet (512 KiB). */
const PACKET_PAGES = 128;
/** Requests per kind and WQ: enough for V8 to optimize the engines' loop (measured). */
export const WARM_UP_ROUNDS = 300;

/**
 * Send warm-up requests to one user WQ of every group of every device, until `rounds` are done
 * or `stop` is aborted. Failures are ignored: a device that cannot take them now reports its
 * error to the migration that uses it.
 */
export async function warmUpEmulatedDevices(
  emu: DsaEmu,
  rounds = WARM_UP_ROUNDS,
  stop?: AbortSignal,
): Promise<void> {
  const path: string[] = [];
  for (const d of emu.handle.devices) {
    const groups = new Set<number>();
    for (const q of d.wqs) {
      if (!q.enabled || q.type !== 'user' || q.mode !== 'shared' || groups.has(q.group)) continue;
      groups.add(q.group);
      path.push(`dsa-emu:${d.name}/${q.name}`);
    }
  }
  // A migration that starts with the devices ends the warm-up before it opens anything: its
  // accelerator's dsa_completion thread would start inside that migration.
  await new Promise((resolve) => setImmediate(resolve));
  if (path.length === 0 || stop?.aborted) return;
  const accel = await openAccelerator(path, { devices: emu, maxPages: PACKET_PAGES, slots: 8 });
  try {
    // Two packets: one all zero, one every other page normal (as scenario A's guest).
    const block = new SharedArrayBuffer(2 * PACKET_PAGES * PAGE);
    const bytes = new Uint8Array(block);
    for (let p = PACKET_PAGES; p < 2 * PACKET_PAGES; p += 2) bytes[p * PAGE + 8] = 1;
    const jobs = path.map(async (_, ch) => {
      const pages = accel.createBatchTask(ch, PACKET_PAGES);
      const runs = accel.createBatchTask(ch, 2, {
        pageSize: PACKET_PAGES * PAGE,
        pagesPerUnit: PACKET_PAGES,
      });
      const list = new Uint32Array(PACKET_PAGES);
      const units = Uint32Array.of(0, 1);
      const results = [0, 1, 2].map(() => new Uint8Array(PACKET_PAGES));
      for (let r = 0; r < rounds && !stop?.aborted; r++) {
        const first = (r & 1) * PACKET_PAGES;
        for (let i = 0; i < PACKET_PAGES; i++) list[i] = first + i;
        await Promise.all([
          pages.zeroPages(block, list, PACKET_PAGES, results[0]),
          pages.zeroPages(block, list, PACKET_PAGES, results[1]),
          runs.zeroPages(block, units, 2, results[2]),
        ]);
      }
    });
    await Promise.all(jobs);
  } finally {
    await accel.close();
  }
}
