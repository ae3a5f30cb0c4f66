// `livemig accel selftest TARGET`: run a work queue through its paces on the user's own host and
// say in plain words what is wrong when something is.
//
//   TARGET = dsa:/dev/dsa/wqX.Y (a kernel idxd WQ) or dsa-emu:DEVICE/WQ (the emulated device)
//
// 1. Environment (dsa:): the native addon, CPU instructions, kernel, IOMMU parameters,
//    CAP_SYS_RAWIO, the WQ's sysfs attributes, how descriptors will be submitted.
// 2. Checks, each compared with the CPU: COMPVAL on a zero page and on a non-zero page, a
//    128-page batch, a 1024-page batch where the WQ allows it, and a descriptor on a
//    deliberately faulting address (PAGE_FAULT_NOBOF expected), through the same driver
//    migration uses (and a descriptor written by hand for the faulting one).
// 3. Latency and throughput per batch size, and the CPU dsa_completion used meanwhile.
//
// The checks are in selftest-checks.ts, the host's environment in selftest-host.ts, the timed
// part in selftest-timing.ts, and the result and its text in selftest-report.ts.

import { parseAccelPath, type AccelTarget, type DsaTarget } from '../accel-path.js';
import { DsaEmu } from '../dsa/emu/device.js';
import { openAccelerator, type Accelerator } from '../driver.js';
import { type SysfsOptions } from '../sysfs.js';
import { formatBytes } from '../../util/size.js';
import { runChecks, type Ctx } from './selftest-checks.js';
import { describeHost } from './selftest-host.js';
import {
  formatSelftest,
  type SelftestCheck,
  type SelftestResult,
  type SelftestTiming,
} from './selftest-report.js';
import { measureTimings } from './selftest-timing.js';
import { HW_WAIT_WORDS } from './completion-shared.js';
import { type HwOpenOptions } from './wq.js';

export interface SelftestOptions {
  /** dsa-emu: accel-config JSON (parsed) for the emulated devices; default: built in. */
  emuConfig?: unknown;
  sysfs?: SysfsOptions;
  hw?: HwOpenOptions;
  /** Timed requests per batch size (default 200; each size stops after ~0.3 s anyway). */
  iterations?: number;
  /** Per-request deadline (default 1000 ms). */
  deadlineMs?: number;
}

/** Run the selftest; never throws for a misconfiguration (it is reported). */
export async function accelSelftest(
  target: string,
  o: SelftestOptions = {},
): Promise<SelftestResult> {
  const environment: [string, string][] = [];
  const checks: SelftestCheck[] = [];
  const timings: SelftestTiming[] = [];
  const advice: string[] = [];
  let completionCpu: string | undefined;
  const result = (): SelftestResult => {
    const ok =
      checks.length > 0 &&
      checks.every((c) => c.ok !== false) &&
      advice.every((a) => a.startsWith('note: '));
    const r = { ok, target, environment, checks, timings, completionCpu, advice, text: '' };
    r.text = formatSelftest(r);
    return r;
  };
  let t: AccelTarget;
  try {
    t = parseAccelPath([target])[0];
  } catch (e) {
    advice.push((e as Error).message);
    return result();
  }
  const hw = t.type === 'dsa';
  if (hw && !(await describeHost(t as DsaTarget, o.sysfs, environment, advice))) return result();
  let emu: DsaEmu | undefined;
  let accel: Accelerator | undefined;
  try {
    if (!hw) emu = await DsaEmu.start({ config: o.emuConfig });
    accel = await openAccelerator([target], {
      devices: emu,
      sysfs: o.sysfs,
      hw: o.hw,
      maxPages: 1024,
      slots: 4,
      deadlineMs: o.deadlineMs ?? 1000,
    });
  } catch (e) {
    advice.push((e as Error).message.replace(/^accel-path \S+ cannot be used: /, ''));
    await emu?.close();
    return result();
  }
  try {
    const h = accel.handle.hw[0];
    let maxBatch: number;
    if (h) {
      environment.push([
        'submission',
        `${h.submit === 'write' ? 'write()' : h.submit.toUpperCase()}: ${h.why}`,
      ]);
      const wait = accel.handle.hwWait;
      environment.push(['completion wait', `${wait}: dsa_completion ${HW_WAIT_WORDS[wait]}`]);
      maxBatch = h.submit === 'write' ? Infinity : h.maxBatchSize;
    } else {
      const dev = emu!.device((t as { device: string }).device);
      const q = dev.wq(t.wq);
      environment.push([
        'emulated device',
        `${dev.name}: ${dev.handle.engines.length} engine(s) (worker threads)`,
      ]);
      environment.push([
        'work queue',
        `${t.device}/${t.wq}: ${q.mode}, size ${q.size}, max_batch_size ${q.maxBatchSize}, max_transfer_size ${formatBytes(q.maxTransferSize)}`,
      ]);
      maxBatch = q.maxBatchSize;
    }
    const task = accel.createBatchTask(0, 1024);
    const c: Ctx = { accel, task, hw, wqName: t.wq, checks, advice };
    await runChecks(c, emu, t, maxBatch);
    // Latency and throughput, all-zero touched pages (the packet sizes migration uses).
    completionCpu = await measureTimings(c, maxBatch, o.iterations ?? 200, timings);
    task.close();
  } finally {
    await accel.close();
    await emu?.close();
  }
  return result();
}
