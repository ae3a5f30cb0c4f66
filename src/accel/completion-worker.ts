// The `dsa_completion` thread: the driver's interrupt handler.
//
// It sleeps in Atomics.wait on one interrupt word of the arena, which IMS entries of every
// device point at, and never polls. When woken it scans the in-flight descriptor slots:
// - a slot whose device has halted (or was reset) is marked HALTED and its owner woken, so
//   the channel falls back to the CPU at once instead of waiting for its deadline;
// - in 'thread' completion mode, a slot whose completion records are all written is marked
//   COMPLETED and its owner woken (QEMU's design: the completion thread wakes the channel).
// In the default 'direct' mode the descriptors' completion interrupts go straight to the
// owning slot's word (per-slot IMS entries), so this thread only runs on device errors: a
// wake-up costs ~7 µs of CPU, which per 128-page batch would be far above the 5% budget.

import { parentPort } from 'node:worker_threads';
import {
  A_IRQ,
  ArenaView,
  M_NSUB,
  M_STATE,
  SLOT_COMPLETED,
  SLOT_SUBMITTED,
  type ArenaLayout,
} from './arena.js';
import { CompletionThread } from './completion-thread.js';
import { nameThread } from '../util/thread-priority.js';

export interface CompletionWorkerData {
  arena: SharedArrayBuffer;
  layout: ArenaLayout;
  mode: 'direct' | 'thread';
  /** Register files of the devices, by arena device index. */
  devices: SharedArrayBuffer[];
}

function run(data: CompletionWorkerData): void {
  nameThread('dsa_completion');
  const a = new ArenaView(data.arena, data.layout);
  const w = a.i32;
  const thread = data.mode === 'thread';
  const t = new CompletionThread(
    a,
    data.devices.map((r) => new Int32Array(r)),
  );

  function scan(): void {
    for (let s = 0; s < data.layout.slots; s++) {
      if (Atomics.load(w, a.meta(s, M_STATE)) !== SLOT_SUBMITTED || t.haltIfStopped(s)) continue;
      const nsub = Atomics.load(w, a.meta(s, M_NSUB));
      if (thread && a.firstPending(s, 0, nsub) === nsub) t.end(s, SLOT_COMPLETED);
    }
  }

  t.run((seen) => {
    scan();
    Atomics.wait(w, A_IRQ, seen);
  });
}

// Bound by a message rather than workerData, so that a pooled thread (src/util/worker-pool.ts),
// started before `migrate`, can serve the accelerator opened then.
parentPort!.once('message', (m: { type: 'bind'; data: CompletionWorkerData }) => run(m.data));
