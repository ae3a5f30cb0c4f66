// What the main thread hands to the source's worker threads (structured-cloneable).

import type { RamBlockDesc } from '../../ram/layout.js';
import type { ZeroPageDetection } from '../parameters.js';
import type { AccelHandle } from '../../accel/driver.js';
import type { TransportOptions } from '../transport.js';
import type { DirtyTracking } from '../../machine/guest-machine.js';

export interface SourceShared {
  blocks: RamBlockDesc[];
  /** channel slots (channel-slots.ts) */
  slots: SharedArrayBuffer;
  /** MIG words */
  mig: SharedArrayBuffer;
  /** CHAN_STAT per channel, Float64 */
  chanStats: SharedArrayBuffer;
  /** CHAN_WORD per channel, Int32 */
  chanWords: SharedArrayBuffer;
  cpuSlots: SharedArrayBuffer;
  channels: number;
  packetPages: number;
  /** x-stall-timeout: a channel that cannot write for this long has a stalled peer */
  stallTimeoutMs: number;
  /** x-migration-nice: the thread's nice value (0: left as it is) */
  threadNice: number;
  mode: ZeroPageDetection;
}

export interface SendWorkerData extends SourceShared {
  /** channel security (plain TCP when empty) */
  transport: TransportOptions;
  /** the accelerator, for zero-page-detection=dsa-accel */
  accel?: AccelHandle;
  index: number;
  host: string;
  session: Uint8Array;
  cpuSlot: number;
}

export interface LiveMigrationWorkerData extends SourceShared {
  /** VCPU words (src/ram/vcpu-control.ts) */
  vcpuControl: SharedArrayBuffer;
  /** content-sync: ask the vCPU thread for a dirty sync before taking the bits */
  dirtyTracking: DirtyTracking;
  /** content-sync: the ticket of the sync the main thread asked for as the migration began */
  firstSyncTicket?: number;
  cpuSlot: number;
  /** LIVE words (Float64): parameters that may change while the migration runs, as in QEMU */
  liveParams: SharedArrayBuffer;
}

/** The main thread's messages to a multifdsend_N thread, in this order. */
export type SendWorkerCommand =
  /**
   * while idle in the pool: warm up again, on an accelerator opened for that
   * (src/machine/channel-warm-up.ts); `count`: WarmUpCount's words (warm-up-count.ts)
   */
  | { type: 'warm-accel'; accel: AccelHandle; count: SharedArrayBuffer }
  | { type: 'bind'; data: SendWorkerData }
  /** the destination's port for this channel (HelloReply) */
  | { type: 'connect'; port: number }
  /** the destination has everything: end the connection */
  | { type: 'finish' };

/** The main thread's messages to live_migration, in this order. */
export type LiveMigrationCommand =
  | { type: 'bind'; data: LiveMigrationWorkerData }
  /** every channel is connected: walk RAM */
  | { type: 'start' };

/** Messages from source workers to the main thread (control only, never per packet). */
export type SourceWorkerMessage =
  | { type: 'connected'; index: number }
  /** a channel asked to finish no longer submits to the accelerator (it may be ended now) */
  | { type: 'channel-stopped'; index: number }
  | { type: 'error'; message: string }
  | {
      type: 'pass';
      pass: number;
      remainingPages: number;
      durationMs: number;
      bytes: number;
      bandwidth: number;
      expectedDowntimeMs: number;
      dirtyPagesRate: number;
      /** auto-converge's current vCPU throttle, % */
      throttle: number;
    }
  | { type: 'stopped'; at: number; pass: number }
  /** a content-sync machine's dirty sync: its cost on the vCPU thread, and the pages it found */
  | { type: 'dirty-sync'; ms: number; cpuMs: number; pages: number; logged: boolean }
  | { type: 'final-sent'; pass: number; bytes: number };
