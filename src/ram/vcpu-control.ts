// The shared words through which the main thread and live_migration drive the vCPU thread, the
// synthetic workload's and the PC's alike.
//
// Who writes what, in which order (every write is an Atomics store or add, then a notify on the
// same word):
// - request: the main thread (run, stop, quit) and live_migration (SWITCHOVER: stop for good
//   unless the migration fails; a machine whose device state is its own saves it at once).
// - ack: the vCPU thread only. 1 once it runs; 0 once it has stopped writing guest RAM after a
//   request other than RUN. A stopped vCPU writes no RAM and changes no device state.
// - throttle: live_migration (auto-converge), and the main thread (0 when a migration ends).
// - syncRequest: anyone who needs a dirty sync (live_migration before each pass, the main thread
//   for a digest): Atomics.add 1; the value after the add is its ticket.
// - syncPages, syncMicros, syncCpuMicros, syncLogged, then syncDone: the thread that serves syncs (the PC's
//   dirty_sync, pc/dirty-sync-worker.ts, beside its vCPU thread). Before a sync it reads
//   syncRequest (R); it compares guest RAM with the engine's RAM blocks, copies the pages that
//   changed and sets their dirty bits, writes syncPages, syncMicros and syncCpuMicros, then
//   stores syncDone = R. A ticket T
//   is served once syncDone >= T: that sync started after T was taken. Machines whose vCPU sets
//   dirty bits as it writes (the synthetic workload) never see a syncRequest.
// - position, loops, written: the synthetic workload's own state, written when it stops.
// - writeLogLost: a PC's vCPU thread, once a module of v86 could not be rewritten to mark its
//   writes (pc/module-rewrite.ts); dirty_sync then compares all of RAM at every sync.

export const VCPU = {
  /** requested state: RUN, STOP or QUIT */
  request: 0,
  /** acknowledged state: 1 while the vCPU runs, 0 once it has stopped writing */
  ack: 1,
  /** synthetic workload position (index into its page range); written when the vCPU stops */
  position: 2,
  /** synthetic workload: completed loops over the range (informational) */
  loops: 3,
  /** synthetic workload: pages written since start (informational; wraps) */
  written: 4,
  /** auto-converge: % of the vCPU's time taken away (0 = not throttled) */
  throttle: 5,
  /** dirty-sync tickets handed out (see above) */
  syncRequest: 6,
  /** the last ticket a finished dirty sync served */
  syncDone: 7,
  /** pages the last dirty sync found changed */
  syncPages: 8,
  /** how long the last dirty sync took, µs */
  syncMicros: 9,
  /** the CPU time the last dirty sync took, µs (all its threads together) */
  syncCpuMicros: 10,
  /** a PC's vCPU thread: 1 once its write log is lost (pc/write-log.ts); never back to 0 */
  writeLogLost: 11,
  /** 1 if the last dirty sync read only the pages a write log marked (the PC's), else 0 */
  syncLogged: 12,
  size: 16,
} as const;

export const REQ_STOP = 0;
export const REQ_RUN = 1;
export const REQ_QUIT = 2;
/** Stop at a migration's switchover: as STOP, and the device state is saved at once. */
export const REQ_SWITCHOVER = 3;

export type VcpuRequest =
  typeof REQ_STOP | typeof REQ_RUN | typeof REQ_QUIT | typeof REQ_SWITCHOVER;

/** Named operations on the VCPU words; every thread that shares them uses this class. */
export class VcpuControl {
  readonly words: Int32Array;

  constructor(readonly buffer: SharedArrayBuffer = new SharedArrayBuffer(4 * VCPU.size)) {
    this.words = new Int32Array(buffer);
  }

  get requested(): number {
    return Atomics.load(this.words, VCPU.request);
  }

  /** The vCPU is asked to run (it may not have noticed yet). */
  get runRequested(): boolean {
    return this.requested === REQ_RUN;
  }

  /** The vCPU thread has acknowledged running (1) or stopping (0). */
  get acknowledged(): number {
    return Atomics.load(this.words, VCPU.ack);
  }

  request(req: VcpuRequest): void {
    Atomics.store(this.words, VCPU.request, req);
    Atomics.notify(this.words, VCPU.request);
  }

  /** vCPU thread: say whether it now runs (1) or has stopped writing (0). */
  acknowledge(running: 0 | 1): void {
    if (Atomics.load(this.words, VCPU.ack) === running) return;
    Atomics.store(this.words, VCPU.ack, running);
    Atomics.notify(this.words, VCPU.ack);
  }

  /** Block until the vCPU has stopped writing; `check` runs between waits (may throw). */
  waitStopped(check: () => void = () => {}, sliceMs = 100): void {
    while (Atomics.load(this.words, VCPU.ack) !== 0) {
      check();
      Atomics.wait(this.words, VCPU.ack, 1, sliceMs);
    }
  }

  async waitStoppedAsync(sliceMs = 1000): Promise<void> {
    while (Atomics.load(this.words, VCPU.ack) !== 0) {
      const r = Atomics.waitAsync(this.words, VCPU.ack, 1, sliceMs);
      if (r.async) await r.value;
    }
  }

  get throttle(): number {
    return Atomics.load(this.words, VCPU.throttle);
  }

  set throttle(percent: number) {
    Atomics.store(this.words, VCPU.throttle, percent);
  }

  /** Ask the vCPU thread for a dirty sync; returns the ticket to wait for. */
  requestSync(): number {
    const ticket = Atomics.add(this.words, VCPU.syncRequest, 1) + 1;
    Atomics.notify(this.words, VCPU.syncRequest);
    return ticket;
  }

  /** The ticket has been served: a sync that started after it was taken has finished. */
  syncServed(ticket: number): boolean {
    return Atomics.load(this.words, VCPU.syncDone) - ticket >= 0;
  }

  /** Block until `ticket` is served; `check` runs between waits (may throw to give up). */
  waitSync(ticket: number, check: () => void = () => {}, sliceMs = 100): void {
    for (;;) {
      const done = Atomics.load(this.words, VCPU.syncDone);
      if (done - ticket >= 0) return;
      check();
      Atomics.wait(this.words, VCPU.syncDone, done, sliceMs);
    }
  }

  async waitSyncAsync(ticket: number, sliceMs = 1000): Promise<void> {
    for (;;) {
      const done = Atomics.load(this.words, VCPU.syncDone);
      if (done - ticket >= 0) return;
      const r = Atomics.waitAsync(this.words, VCPU.syncDone, done, sliceMs);
      if (r.async) await r.value;
    }
  }

  /** sync thread: a sync is wanted when a ticket newer than the last served one exists. */
  get syncPending(): boolean {
    return Atomics.load(this.words, VCPU.syncRequest) !== Atomics.load(this.words, VCPU.syncDone);
  }

  /** sync thread: the newest ticket; a sync that starts now serves it and every older one. */
  takeSyncTickets(): number {
    return Atomics.load(this.words, VCPU.syncRequest);
  }

  /** sync thread: publish a finished sync's figures, then serve `upTo`. */
  finishSync(
    upTo: number,
    pages: number,
    wallMicros: number,
    cpuMicros: number,
    logged = false,
  ): void {
    Atomics.store(this.words, VCPU.syncPages, pages);
    Atomics.store(this.words, VCPU.syncLogged, logged ? 1 : 0);
    Atomics.store(this.words, VCPU.syncMicros, micros(wallMicros));
    Atomics.store(this.words, VCPU.syncCpuMicros, micros(cpuMicros));
    Atomics.store(this.words, VCPU.syncDone, upTo);
    Atomics.notify(this.words, VCPU.syncDone);
  }

  /** What the last dirty sync found and cost. */
  lastSync(): { pages: number; micros: number; cpuMicros: number; logged: boolean } {
    return {
      logged: Atomics.load(this.words, VCPU.syncLogged) === 1,
      pages: Atomics.load(this.words, VCPU.syncPages),
      micros: Atomics.load(this.words, VCPU.syncMicros),
      cpuMicros: Atomics.load(this.words, VCPU.syncCpuMicros),
    };
  }
}

export interface WorkloadSpec {
  kind: 'none' | 'stress';
  /** dirty rate cap in MB/s (10^6 bytes of dirtied pages per second); 0 = uncapped */
  mbps: number;
  /** first page of the range, counted over all blocks */
  startPage: number;
  pages: number;
}

/** Device state moved at switchover, so the destination's vCPU resumes where the source stopped. */
export interface VcpuState {
  workload: WorkloadSpec;
  position: number;
  loops: number;
}

/** Parse `none`, `stress` or `stress:MBPS`; the range follows QEMU's migration-test guest. */
export function parseWorkload(text: string, ramBytes: number): WorkloadSpec {
  const m = /^(none|stress)(?::(\d+(?:\.\d+)?))?$/.exec(text);
  if (!m || (m[1] === 'none' && m[2] !== undefined)) {
    throw new Error(`invalid workload '${text}': expected none, stress or stress:MBPS`);
  }
  const totalPages = Math.floor(ramBytes / 4096);
  // QEMU's migration-test guest increments a byte in each page of 100 MB starting at 1 MB.
  const start = totalPages > 512 ? 256 : 0;
  const pages = Math.max(1, Math.min(25600, totalPages - start));
  return {
    kind: m[1] as 'none' | 'stress',
    mbps: m[2] ? Number(m[2]) : 0,
    startPage: start,
    pages,
  };
}

/** A duration in µs as an Int32 word: whole, not negative; NaN (no /proc) is 0. */
export function micros(us: number): number {
  return Number.isFinite(us) ? Math.min(0x7fffffff, Math.max(0, Math.round(us))) : 0;
}
