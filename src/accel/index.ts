// The accelerator layer's public API (see docs/accelerator.md).

export {
  openAccelerator,
  attachAccelerator,
  Accelerator,
  AcceleratorClient,
  BatchTask,
  type AccelHandle,
  type AccelTargetHandle,
  type BatchTaskOptions,
  type CompletionMode,
  type OpenAcceleratorOptions,
} from './driver.js';
export {
  parseAccelPath,
  formatAccelTarget,
  splitAccelPath,
  type AccelTarget,
  type DsaTarget,
  type DsaEmuTarget,
} from './accel-path.js';
export {
  FALLBACK_REASONS,
  emptyCounters,
  type AccelCounters,
  type FallbackReason,
} from './counters.js';
export { DsaEmu, EmulatedDevice, type DsaEmuOptions } from './dsa/emu/device.js';
export type { DsaEmuHandle, EmuDeviceHandle } from './dsa/emu/handles.js';
export { defaultAccfgConfig, defaultEngineCount, type AccfgDevice } from './dsa/emu/config.js';
export { resolveAccfgConfig } from './dsa/emu/config-validate.js';
export { accelList, accelCheck, accelListing, formatAccelCheck } from './cli.js';
export type { AccelListOptions, AccelCheckResult } from './cli.js';
export { checkDsaTarget, listSysfs, openDsaTarget, type SysfsOptions } from './sysfs.js';
// Real DSA (kernel idxd work queues) through the optional native addon. The addon's test-only
// entry points (src/accel/hw/testing.ts) are deliberately not exported.
export { addonStatus, type AddonStatus } from './hw/addon.js';
export { cpuSupport, describeCpu, type CpuSupport } from './hw/cpu.js';
export type { HwOpenOptions, HwWqHandle, SubmitMethod } from './hw/wq.js';
export {
  accelSelftest,
  type SelftestOptions,
  type SelftestResult,
  type SelftestCheck,
  type SelftestTiming,
} from './hw/selftest.js';
export { cpuZeroPages } from './cpu-zero.js';
export { threadCpuMs } from '../util/thread-cpu.js';
export { benchDriver, type BenchDriverOptions, type BenchDriverResult } from './bench-driver.js';
