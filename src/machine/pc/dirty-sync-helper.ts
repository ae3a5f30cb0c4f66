// dirty_sync_1: the dirty_sync thread's helper. When dirty_sync hands out a job (the guest has
// stopped, sync-split.ts), it syncs its share of RAM (every other 1 MiB stripe: mirror-sync.ts)
// into the shared mirror, and says how many pages changed. It does nothing else.

import { parentPort, workerData } from 'node:worker_threads';
import { publishThreadCpu, resetThreadCpu } from '../../util/cpu-slots.js';
import { threadCpuMs } from '../../util/thread-cpu.js';
import { nameThread } from '../../util/thread-priority.js';
import { guestRamView, syncMirrorPart } from './mirror-sync.js';
import type { DirtySyncRequest, DirtySyncWorkerData } from './pc-config.js';
import { SPLIT, SyncSplit } from './sync-split.js';

const d = workerData as DirtySyncWorkerData;
const mirror = Buffer.from(d.mirror.ram, d.mirror.base, d.mirror.size);
const dirty = new Int32Array(d.mirror.dirty);
const mirrorZero = new Uint8Array(d.mirrorZero);
const split = new SyncSplit(d.split);
let guest: Buffer | null = null;
/** The last job done: one handed out before this thread started is done at once. */
let lastJob = split.lastDone;

function serve(): void {
  const job = split.requested;
  if (guest !== null && job !== lastJob) {
    lastJob = job;
    const cpu0 = threadCpuMs();
    const pages = syncMirrorPart(guest, mirror, dirty, mirrorZero, 1, 2);
    split.finish(job, pages, (threadCpuMs() - cpu0) * 1000);
    publishThreadCpu(d.cpuSlots, d.cpuSlot);
    setImmediate(serve);
    return;
  }
  const r = Atomics.waitAsync(split.words, SPLIT.request, job);
  void (r.async ? r.value : Promise.resolve()).then(serve);
}

// The vCPU thread's emulator memory: its buffer and where guest RAM starts in it.
parentPort!.on('message', (m: DirtySyncRequest) => (guest = guestRamView(m, d.mirror.size)));

nameThread('dirty_sync_1');
resetThreadCpu();
// Published at once: a migration's figures then count only its jobs, not this thread's start.
publishThreadCpu(d.cpuSlots, d.cpuSlot);
serve();
