// The channel threads' warm-up on the emulated DSA, once, as a source process starts.
//
// With zero-page-detection=dsa-accel a channel's per-packet code is another path (the device's
// verdicts, requests, batches) and the engines see other requests than their own warm-up's:
// V8 compiled ~200 ms of it inside an all-zero 4 GiB guest's migration on a 2-core host
// (--trace-opt), and a script sets dsa-accel right before `migrate`, so no later moment is
// early enough. So the process's emulated device starts with the process (its engine threads
// are started and warmed with it anyway), an accelerator is opened on its first work queue, and
// the pooled channel threads, after their plain warm-up, send their private guest's packets
// once more with the device checking them (send-warm-up.ts). A thread taken by a migration
// stops at its next packet. The accelerator is closed once every thread told has let go of it
// (warm-up-count.ts); migrations open their own.

import { DEFAULT_ACCEL_PATH } from '../accel/accel-path.js';
import { openAccelerator, type Accelerator } from '../accel/driver.js';
import type { DsaEmu } from '../accel/dsa/emu/device.js';
import { channelDepth } from '../migration/source/channel-slots.js';
import { WARM_UP_PACKET_PAGES } from '../migration/source/send-warm-up.js';
import type { WorkerPool } from '../util/worker-pool.js';
import { SEND_WORKER } from '../migration/source/source-threads.js';
import { WarmUpCount } from '../migration/source/warm-up-count.js';
import type { SendWorkerCommand } from '../migration/source/worker-data.js';

/** How long the warm-ups may take before they are asked to stop (they take ~0.3 s). */
const WARM_UP_MS = 10_000;
/** How long threads asked to stop may take to let go of the accelerator. */
const STOP_GRACE_MS = 3000;

export class ChannelWarmUp {
  private count: WarmUpCount | null = null;
  private finished: Promise<void> = Promise.resolve();

  /**
   * Open an accelerator on the first work queue of `devices()` (the process's emulated DSA),
   * with room for `channels` channel threads' requests, tell the idle channel threads of `pool`
   * to warm up on it, and close it once they are done. Never rejects: without it the code
   * compiles inside a migration. Settles once the accelerator is closed.
   */
  start(pool: WorkerPool, devices: () => Promise<DsaEmu>, channels: number): Promise<void> {
    const count = new WarmUpCount();
    this.count = count;
    this.finished = (async () => {
      let accel: Accelerator;
      try {
        accel = await openAccelerator([DEFAULT_ACCEL_PATH], {
          devices: await devices(),
          maxPages: WARM_UP_PACKET_PAGES,
          slots: channels * (channelDepth('dsa-accel') + 1),
          // Completions through its dsa_completion thread: one interrupt handle, not one per
          // slot. The device's handles are shared by every accelerator of the process, and
          // those of a migration started meanwhile must not run out.
          completion: 'thread',
          // no `threads`: it starts a dsa_completion of its own; the pool's is the next migration's
        });
      } catch {
        return;
      }
      let told = 0;
      if (!count.stopAsked) {
        const message: SendWorkerCommand = {
          type: 'warm-accel',
          accel: accel.handle,
          count: count.buffer,
        };
        told = pool.postIdle(SEND_WORKER, message);
      }
      if (!(await count.allDone(told, WARM_UP_MS))) {
        count.askStop();
        await count.allDone(told, STOP_GRACE_MS);
      }
      await accel.close().catch(() => {});
    })();
    return this.finished;
  }

  /** Stop the warm-ups, and settle once their accelerator is closed. */
  stop(): Promise<void> {
    this.count?.askStop();
    return this.finished;
  }
}
