// What an outgoing migration measures, and query-migrate's answer assembled from it: bytes and
// pages per channel (shared with the multifdsend_N threads), passes, downtime, the monotone
// progress figure, what the dirty syncs cost, and each thread's CPU.

import type { GuestMachine } from '../../machine/guest-machine.js';
import type { MigrationCapabilities, MigrationParameters } from '../parameters.js';
import type { CpuRegistry } from '../../util/cpu-slots.js';
import type { MigrationStatus } from '../status.js';
import { PAGE_SIZE, sessionHex } from '../protocol.js';
import { pagesOf } from '../../ram/layout.js';
import { CHAN_STAT } from './channel-slots.js';
import type { SourceWorkerMessage } from './worker-data.js';
import type { AcceleratorFigures } from './accelerator-figures.js';

/** what query-migrate says of x-verify-ram */
export type VerifyState = 'off' | 'pending' | 'ok' | 'mismatch';

/** Threads of the machine, not of a migration: reported for the time of the migration. */
const MACHINE_THREADS = ['vcpu_0', 'dirty_sync', 'dirty_sync_1'];

export class SourceFigures {
  setupMs = 0;
  endedAt = 0;
  stoppedAt = 0;
  downtimeMs: number | undefined;
  expectedDowntimeMs = 0;
  passes = 0;
  lastPass: Extract<SourceWorkerMessage, { type: 'pass' }> | undefined;
  finalBytesBefore = 0;
  mainBytes = 0;
  /** written by the multifdsend_N threads: CHAN_STAT per channel */
  readonly chanStats: SharedArrayBuffer;
  private readonly chanStatsView: Float64Array;
  /** livemig's monotone progress, in % */
  private progress = 0;
  /** content-sync machines: what the dirty syncs cost */
  private readonly syncs = {
    count: 0,
    totalMs: 0,
    maxMs: 0,
    lastMs: 0,
    cpuMs: 0,
    cpuMaxMs: 0,
    pages: 0,
    logged: 0,
  };
  /** the machine's own threads live on between migrations: their CPU ms at this one's start */
  private readonly machineCpuBase: Record<string, number>;

  constructor(
    private readonly guest: GuestMachine,
    private readonly params: MigrationParameters,
    private readonly caps: MigrationCapabilities,
    private readonly cpu: CpuRegistry,
    private readonly session: Buffer,
    private readonly channels: number,
    /** the threads' names, as they are started */
    private readonly threadNames: readonly string[],
    private readonly accel: AcceleratorFigures | undefined,
    private readonly startedAt: number,
  ) {
    this.chanStats = new SharedArrayBuffer(8 * CHAN_STAT.size * channels);
    this.chanStatsView = new Float64Array(this.chanStats);
    this.machineCpuBase = cpu.snapshot(MACHINE_THREADS);
  }

  /** CPU ms of the machine's threads (vCPU, the PC's dirty sync) during this migration. */
  private machineCpu(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.cpu.snapshot(MACHINE_THREADS))) {
      out[k] = Math.round((v - (this.machineCpuBase[k] ?? 0)) * 10) / 10;
    }
    return out;
  }

  dirtySync(m: Extract<SourceWorkerMessage, { type: 'dirty-sync' }>): void {
    this.syncs.count++;
    this.syncs.totalMs += m.ms;
    this.syncs.maxMs = Math.max(this.syncs.maxMs, m.ms);
    this.syncs.lastMs = m.ms;
    this.syncs.cpuMs += m.cpuMs;
    this.syncs.cpuMaxMs = Math.max(this.syncs.cpuMaxMs, m.cpuMs);
    this.syncs.pages += m.pages;
    if (m.logged) this.syncs.logged++;
  }

  transferred(): number {
    let t = this.mainBytes;
    for (let c = 0; c < this.channels; c++)
      t += this.chanStatsView[c * CHAN_STAT.size + CHAN_STAT.bytes];
    return t;
  }

  /** query-migrate's answer */
  info(
    status: MigrationStatus,
    errorDesc: string | undefined,
    verify: VerifyState,
  ): Record<string, unknown> {
    const finished = ['completed', 'failed', 'cancelled'].includes(status);
    const nowMs = this.endedAt || Date.now();
    const total = this.guest.ramBytes;
    let normal = 0;
    let zero = 0;
    let multifd = 0;
    for (let c = 0; c < this.channels; c++) {
      const base = c * CHAN_STAT.size;
      normal += this.chanStatsView[base + CHAN_STAT.normal];
      zero += this.chanStatsView[base + CHAN_STAT.zero];
      multifd += this.chanStatsView[base + CHAN_STAT.bytes];
    }
    const transferred = this.transferred();
    const elapsed = Math.max(1, nowMs - this.startedAt);
    const totalPages = this.guest.blocks.reduce((s, b) => s + pagesOf(b.size), 0);
    let remainingPages = this.lastPass ? this.lastPass.remainingPages : totalPages - normal - zero;
    if (status === 'completed') remainingPages = 0;
    const bw = this.lastPass ? this.lastPass.bandwidth : transferred / (elapsed / 1000);
    const ram: Record<string, unknown> = {
      transferred,
      remaining: Math.max(0, remainingPages) * PAGE_SIZE,
      total,
      duplicate: zero,
      normal,
      'normal-bytes': normal * PAGE_SIZE,
      'dirty-pages-rate': Math.round(this.lastPass?.dirtyPagesRate ?? 0),
      mbps: Math.round(((transferred * 8) / 1e6 / (elapsed / 1000)) * 100) / 100,
      'dirty-sync-count': this.passes,
      'postcopy-requests': 0,
      'page-size': PAGE_SIZE,
      'multifd-bytes': this.caps.multifd ? multifd : 0,
      'pages-per-second': Math.round(((normal + zero) * 1000) / elapsed),
      'precopy-bytes': this.stoppedAt ? this.finalBytesBefore : transferred,
      'downtime-bytes': this.stoppedAt ? transferred - this.finalBytesBefore : 0,
      'postcopy-bytes': 0,
    };
    const out: Record<string, unknown> = {
      status,
      'setup-time': this.setupMs,
      'total-time': nowMs - this.startedAt,
      ram,
    };
    if (this.caps['auto-converge']) {
      out['cpu-throttle-percentage'] = finished ? 0 : (this.lastPass?.throttle ?? 0);
    }
    // remaining can grow when the guest dirties pages; the progress figure never goes back.
    const pct = status === 'completed' ? 100 : 100 * (1 - Number(ram.remaining) / total);
    this.progress = Math.max(this.progress, Math.floor(pct * 10) / 10);
    if (this.downtimeMs !== undefined) out.downtime = Math.round(this.downtimeMs);
    else out['expected-downtime'] = Math.round(this.expectedDowntimeMs);
    if (errorDesc) out['error-desc'] = errorDesc;
    out.livemig = {
      session: sessionHex(this.session),
      progress: this.progress,
      channels: this.channels,
      machine: this.guest.type,
      'zero-page-detection': this.caps.multifd ? this.params['zero-page-detection'] : 'legacy',
      'downtime-precise': this.downtimeMs,
      'bandwidth-bytes-per-second': Math.round(bw),
      verify,
      'thread-cpu-ms': {
        ...this.cpu.snapshot(['main', 'live_migration', ...this.threadNames]),
        ...this.machineCpu(),
        ...this.accel?.cpu,
      },
    };
    if (this.guest.dirtyTracking === 'content-sync') {
      const round = (ms: number): number => Math.round(ms * 100) / 100;
      (out.livemig as Record<string, unknown>)['dirty-sync'] = {
        // dirty_sync compares guest RAM with the mirror the engine sends from: what that cost
        count: this.syncs.count,
        'total-ms': round(this.syncs.totalMs),
        'max-ms': round(this.syncs.maxMs),
        'last-ms': round(this.syncs.lastMs),
        // the CPU of the threads that compared (dirty_sync, and dirty_sync_1 once the guest stopped)
        'cpu-total-ms': round(this.syncs.cpuMs),
        'cpu-max-ms': round(this.syncs.cpuMaxMs),
        'pages-found': this.syncs.pages,
        // syncs that read only the pages the PC's write log marked, not all of RAM
        logged: this.syncs.logged,
      };
    }
    if (this.accel) {
      const lm = out.livemig as Record<string, unknown>;
      lm.accelerator = this.accel.report();
    }
    return out;
  }
}
