// One incoming migration as the destination's main thread holds it, from the accepted
// handshake to its end, and what query-migrate reports of it.

import type { Worker } from 'node:worker_threads';
import type { ControlChannel } from '../control-channel.js';
import { PAGE_SIZE } from '../protocol.js';
import type { GuestMachine } from '../../machine/guest-machine.js';
import type { CpuRegistry } from '../../util/cpu-slots.js';
import type { MigrationStatus } from '../status.js';
import type { RecvProgress } from './recv-words.js';

/**
 * Where an incoming migration is; each frame is accepted only in the phase that expects it.
 * 'ready': Ready is sent; the guest runs on the source's Release, and on nothing else.
 */
export type Phase =
  | 'hello'
  /** Hello arrived while the last failed migration's RAM was still being discarded */
  | 'discarding'
  | 'streaming'
  | 'completing'
  | 'verifying'
  | 'ready';

export interface Incoming {
  phase: Phase;
  control: ControlChannel;
  session: Buffer;
  channels: number;
  workers: Worker[];
  barrier: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  /** the main thread's view of barrier and stats */
  progress: RecvProgress;
  verify: boolean;
  stallTimeoutMs: number;
  /** x-migration-nice, from the Hello */
  threadNice: number;
  startedAt: number;
  timer?: NodeJS.Timeout;
  names: string[];
  /** the received map of each block (received-map.ts), shared with the channels and the machine */
  received: SharedArrayBuffer[];
  /** what taking RAM into the guest cost the machine (a PC: copies into its emulator) */
  intoGuest?: Record<string, number>;
  /** the machine loading a binary device state (DeviceState frame), once it arrived */
  deviceLoading?: Promise<void>;
}

/** query-migrate's answer for an incoming migration, in progress or as it ended */
export function incomingInfo(
  cur: Incoming,
  status: MigrationStatus,
  guest: GuestMachine,
  cpu: CpuRegistry,
): Record<string, unknown> {
  const bytes = cur.progress.total('bytes');
  const normal = cur.progress.total('normal');
  const zero = cur.progress.total('zero');
  return {
    status,
    'total-time': Date.now() - cur.startedAt,
    ram: {
      transferred: bytes,
      total: guest.ramBytes,
      duplicate: zero,
      normal,
      'normal-bytes': normal * PAGE_SIZE,
      'page-size': PAGE_SIZE,
      'multifd-bytes': bytes,
    },
    livemig: {
      session: cur.session.toString('hex'),
      channels: cur.channels,
      machine: guest.type,
      ...(cur.intoGuest ? { 'into-guest': cur.intoGuest } : {}),
      'thread-cpu-ms': cpu.snapshot(['main', ...cur.names]),
    },
  };
}
