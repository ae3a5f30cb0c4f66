// livemig/accel: zero-page detection on an Intel DSA work queue — a kernel idxd WQ
// ("dsa:/dev/dsa/wq0.0", through livemig's native addon) or livemig's emulated device
// ("dsa-emu:dsa0/wq0.0", worker threads; needs nothing but Node). See docs/accelerator.md.
//
//   import { openAccelerator } from 'livemig/accel';
//   const accel = await openAccelerator('dsa-emu:dsa0/wq0.0'); // starts the emulated device
//   const zeros = await accel.zeroPages(block, pages, count, results); // results[i]: 1 = zero
//   await accel.close();
//
// Other threads use the same work queues with attachAccelerator(accel.handle). Whatever the
// device does not finish is checked on the CPU, so a zeroPages answer is always complete.

export {
  openAccelerator,
  attachAccelerator,
  Accelerator,
  AcceleratorClient,
  BatchTask,
  type AccelHandle,
  type BatchTaskOptions,
  type CompletionMode,
  type OpenAcceleratorOptions,
} from './driver.js';
export { parseAccelPath, formatAccelTarget, type AccelTarget } from './accel-path.js';
export { FALLBACK_REASONS, type AccelCounters, type FallbackReason } from './counters.js';
export { DsaEmu, type DsaEmuOptions } from './dsa/emu/device.js';
export { addonStatus, type AddonStatus } from './hw/addon.js';
