// What the PC bench needs from a peer (livemig or QEMU): a booted guest with its console, a
// fresh destination with its console already attached, one migration measured, and the chain
// (the destination, now running the guest, becomes the next source). pc-run.ts drives it.

import { setTimeout as sleep } from 'node:timers/promises';
import type { ConsoleClient } from '../chardev/console-client.js';
import type { QmpClient, QmpEvent } from '../control/qmp-client.js';
import { TERMINAL, type Info } from './livemig-runner.js';
import type { Mode, Peer, SideCpu, VerifyMethod } from './types.js';

export interface PcSide {
  qmp: QmpClient;
  pid: number;
  console: ConsoleClient;
}

export interface PcMigrateSpec {
  mode: Mode;
  channels: number;
  accelPath: string[];
  downtimeLimitMs: number;
  /** livemig's x-migration-nice (QEMU has none) */
  migrationNice: number;
  /** Check RAM: livemig's x-verify-ram, QEMU's RAM files compared (--no-verify: neither). */
  verify: boolean;
  /** Cancel a migration still iterating after this long. */
  convergeTimeoutMs: number;
  onProgress?: (info: Record<string, unknown>) => void;
}

/** One migration as measured by a peer, before the guest checks. */
export interface PcMigration {
  info: Info;
  dinfo: Info;
  /** the `migrate` command was sent (host ms) */
  t0: number;
  /** the destination was done (its MIGRATION completed event) */
  tEnd: number;
  /** the source's STOP and the destination's RESUME events (host ms), when seen */
  stopAt: number | null;
  resumeAt: number | null;
  /** the part of the guest's pause the bench added to check RAM */
  verifyPauseMs: number | null;
  zeroPageDetection: string;
  cpu: { source: SideCpu; destination: SideCpu };
  peakRssKiB: { source: number | null; destination: number | null };
  verify: { method: VerifyMethod; result: 'ok' | 'mismatch' | 'not-checked' };
  differingPages: number | null;
  /** set when the migration was cancelled at the convergence timeout */
  cancelled: boolean;
}

export interface PcSession {
  readonly peer: Peer;
  readonly version: string;
  readonly source: PcSide;
  readonly dest: PcSide;
  /** ms from starting the source to the guest's ready line */
  readonly bootMs: number;
  /** Throws ModeUnavailableError / QemuModeUnavailableError when the mode cannot run. */
  migrate(spec: PcMigrateSpec): Promise<PcMigration>;
  /** After a completed migration: the destination is the source, and a fresh destination waits. */
  next(): Promise<void>;
  /** After a failed or refused migration, the source still running: a fresh destination. */
  newDestination(): Promise<void>;
  /** Pause / resume the source's guest (while the other peer measures). */
  pause(): Promise<void>;
  resume(): Promise<void>;
  close(): Promise<void>;
}

/** The events a migration's measurement needs, recorded as they arrive. */
export class EventLog {
  readonly events: { name: string; t: number; data?: Record<string, unknown> }[] = [];
  private readonly listener = (e: QmpEvent): void => {
    this.events.push({
      name: e.event,
      t: e.timestamp.seconds * 1000 + e.timestamp.microseconds / 1000,
      data: e.data,
    });
  };

  constructor(private readonly qmp: QmpClient) {
    qmp.on('event', this.listener);
  }

  /** The first event called `name` (and matching `pred`) at or after `since`. */
  first(
    name: string,
    since = 0,
    pred?: (d: Record<string, unknown> | undefined) => boolean,
  ): number | null {
    const e = this.events.find((x) => x.name === name && x.t >= since && (!pred || pred(x.data)));
    return e ? e.t : null;
  }

  stop(): void {
    this.qmp.off('event', this.listener);
  }
}

/** Reject after `ms` with a message naming what did not finish; never leaves a check hanging. */
export function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/** How long a QMP command may take to answer, and how long a destination may take to finish. */
export const QMP_TIMEOUT_MS = 15_000;
export const DEST_TIMEOUT_MS = 60_000;

/**
 * Follow the source's query-migrate from `t0` (when `migrate` was sent) until the migration has
 * ended; one still iterating after `spec.convergeTimeoutMs` is cancelled. Both peers alike.
 */
export async function followSource(
  qmp: QmpClient,
  t0: number,
  spec: Pick<PcMigrateSpec, 'convergeTimeoutMs' | 'onProgress'>,
): Promise<{ info: Info; cancelled: boolean }> {
  let cancelled = false;
  for (;;) {
    const info = await within(qmp.execute<Info>('query-migrate'), QMP_TIMEOUT_MS, 'source');
    spec.onProgress?.(info);
    if (TERMINAL.includes(String(info.status))) return { info, cancelled };
    const age = Date.now() - t0;
    if (!cancelled && age > spec.convergeTimeoutMs) {
      cancelled = true;
      await qmp.execute('migrate_cancel');
    }
    if (age > spec.convergeTimeoutMs + DEST_TIMEOUT_MS) {
      throw new Error(`the source's migration did not end (status ${String(info.status)})`);
    }
    await sleep(50);
  }
}
