// Configuration of the emulated DSA devices, in the JSON that `accel-config save-config` writes
// and `accel-config load-config` reads (intel/idxd-config contrib/configs/*.conf):
//
//   [ { "dev": "dsa0", "groups": [ { "dev": "group0.0",
//         "grouped_workqueues": [ { "dev": "wq0.0", "mode": "shared", "size": 128, "group_id": 0,
//             "priority": 10, "block_on_fault": 0, "max_batch_size": 1024,
//             "max_transfer_size": 2097152, "type": "user", "name": "livemig",
//             "driver_name": "user", "threshold": 128 } ],
//         "grouped_engines": [ { "dev": "engine0.0", "group_id": 0 } ] } ],
//       "ungrouped_engines": [ ... ] } ]
//
// This file holds the format's types, the model the emulator runs, and the defaults;
// config-validate.ts turns a file into the model, config-list.ts the model back into a listing.

import { availableParallelism } from 'node:os';
import { EMULATED_OPCODES, MAX_BATCH_SIZE, opCapString } from '../opcodes.js';

// ---- The file format (as accel-config writes it; config-schema.ts has its rules) ----

export interface AccfgWq {
  dev: string;
  mode?: WqMode;
  size?: number;
  group_id?: number;
  priority?: number;
  block_on_fault?: number;
  max_batch_size?: number;
  max_transfer_size?: number;
  type?: WqType;
  name?: string;
  driver_name?: string;
  threshold?: number;
  state?: 'enabled' | 'disabled' | string;
  [attr: string]: unknown;
}

export interface AccfgEngine {
  dev: string;
  group_id?: number;
  [attr: string]: unknown;
}

export interface AccfgGroup {
  dev: string;
  grouped_workqueues?: AccfgWq[];
  grouped_engines?: AccfgEngine[];
  [attr: string]: unknown;
}

export interface AccfgDevice {
  dev: string;
  groups?: AccfgGroup[];
  ungrouped_engines?: AccfgEngine[];
  ungrouped_workqueues?: AccfgWq[];
  state?: string;
  max_batch_size?: number;
  max_transfer_size?: number;
  max_groups?: number;
  max_work_queues?: number;
  max_engines?: number;
  max_work_queues_size?: number;
  /** The older name of max_work_queues_size. */
  work_queue_size?: number;
  [attr: string]: unknown;
}

// ---- The resolved model the emulator runs ----

export type WqMode = 'shared' | 'dedicated';
export type WqType = 'user' | 'kernel' | 'none';

export interface EmuWqConfig {
  /** "wq0.0" */
  name: string;
  /** The M of wqN.M. */
  id: number;
  /** Group id, -1 when ungrouped. */
  group: number;
  mode: WqMode;
  size: number;
  /** Shared WQs: submissions are refused at this occupancy. 0 for dedicated WQs. */
  threshold: number;
  priority: number;
  blockOnFault: boolean;
  maxBatchSize: number;
  maxTransferSize: number;
  type: WqType;
  /** The `name` attribute (the client name accel-config sets with -n). */
  clientName: string;
  driverName: string;
  enabled: boolean;
}

export interface EmuEngineConfig {
  /** "engine0.1" */
  name: string;
  id: number;
  /** Group id, -1 when ungrouped (an ungrouped engine runs nothing and gets no thread). */
  group: number;
}

export interface EmuGroupConfig {
  name: string;
  id: number;
  /** Indices into EmuDeviceConfig.wqs. */
  wqs: number[];
  /** Indices into EmuDeviceConfig.engines. */
  engines: number[];
}

export interface EmuDeviceConfig {
  /** "dsa0" */
  name: string;
  /** The N of dsaN. */
  id: number;
  enabled: boolean;
  maxBatchSize: number;
  maxTransferSize: number;
  maxGroups: number;
  maxWorkQueues: number;
  maxEngines: number;
  maxWorkQueuesSize: number;
  groups: EmuGroupConfig[];
  wqs: EmuWqConfig[];
  engines: EmuEngineConfig[];
}

/** The emulated part's capabilities: those of an SPR DSA 1.0 (dsa-notes §3). */
export const HW_LIMITS = {
  maxGroups: 4,
  maxWorkQueues: 8,
  maxEngines: 4,
  maxWorkQueuesSize: 128,
  maxBatchSize: MAX_BATCH_SIZE,
  maxTransferSize: 2 ** 31,
  version: '0x100',
  opCap: opCapString(EMULATED_OPCODES),
} as const;

/** Kernel defaults for WQ attributes that a configuration leaves out (linux idxd.h). */
export const WQ_DEFAULTS = {
  size: 16,
  maxBatchSize: 32,
  maxTransferSize: 2 * 1024 * 1024,
  priority: 1,
} as const;

/**
 * Engines in the built-in configuration: one per available core, at most the 4 a real device
 * has. An engine is a thread doing the compare a channel thread would otherwise do; a channel
 * waiting on the device uses no CPU, so on a 2-core machine 2 engines keep both cores busy when
 * the compare is the whole job (an all-zero guest), and more would only add context switches.
 */
export function defaultEngineCount(cpus: number = availableParallelism()): number {
  return Math.min(HW_LIMITS.maxEngines, Math.max(1, Math.floor(cpus)));
}

/**
 * The built-in configuration: `dsa0`, `group0.0` with `engines` engines, and `wq0.0`: shared,
 * size 128, threshold 128, max_batch_size 1024, max_transfer_size 2 MiB, type user.
 */
export function defaultAccfgConfig(engines: number = defaultEngineCount()): AccfgDevice[] {
  return [
    {
      dev: 'dsa0',
      groups: [
        {
          dev: 'group0.0',
          grouped_workqueues: [
            {
              dev: 'wq0.0',
              mode: 'shared',
              size: 128,
              group_id: 0,
              priority: 10,
              block_on_fault: 0,
              max_batch_size: 1024,
              max_transfer_size: 2 * 1024 * 1024,
              type: 'user',
              name: 'livemig',
              driver_name: 'user',
              threshold: 128,
            },
          ],
          grouped_engines: Array.from({ length: engines }, (_, i) => ({
            dev: `engine0.${i}`,
            group_id: 0,
          })),
        },
      ],
    },
  ];
}
