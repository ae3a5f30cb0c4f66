// What the migration engine asks of a guest, whatever kind it is: its RAM blocks, its vCPU
// (through the shared VCPU words), a dirty sync where the vCPU does not log its own writes, the
// device state that travels at switchover, and on the destination a way to take it all in.
// Two kinds today: the synthetic guest (RAM plus a workload) and the PC (v86 booting Linux).

import type { RamBlockDesc } from '../ram/layout.js';
import type { VcpuControl } from '../ram/vcpu-control.js';

export const MACHINE_TYPES = ['synthetic', 'pc'] as const;
export type MachineType = (typeof MACHINE_TYPES)[number];

/**
 * What a source says about its machine in Hello. A destination accepts a migration only when
 * its own description matches field for field (machine type, RAM size, emulator build, ...).
 */
export interface MachineDescription {
  type: MachineType;
  ramBytes: number;
  [field: string]: string | number | boolean | null;
}

/**
 * The device state that travels at switchover, after the vCPU has stopped: a small JSON part
 * (in the Complete frame) and, for machines that have one, a binary part (a DeviceState frame).
 */
export interface DeviceState {
  json: Record<string, unknown>;
  blob?: Uint8Array;
}

/**
 * How the machine's dirty bitmaps get their bits:
 * - 'vcpu-writes': the vCPU sets a page's bit whenever it writes the page;
 * - 'content-sync': bits are set only by a dirty sync the migration asks the vCPU thread for
 *   (VcpuControl.requestSync), which compares guest RAM with the engine's RAM blocks.
 */
export type DirtyTracking = 'vcpu-writes' | 'content-sync';

export interface GuestMachine {
  readonly type: MachineType;
  readonly ramBytes: number;
  /** the RAM the engine migrates (replaced by discardRam on a destination) */
  readonly blocks: RamBlockDesc[];
  readonly vcpu: VcpuControl;
  readonly dirtyTracking: DirtyTracking;
  /** the vCPU is asked to run */
  readonly running: boolean;
  /** Start or resume the vCPU. */
  start(): void;
  /** Stop the vCPU and wait until it no longer writes RAM. */
  stop(): Promise<void>;
  /** The same, blocking: for shutdown paths and QMP's synchronous `stop`. */
  stopSync(): void;
  describe(): MachineDescription;
  /** '' when a source described by `source` may migrate into this machine, else why not. */
  incompatibility(source: unknown): string;
  /** Source, vCPU stopped: the device state to send. */
  deviceState(): Promise<DeviceState>;
  /**
   * Destination: a migration is arriving; its pages land in `blocks` and are flagged in
   * `received` (src/migration/destination/received-map.ts) as they do.
   */
  beginIncoming(received: SharedArrayBuffer[]): void;
  /**
   * Destination: check the device state and take it in. A state with a binary part is loaded
   * as soon as it arrives, while the final pass may still be on its way; one without, at
   * Complete. Throws when the state is refused; discardRam then undoes what was loaded.
   */
  loadDeviceState(state: DeviceState): Promise<void>;
  /**
   * Destination: every page has landed in `blocks`; take the rest of RAM in, ready to run.
   * Returns what taking RAM in cost, for query-migrate (nothing for a machine whose RAM blocks
   * are its RAM).
   */
  finishIncoming(): Promise<Record<string, number> | undefined>;
  /** Destination of a failed migration: forget what was received (fresh zero RAM). */
  discardRam(): Promise<void>;
  /** SHA-256 of guest RAM as the guest sees it (x-verify-ram, x-query-ram-digest). */
  digest(): Promise<string>;
  quit(): Promise<void>;
}

/** The description check shared by every machine kind: each field must be equal. */
export function describeMismatch(mine: MachineDescription, source: unknown): string {
  if (typeof source !== 'object' || source === null || Array.isArray(source)) {
    return `the source did not describe its machine (expected a ${mine.type} machine)`;
  }
  const theirs = source as Record<string, unknown>;
  if (theirs.type !== mine.type) {
    return (
      `machine type mismatch: the source is a ${String(theirs.type)} machine, this destination ` +
      `a ${mine.type} machine (start the destination with --machine ${String(theirs.type)})`
    );
  }
  for (const [field, value] of Object.entries(mine)) {
    if (theirs[field] !== value) {
      return `${mine.type} machine mismatch in ${field}: source ${JSON.stringify(theirs[field])}, destination ${JSON.stringify(value)}`;
    }
  }
  return '';
}
