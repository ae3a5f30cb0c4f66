// Structured-cloneable handles of the emulated devices: SharedArrayBuffers plus plain
// configuration. Pass them in workerData (or postMessage) to any thread of the process; there
// `new EmulatedDevice(handle)` gives the device's controls, and the driver submits to its WQs.

import type { AddressSpaceHandle } from './address-space.js';
import type { EmuDeviceConfig, EmuEngineConfig, EmuWqConfig } from './config.js';

/** A WQ's configuration and ring; `enabled`: usable (its device, group, type and size allow). */
export interface EmuWqHandle extends EmuWqConfig {
  /** Index in EmuDeviceHandle.wqs. */
  index: number;
  ring: SharedArrayBuffer;
}

export interface EmuEngineHandle extends EmuEngineConfig {
  /** Index in EmuDeviceHandle.engines, and in the device's engine statistics. */
  index: number;
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
