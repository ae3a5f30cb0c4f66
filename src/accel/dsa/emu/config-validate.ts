// Validation of an accel-config JSON configuration (config.ts) into the emulator's model. It
// follows what the kernel (drivers/dma/idxd/sysfs.c) and accel-config enforce when such a file
// is loaded and enabled, and explains each failure with the accel-config command that fixes
// it. config-schema.ts checks each value on its own (types, ranges, names' forms, which
// attributes exist); this file and config-validate-wq.ts check the rules between fields.

import {
  HW_LIMITS,
  type AccfgDevice,
  type EmuDeviceConfig,
  type EmuGroupConfig,
} from './config.js';
import { memberIndex } from './config-attributes.js';
import { checkAccfgSchema, type SchemaResult } from './config-schema.js';
import { resolveEngine, resolveWq } from './config-validate-wq.js';

export interface ConfigResult {
  devices: EmuDeviceConfig[];
  errors: string[];
  warnings: string[];
}

/**
 * Validate an accel-config JSON configuration and resolve it into the emulator's model.
 * Never throws: problems come back as `errors` (the configuration cannot be used) and
 * `warnings` (it can, with the stated adjustment). A device with an error is left out.
 * `builtIn`: `json` is defaultAccfgConfig()'s, which follows the schema by construction
 * (config.test.ts checks it), so it skips ajv, whose compile (50-90 ms on first use) would
 * otherwise delay the start of a migration's devices.
 */
export function resolveAccfgConfig(json: unknown, { builtIn = false } = {}): ConfigResult {
  const { errors, warnings, badDevices }: SchemaResult = builtIn
    ? { errors: [], warnings: [], badDevices: new Set() }
    : checkAccfgSchema(json);
  const devices: EmuDeviceConfig[] = [];
  // The schema said what is wrong with anything but an array of devices.
  const list: AccfgDevice[] = Array.isArray(json) ? json : [];
  const seenDevices = new Set<string>();
  list.forEach((d, i) => {
    if (badDevices.has(i)) return;
    const dev = resolveDevice(d, errors, warnings);
    if (!dev) return;
    if (seenDevices.has(dev.name)) {
      errors.push(`${dev.name}: the device appears twice in the configuration`);
      return;
    }
    seenDevices.add(dev.name);
    devices.push(dev);
  });
  return { devices, errors, warnings };
}

/** One device that follows the schema: the rules between its fields, and its model. */
function resolveDevice(
  d: AccfgDevice,
  errors: string[],
  warnings: string[],
): EmuDeviceConfig | undefined {
  const name = d.dev;
  if (Object.keys(d)[0] !== 'dev') {
    warnings.push(
      `${name}: "dev" should be the first key of the object (accel-config requires it)`,
    );
  }
  const id = Number(name.slice('dsa'.length));
  const errCount = errors.length;
  const maxGroups = d.max_groups ?? HW_LIMITS.maxGroups;
  const maxWorkQueues = d.max_work_queues ?? HW_LIMITS.maxWorkQueues;
  const maxEngines = d.max_engines ?? HW_LIMITS.maxEngines;
  const maxWorkQueuesSize =
    d.max_work_queues_size ?? d.work_queue_size ?? HW_LIMITS.maxWorkQueuesSize;
  const maxBatchSize = d.max_batch_size ?? HW_LIMITS.maxBatchSize;
  const maxTransferSize = d.max_transfer_size ?? HW_LIMITS.maxTransferSize;
  const enabled = d.state !== 'disabled';

  const dev: EmuDeviceConfig = {
    name,
    id,
    enabled,
    maxBatchSize,
    maxTransferSize,
    maxGroups,
    maxWorkQueues,
    maxEngines,
    maxWorkQueuesSize,
    groups: [],
    wqs: [],
    engines: [],
  };

  const seenWq = new Set<number>();
  const seenEngine = new Set<number>();
  const seenGroup = new Set<number>();
  for (const g of d.groups ?? []) {
    const gid = memberIndex(g.dev, 'group', dev, maxGroups, seenGroup, errors);
    if (gid === undefined) continue;
    const group: EmuGroupConfig = { name: g.dev, id: gid, wqs: [], engines: [] };
    dev.groups.push(group);
    for (const w of g.grouped_workqueues ?? []) {
      const wq = resolveWq(w, dev, gid, errors, warnings, seenWq);
      if (wq) {
        group.wqs.push(dev.wqs.length);
        dev.wqs.push(wq);
      }
    }
    for (const e of g.grouped_engines ?? []) {
      const eng = resolveEngine(e, dev, gid, errors, seenEngine);
      if (eng) {
        group.engines.push(dev.engines.length);
        dev.engines.push(eng);
      }
    }
  }
  for (const w of d.ungrouped_workqueues ?? []) {
    const wq = resolveWq(w, dev, -1, errors, warnings, seenWq);
    if (wq) dev.wqs.push(wq);
  }
  for (const e of d.ungrouped_engines ?? []) {
    const eng = resolveEngine(e, dev, -1, errors, seenEngine);
    if (eng) dev.engines.push(eng);
  }
  dev.groups.sort((a, b) => a.id - b.id);

  // Device-wide rules, as the kernel applies them when the device is enabled.
  const total = dev.wqs.reduce((s, w) => s + (w.group >= 0 ? w.size : 0), 0);
  if (total > maxWorkQueuesSize) {
    errors.push(
      `${name}: the work queue sizes add up to ${total}, more than the device's ${maxWorkQueuesSize} entries; shrink them with accel-config config-wq ${name}/wqN.M -s SIZE`,
    );
  }
  for (const g of dev.groups) {
    const enabledWqs = g.wqs.map((i) => dev.wqs[i]).filter((w) => w.enabled);
    if (enabledWqs.length > 0 && g.engines.length === 0) {
      errors.push(
        `${name}/${g.name}: the group has work queues but no engines, so nothing would run their descriptors; add one with accel-config config-engine ${name}/engine${id}.0 -g ${g.id}`,
      );
    }
  }
  for (const w of dev.wqs) {
    if (w.maxBatchSize > maxBatchSize) {
      errors.push(
        `${name}/${w.name}: max_batch_size ${w.maxBatchSize} exceeds the device's ${maxBatchSize}`,
      );
    }
    if (w.maxTransferSize > maxTransferSize) {
      errors.push(
        `${name}/${w.name}: max_transfer_size ${w.maxTransferSize} exceeds the device's ${maxTransferSize}`,
      );
    }
  }
  if (!dev.enabled && dev.wqs.some((w) => w.enabled)) {
    warnings.push(`${name}: the device is disabled, so none of its work queues can be used`);
  }
  return errors.length === errCount ? dev : undefined;
}
