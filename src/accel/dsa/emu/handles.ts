// Structured-cloneable handles of the emulated devices: SharedArrayBuffers plus plain
// configuration. Pass them in workerData (or postMessage) to any thread of the process; there
// `attachDevice`/`DsaEmuClient` turn them back into submitters and fault-injection controls.

import type { AddressSpaceHandle } from './address-space.js';
import type { EmuDeviceConfig, WqMode, WqType } from './config.js';

export interface EmuWqHandle {
  /** "wq0.0" */
  name: string;
  id: number;
  /** Index in EmuDeviceHandle.wqs. */
  index: number;
  group: number;
  mode: WqMode;
  type: WqType;
  size: number;
  threshold: number;
  priority: number;
  maxBatchSize: number;
  maxTransferSize: number;
  blockOnFault: boolean;
  enabled: boolean;
  ring: SharedArrayBuffer;
}

export interface EmuEngineHandle {
  /** "engine0.1" */
  name: string;
  id: number;
  /** Index in EmuDeviceHandle.engines, and in the device's engine statistics. */
  index: number;
  group: number;
  /** Thread name for CPU reports: "dsa0/engine0.1". */
  threadName: string;
}

export interface EmuDeviceHandle {
  kind: 'dsa-emu';
  /** "dsa0" */
  name: string;
  id: number;
  registers: SharedArrayBuffer;
  config: EmuDeviceConfig;
  wqs: EmuWqHandle[];
  /** Engines that run (grouped ones); ungrouped engines get no thread. */
  engines: EmuEngineHandle[];
  addressSpace: AddressSpaceHandle;
}

/** Every emulated device of one address space (one "process" worth of devices). */
export interface DsaEmuHandle {
  kind: 'dsa-emu-system';
  addressSpace: AddressSpaceHandle;
  devices: EmuDeviceHandle[];
}
