// The `dsa_completion` thread of a hardware accelerator (kernel idxd work queues).
//
// User space gets no completion interrupt from DSA, so this thread waits on the completion
// records themselves, in native code (src/accel/hw/addon.ts `waitAny`). By default ('sleep') it
// sleeps through most of the time a request is expected to take (completion-latency.ts), then
// looks in growing steps; 'umwait' (UMONITOR/UMWAIT in ~10 µs slices) and 'pause' (a pause loop
// backing off to short sleeps) answer sooner but keep the thread on a core while anything is in
// flight (LIVEMIG_DSA_WAIT, completion-shared.ts). When every record a slot watches is written, it marks the slot COMPLETED and wakes the
// owning channel (Atomics.notify on the slot's word), as the emulated device's 'thread' mode
// does; when a WQ failed for good (src/accel/hw/wq.ts haltHwWq), it marks that WQ's in-flight
// slots HALTED so their channels fall back to the CPU at once. Each round it also looks for
// halts the portal path cannot see (src/accel/hw/wq-monitor.ts: poll() on the WQ fds, sysfs
// `state` on trouble) and gives back the slots and credits of a WQ that stopped for good.
//
// It runs only while requests are in flight: with none, it sleeps in Atomics.wait and a
// submitter wakes it (A_HW_SLEEPING). The CPU it burns while waiting is measured like every
// livemig thread's (/proc/thread-self/schedstat) and reported as `dsa_completion`.

import { parentPort } from 'node:worker_threads';
import {
  A_IRQ,
  ArenaView,
  M_NSUB,
  M_STATE,
  M_WATCH,
  SLOT_COMPLETED,
  SLOT_SUBMITTED,
} from '../arena.js';
import { CompletionThread } from '../completion-thread.js';
import { reclaimStoppedSlots } from '../slots.js';
import { loadAddon } from './addon.js';
import {
  A_HW_KICK,
  A_HW_SLEEPING,
  M_HW_SEQ,
  WAIT_METHOD,
  type HwCompletionWorkerData,
} from './completion-shared.js';
import { CompletionLatency } from './completion-latency.js';
import { WqMonitor } from './wq-monitor.js';
import { nameThread } from '../../util/thread-priority.js';

/** Longest native wait before looking at shutdown and CPU-report requests again. */
const SLICE_US = 1000;

function run(data: HwCompletionWorkerData): void {
  nameThread('dsa_completion');
  const native = loadAddon();
  if (!native) throw new Error('dsa_completion: the native addon is not available');
  const a = new ArenaView(data.arena, data.layout);
  const w = a.i32;
  const states = data.wqs.map((q) => new Int32Array(q.state));
  const devices = states.map((words) => ({ words }));
  const t = new CompletionThread(a, states);
  const monitor = new WqMonitor(data.wqs, native);
  const slots = data.layout.slots;
  const cursor = new Int32Array(slots);
  const seqSeen = new Int32Array(slots).fill(-1);
  // Status-byte offsets to wait on: the first pending record of each slot, then the kick word.
  const offsets = new Int32Array(slots + 1);
  const method = WAIT_METHOD[data.wait];
  const latency = new CompletionLatency(slots);
  /** The shortest expected sleep over the slots the last scan found pending (µs). */
  let sleepUs = Infinity;

  /** Finish what is done; put the first pending record of each in-flight slot in `offsets`. */
  const scan = (): number => {
    let n = 0;
    const now = performance.now();
    sleepUs = Infinity;
    for (let s = 0; s < slots; s++) {
      if (Atomics.load(w, a.meta(s, M_STATE)) !== SLOT_SUBMITTED) continue;
      const seq = Atomics.load(w, a.meta(s, M_HW_SEQ));
      if (seq !== seqSeen[s]) {
        seqSeen[s] = seq;
        cursor[s] = 0;
        latency.start(s, now);
      }
      if (t.haltIfStopped(s)) {
        latency.forget(s);
        continue;
      }
      const nsub = Atomics.load(w, a.meta(s, M_NSUB));
      const k = (cursor[s] = a.firstPending(s, cursor[s], nsub));
      if (k >= nsub) {
        t.end(s, SLOT_COMPLETED);
        latency.done(s, now);
        continue;
      }
      // Records complete about in order: wait for the last one (one wake-up per request
      // rather than one per record); the next scan finds any that are still missing.
      const lastRec = Atomics.load(w, a.meta(s, M_WATCH + nsub - 1));
      const target =
        (Atomics.load(w, lastRec) & 0xff) === 0 ? lastRec : Atomics.load(w, a.meta(s, M_WATCH + k));
      offsets[n++] = target * 4;
      sleepUs = Math.min(sleepUs, latency.sleepUs(s, now));
    }
    return n;
  };

  t.run((seen) => {
    monitor.check(performance.now());
    if (monitor.anyStopped) reclaimStoppedSlots(a, devices);
    Atomics.store(w, A_HW_KICK, 0);
    const pending = scan();
    if (pending > 0) {
      // A new submission sets the kick word: wait on it too, so its slot joins the list.
      offsets[pending] = A_HW_KICK * 4;
      native.waitAny(w, offsets, pending + 1, SLICE_US, method, Math.min(sleepUs, SLICE_US));
      return;
    }
    Atomics.store(w, A_HW_SLEEPING, 1);
    Atomics.wait(w, A_IRQ, seen);
    Atomics.store(w, A_HW_SLEEPING, 0);
  });
}

// Bound by a message, as the emulated device's dsa_completion is (a pooled thread can serve).
parentPort!.once('message', (m: { type: 'bind'; data: HwCompletionWorkerData }) => run(m.data));
