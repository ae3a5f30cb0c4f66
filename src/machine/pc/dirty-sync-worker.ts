// dirty_sync of a PC machine: serves the dirty syncs a migration asks for (the VCPU words'
// tickets, src/ram/vcpu-control.ts) by comparing guest RAM with the mirror the engine sends from
// (mirror-sync.ts): the pages the write log marked (write-log.ts), or all of RAM for the first
// sync of an emulator (or after a migration came in) and for the refresh between migrations.
// Guest RAM is v86's memory made shared (shared-wasm-memory.ts), so this runs beside the vCPU
// thread instead of inside it: the guest keeps running while a sync reads RAM.
//
// A sync that reads a page while the guest writes it may copy a torn page into the mirror; the
// page differs from the guest's then, so the next sync copies and flags it again, and the last
// sync runs with the vCPU stopped. Pages are sent from the mirror, never from guest RAM, so what
// the destination gets is always what some sync saw: a page that changes and changes back
// between two syncs is never left stale on the destination.
//
// A sync with the guest stopped (the last one of a switchover, inside the downtime) is split:
// a helper thread (dirty-sync-helper.ts) takes every other stripe of RAM (sync-split.ts).

import { parentPort, workerData } from 'node:worker_threads';
import { VCPU, VcpuControl } from '../../ram/vcpu-control.js';
import { publishThreadCpu, resetThreadCpu } from '../../util/cpu-slots.js';
import { threadCpuMs } from '../../util/thread-cpu.js';
import { nameThread } from '../../util/thread-priority.js';
import { guestRamView, syncLoggedPages, syncMirror, syncMirrorPart } from './mirror-sync.js';
import { WriteLog } from './write-log.js';
import type { DirtySyncRequest, DirtySyncWorkerData } from './pc-config.js';
import { SyncSplit } from './sync-split.js';

const d = workerData as DirtySyncWorkerData;
const vcpu = new VcpuControl(d.control);
const mirror = Buffer.from(d.mirror.ram, d.mirror.base, d.mirror.size);
const dirty = new Int32Array(d.mirror.dirty);
/** which 64 KiB chunks of the mirror are known to be zero (mirror-sync.ts; shared with the helper) */
const mirrorZero = new Uint8Array(d.mirrorZero);
const split = new SyncSplit(d.split);
/**
 * How long the helper may take with its part before this thread syncs it too. A helper that
 * wakes late and syncs the same part again does no harm: both copy guest RAM into the mirror and
 * set bits, and a chunk's zero flag only ever goes from 1 to 0.
 */
const HELPER_TIMEOUT_MS = 1000;
/** guest RAM, once the vCPU thread has built its emulator (and again if it builds a new one) */
let guest: Buffer | null = null;
/** the emulator's write log (write-log.ts), when it has one */
let log: WriteLog | null = null;
/**
 * a full sync has run since guest RAM's place was last given (a new emulator, or a migration
 * that came in): from then on a sync need only read what the log marks
 */
let logSynced = false;
let lastSyncAt = 0;

/**
 * A sync is due at least this often while the guest runs and no migration asks for one: a
 * migration's first sync then copies only what changed lately, not every page the guest ever
 * wrote (first writes to the mirror's fresh memory fault).
 */
const REFRESH_MS = 1000;

/** The write log, unless the vCPU thread has lost it since (module-rewrite.ts). */
function usableLog(): WriteLog | null {
  return log !== null && Atomics.load(vcpu.words, VCPU.writeLogLost) === 0 ? log : null;
}

/**
 * One dirty sync. A full one compares all of guest RAM with the mirror; otherwise, once a full
 * one has run with the log on, only the pages the log marked are compared.
 */
function sync(ram: Buffer, full: boolean): void {
  const upTo = vcpu.takeSyncTickets();
  const t0 = performance.now();
  const cpu0 = threadCpuMs();
  const writeLog = usableLog();
  const logged = writeLog !== null && logSynced && !full;
  let pages: number;
  let helperCpuMicros = 0;
  if (logged) {
    pages = syncLoggedPages(ram, mirror, dirty, mirrorZero, writeLog);
  } else {
    writeLog?.clear(); // before the comparison (write-log.ts)
    ({ pages, helperCpuMicros } = compareAll(ram));
    logSynced = writeLog !== null;
  }
  const t1 = performance.now();
  lastSyncAt = t1;
  // What the sync cost: its time, and the CPU of the threads that did it (the vCPU's is none).
  const cpuMicros = (threadCpuMs() - cpu0) * 1000 + helperCpuMicros;
  vcpu.finishSync(upTo, pages, (t1 - t0) * 1000, cpuMicros, logged);
  publishThreadCpu(d.cpuSlots, d.cpuSlot);
}

/** A full sync: this thread alone while the guest runs, with the helper once it has stopped. */
function compareAll(ram: Buffer): { pages: number; helperCpuMicros: number } {
  if (vcpu.runRequested)
    return { pages: syncMirror(ram, mirror, dirty, mirrorZero), helperCpuMicros: 0 };
  // The guest is stopped: its core is free, and the sync is part of the downtime.
  const job = split.handOut();
  let pages = syncMirrorPart(ram, mirror, dirty, mirrorZero, 0, 2);
  const helper = split.awaitJob(job, HELPER_TIMEOUT_MS);
  if (helper) return { pages: pages + helper.pages, helperCpuMicros: helper.cpuMicros };
  pages += syncMirrorPart(ram, mirror, dirty, mirrorZero, 1, 2);
  return { pages, helperCpuMicros: 0 };
}

/** Serve the tickets taken; between tickets, keep the mirror warm while the guest runs. */
function serve(): void {
  // Read before the check: a ticket taken after it ends the wait below at once.
  const seen = Atomics.load(vcpu.words, VCPU.syncRequest);
  if (guest !== null && vcpu.syncPending) {
    sync(guest, false);
    setImmediate(serve);
    return;
  }
  const r = Atomics.waitAsync(vcpu.words, VCPU.syncRequest, seen, REFRESH_MS);
  void (r.async ? r.value : Promise.resolve()).then(() => {
    const due = vcpu.runRequested && performance.now() - lastSyncAt > REFRESH_MS;
    // The refresh is a full sync: it would find writes the log missed, were there any.
    if (guest !== null && due && !vcpu.syncPending) sync(guest, true);
    serve();
  });
}

// The vCPU thread's emulator memory: its buffer and where guest RAM starts in it.
parentPort!.on('message', (m: DirtySyncRequest) => {
  guest = guestRamView(m, d.mirror.size);
  log = m.log >= 0 ? new WriteLog(m.ram, m.log, m.base, d.mirror.size) : null;
  logSynced = false;
});

nameThread('dirty_sync');
// The mirror's pages that the guest never wrote are never read: a sync reads guest RAM for them,
// and pass 1 sends them unread (src/ram/known-zero.ts).
resetThreadCpu();
// Published at once: a migration's figures then count only its syncs, not this thread's start.
publishThreadCpu(d.cpuSlots, d.cpuSlot);
serve();
