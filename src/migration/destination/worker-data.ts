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
  /** RECV_BARRIER words (recv-words.ts) */
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
  /** RECV_STAT per channel (recv-words.ts) */
  stats: SharedArrayBuffer;
}

/** The destination's messages to a multifdrecv_N thread, in this order. */
export type RecvWorkerCommand =
  | { type: 'bind'; data: RecvWorkerData }
  /** every channel has applied the final pass: the connection may close now */
  | { type: 'finish' };

export type RecvWorkerMessage =
  /** index -1 and the address: a pooled thread listening before it is bound */
  | { type: 'listening'; index: number; port: number; host?: string }
  | { type: 'connected'; index: number }
  | { type: 'rejected'; index: number; reason: string }
  | { type: 'error'; index: number; message: string };
