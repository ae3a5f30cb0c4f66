// What the control plane (QMP, HMP) drives: one guest process, source or destination.
// Implemented by src/machine/machine.ts; QMP and HMP are thin front ends over it.

import type { EventEmitter } from 'node:events';

export interface CapabilityState {
  capability: string;
  state: boolean;
}

/** A QMP event as QEMU sends it (timestamp filled in by the QMP server). */
export interface HostEvent {
  event: string;
  data?: Record<string, unknown>;
}

/** QEMU's MigrationThreadInfo, plus livemig's CPU time of the thread. */
export interface MigrationThreadInfo {
  name: string;
  'thread-id': number;
  /** CPU milliseconds the thread has used, measured by the thread itself (livemig) */
  'cpu-ms'?: number;
}

export interface RunStatus {
  /** QEMU RunState: 'running', 'paused', 'inmigrate', 'postmigrate', 'finish-migrate', ... */
  status: string;
  running: boolean;
  singlestep: false;
}

/**
 * Every method throws QmpError (src/util/errors.ts) for bad input, with a message that
 * names the bad value and what is allowed.
 * Emits 'event' with a HostEvent for MIGRATION, MIGRATION_PASS, STOP, RESUME.
 */
export interface MigrationHost extends EventEmitter {
  setCapabilities(capabilities: unknown): void;
  queryCapabilities(): CapabilityState[];
  setParameters(params: Record<string, unknown>): void;
  queryParameters(): Record<string, unknown>;
  /**
   * Starts an outgoing migration and returns once it is under way (status 'setup'); a promise
   * where opening an accelerator (zero-page-detection=dsa-accel) has to finish first.
   */
  migrate(uri: string): void | Promise<void>;
  /** Starts listening for an incoming migration (destination started with --incoming defer). */
  migrateIncoming(uri: string): Promise<void>;
  /** QEMU's MigrationInfo, plus a 'livemig' block of livemig's own. */
  queryMigrate(): Record<string, unknown>;
  migrateCancel(): void;
  stop(): void;
  cont(): void;
  queryStatus(): RunStatus;
  /** Ends the process after cleanup. */
  quit(): void;
  /** livemig: SHA-256 digest of the guest's RAM (what x-verify-ram compares), for tests and checks. */
  ramDigest(): string | Promise<string>;
  /** QEMU's query-migrationthreads: the migration's threads, with livemig's CPU ms for each. */
  queryMigrationThreads(): MigrationThreadInfo[];
  /** QEMU's object-add: {qom-type, id, ...properties} (TLS credentials, authorization). */
  objectAdd(options: Record<string, unknown>): void;
  /** QEMU's object-del. */
  objectDel(id: string): void;
  /** QEMU's migrate-continue: leave `state` (only 'pre-switchover') and finish the migration. */
  migrateContinue(state: string): void;
  /** QEMU's yank of instance 'migration': close every migration socket now (→ failed). */
  yank(): void;
  /** whether a migration has sockets to yank (query-yank lists it) */
  yankable(): boolean;
}
