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
  A_COMPLETION_HANDLED,
  A_IRQ,
  A_SHUTDOWN,
  ArenaView,
  M_DEVICE,
  M_EPOCH,
  M_IRQ,
  M_NSUB,
  M_STATE,
  M_WATCH,
  SLOT_COMPLETED,
  SLOT_HALTED,
  SLOT_SUBMITTED,
  type ArenaLayout,
} from './arena.js';
import { C_EPOCH, C_STATE, DevState } from './dsa/emu/registers.js';
import { CompletionCpu } from './completion-cpu.js';

export interface CompletionWorkerData {
  arena: SharedArrayBuffer;
  layout: ArenaLayout;
  mode: 'direct' | 'thread';
  /** Register files of the devices, by arena device index. */
  devices: SharedArrayBuffer[];
}

function run(data: CompletionWorkerData): void {
  const a = new ArenaView(data.arena, data.layout);
  const w = a.i32;
  const devWords = data.devices.map((r) => new Int32Array(r));
  const thread = data.mode === 'thread';
  const cpu = new CompletionCpu(a);

  function wake(slot: number): void {
    Atomics.add(w, A_COMPLETION_HANDLED, 1);
    const irq = a.meta(slot, M_IRQ);
    Atomics.add(w, irq, 1);
    Atomics.notify(w, irq);
  }

  function scan(): void {
    const slots = data.layout.slots;
    for (let s = 0; s < slots; s++) {
      const st = a.meta(s, M_STATE);
      if (Atomics.load(w, st) !== SLOT_SUBMITTED) continue;
      const dw = devWords[Atomics.load(w, a.meta(s, M_DEVICE))];
      if (
        dw &&
        (Atomics.load(dw, C_STATE) !== DevState.ENABLED ||
          Atomics.load(dw, C_EPOCH) !== Atomics.load(w, a.meta(s, M_EPOCH)))
      ) {
        if (Atomics.compareExchange(w, st, SLOT_SUBMITTED, SLOT_HALTED) === SLOT_SUBMITTED) wake(s);
        continue;
      }
      if (!thread) continue;
      const nsub = Atomics.load(w, a.meta(s, M_NSUB));
      let done = true;
      for (let k = 0; k < nsub; k++) {
        if ((Atomics.load(w, Atomics.load(w, a.meta(s, M_WATCH + k))) & 0xff) === 0) {
          done = false;
          break;
        }
      }
      if (
        done &&
        Atomics.compareExchange(w, st, SLOT_SUBMITTED, SLOT_COMPLETED) === SLOT_SUBMITTED
      ) {
        wake(s);
      }
    }
  }

  cpu.start();
  for (;;) {
    const seen = Atomics.load(w, A_IRQ);
    if (Atomics.load(w, A_SHUTDOWN)) break;
    cpu.serve();
    scan();
    Atomics.wait(w, A_IRQ, seen);
  }
  cpu.stop();
}

// Bound by a message rather than workerData, so that a pooled thread (src/util/worker-pool.ts),
// started before `migrate`, can serve the accelerator opened then.
parentPort!.once('message', (m: { type: 'bind'; data: CompletionWorkerData }) => run(m.data));
