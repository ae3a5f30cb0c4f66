// What the destination's main thread hands to each multifdrecv_N thread.

import type { RamBlockDesc } from '../../ram/layout.js';
import type { TransportOptions } from '../transport.js';

export interface RecvWorkerData {
  index: number;
  channels: number;
  host: string;
  session: Uint8Array;
  blocks: RamBlockDesc[];
  /** the received map of each block (received-map.ts) */
  received: SharedArrayBuffer[];
  /** Int32 per channel: last pass whose SYNC this channel has applied; plus a wake word */
  barrier: SharedArrayBuffer;
  packetPages: number;
  cpuSlots: SharedArrayBuffer;
  cpuSlot: number;
  /** x-stall-timeout from the source: a SYNC barrier that waits longer has a stalled peer */
  stallTimeoutMs: number;
  /** x-migration-nice from the source: the thread's nice value (0: left as it is) */
  threadNice: number;
  /** channel security (plain TCP when empty) */
  transport: TransportOptions;
  /** Float64 per channel: bytes, normal, zero, packets */
  stats: SharedArrayBuffer;
}

export type RecvWorkerMessage =
  | { type: 'listening'; index: number; port: number }
  | { type: 'connected'; index: number }
  | { type: 'rejected'; index: number; reason: string }
  | { type: 'error'; index: number; message: string };

/** barrier words: [0..channels) synced pass per channel, then ABORT, then WAKE */
export function barrierAbortIndex(channels: number): number {
  return channels;
}
