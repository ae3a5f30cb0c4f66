// The emulated devices' configuration in `accel-config list` form.

import {
  HW_LIMITS,
  type AccfgDevice,
  type AccfgEngine,
  type AccfgWq,
  type EmuDeviceConfig,
  type EmuEngineConfig,
  type EmuWqConfig,
} from './config.js';

/**
 * The configuration in `accel-config list` form (device, groups, WQs, engines with their
 * attributes); `state` gives live states when the device is running.
 */
export function toAccfgList(
  devices: readonly EmuDeviceConfig[],
  state?: (dev: EmuDeviceConfig) => {
    device: string;
    wqs: Map<string, { state: string; occupancy: number }>;
  },
): AccfgDevice[] {
  return devices.map((d) => {
    const live = state?.(d);
    const wqJson = (w: EmuWqConfig): AccfgWq => ({
      dev: w.name,
      mode: w.mode,
      size: w.size,
      group_id: w.group,
      priority: w.priority,
      block_on_fault: w.blockOnFault ? 1 : 0,
      max_batch_size: w.maxBatchSize,
      max_transfer_size: w.maxTransferSize,
      type: w.type,
      name: w.clientName,
      driver_name: w.driverName,
      threshold: w.threshold,
      state: live?.wqs.get(w.name)?.state ?? (w.enabled && d.enabled ? 'enabled' : 'disabled'),
      ...(live ? { occupancy: live.wqs.get(w.name)?.occupancy ?? 0 } : {}),
    });
    const engJson = (e: EmuEngineConfig): AccfgEngine => ({ dev: e.name, group_id: e.group });
    const out: AccfgDevice = {
      dev: d.name,
      max_groups: d.maxGroups,
      max_work_queues: d.maxWorkQueues,
      max_engines: d.maxEngines,
      work_queue_size: d.maxWorkQueuesSize,
      op_cap: HW_LIMITS.opCap,
      version: HW_LIMITS.version,
      state: live?.device ?? (d.enabled ? 'enabled' : 'disabled'),
      max_batch_size: d.maxBatchSize,
      max_transfer_size: d.maxTransferSize,
      groups: d.groups.map((g) => ({
        dev: g.name,
        ...(g.wqs.length ? { grouped_workqueues: g.wqs.map((i) => wqJson(d.wqs[i])) } : {}),
        ...(g.engines.length
          ? { grouped_engines: g.engines.map((i) => engJson(d.engines[i])) }
          : {}),
      })),
    };
    const ue = d.engines.filter((e) => e.group < 0);
    if (ue.length) out.ungrouped_engines = ue.map(engJson);
    const uw = d.wqs.filter((w) => w.group < 0);
    if (uw.length) out.ungrouped_workqueues = uw.map(wqJson);
    return out;
  });
}
