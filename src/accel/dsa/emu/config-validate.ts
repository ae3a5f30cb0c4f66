// Validation of an accel-config JSON configuration (config.ts) into the emulator's model. It
// follows what the kernel (drivers/dma/idxd/sysfs.c) and accel-config enforce when such a file
// is loaded and enabled, and explains each failure with the accel-config command that fixes
// it. config-schema.ts checks each value on its own (types, ranges, names' forms, which
// attributes exist); this file checks the rules between fields.

import {
  HW_LIMITS,
  WQ_DEFAULTS,
  type AccfgDevice,
  type AccfgEngine,
  type AccfgWq,
  type EmuDeviceConfig,
  type EmuEngineConfig,
  type EmuGroupConfig,
  type EmuWqConfig,
} from './config.js';
import { memberIndex, pow2Attr } from './config-attributes.js';
import { checkAccfgSchema, type SchemaResult } from './config-schema.js';

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

/** One work queue that follows the schema: the rules between its fields, and its model. */
function resolveWq(
  w: AccfgWq,
  dev: EmuDeviceConfig,
  groupId: number,
  errors: string[],
  warnings: string[],
  seen: Set<number>,
): EmuWqConfig | undefined {
  const devName = dev.name;
  const where = `${devName}/${w.dev}`;
  const id = memberIndex(w.dev, 'work queue', dev, dev.maxWorkQueues, seen, errors);
  if (id === undefined) return undefined;
  const before = errors.length;

  const gid = w.group_id;
  if (gid !== undefined && gid !== groupId) {
    errors.push(
      groupId < 0
        ? `${where}: group_id ${gid} on an ungrouped work queue; move it into group${dev.id}.${gid}'s grouped_workqueues`
        : `${where}: group_id ${gid} does not match its group group${dev.id}.${groupId}`,
    );
  }
  const mode = w.mode ?? 'dedicated';
  const size = w.size ?? WQ_DEFAULTS.size;
  if (size > dev.maxWorkQueuesSize) {
    errors.push(
      `${where}: size ${size} exceeds the device's max_work_queues_size ${dev.maxWorkQueuesSize}`,
    );
  }
  const limit = (key: 'max_batch_size' | 'max_transfer_size', fallback: number) =>
    pow2Attr(w[key] ?? fallback, key, where, warnings);
  const maxBatchSize = limit('max_batch_size', WQ_DEFAULTS.maxBatchSize);
  const maxTransferSize = limit('max_transfer_size', WQ_DEFAULTS.maxTransferSize);
  const type = w.type ?? 'none';
  const enabled = w.state !== 'disabled';
  let threshold = 0;
  if (mode === 'dedicated') {
    if (w.threshold) {
      errors.push(
        `${where}: threshold ${w.threshold} on a dedicated work queue; thresholds apply to shared WQs only (set it to 0, or use -m shared)`,
      );
    }
  } else {
    threshold = w.threshold ?? 0;
    if (enabled && threshold === 0) {
      errors.push(
        `${where}: a shared work queue needs a threshold between 1 and its size ${size}; set it with accel-config config-wq ${devName}/${w.dev} -t ${size}`,
      );
    } else if (threshold > size) {
      errors.push(`${where}: threshold ${threshold} exceeds the work queue size ${size}`);
    }
  }
  if (enabled) {
    if (groupId < 0) {
      errors.push(
        `${where}: an enabled work queue must belong to a group; configure it with accel-config config-wq ${devName}/${w.dev} -g 0`,
      );
    }
    if (size === 0) {
      errors.push(
        `${where}: an enabled work queue needs a size > 0; accel-config config-wq ${devName}/${w.dev} -s 16`,
      );
    }
    if (type === 'none') {
      errors.push(
        `${where}: an enabled work queue needs a type; for livemig use accel-config config-wq ${devName}/${w.dev} -y user -d user -n livemig`,
      );
    }
  }
  const driverName = w.driver_name ?? (type === 'user' ? 'user' : '');
  if (type === 'user' && driverName !== 'user') {
    warnings.push(
      `${where}: driver_name '${driverName}' on a user work queue; accel-config uses 'user'`,
    );
  }
  if (errors.length !== before) return undefined;
  return {
    name: w.dev,
    id,
    group: groupId,
    mode,
    size,
    threshold,
    priority: w.priority ?? WQ_DEFAULTS.priority,
    blockOnFault: w.block_on_fault === 1,
    maxBatchSize,
    maxTransferSize,
    type,
    clientName: w.name ?? '',
    driverName,
    enabled,
  };
}

/** One engine that follows the schema: its name and group, and its model. */
function resolveEngine(
  e: AccfgEngine,
  dev: EmuDeviceConfig,
  groupId: number,
  errors: string[],
  seen: Set<number>,
): EmuEngineConfig | undefined {
  const id = memberIndex(e.dev, 'engine', dev, dev.maxEngines, seen, errors);
  if (id === undefined) return undefined;
  const gid = e.group_id;
  if (gid !== undefined && gid !== groupId) {
    errors.push(
      groupId < 0
        ? `${dev.name}/${e.dev}: group_id ${gid} on an ungrouped engine; move it into group${dev.id}.${gid}'s grouped_engines`
        : `${dev.name}/${e.dev}: group_id ${gid} does not match its group group${dev.id}.${groupId}`,
    );
    return undefined;
  }
  return { name: e.dev, id, group: groupId };
}
