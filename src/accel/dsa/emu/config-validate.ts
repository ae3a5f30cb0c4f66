// Validation of an accel-config JSON configuration (config.ts) into the emulator's model. It
// follows what the kernel (drivers/dma/idxd/sysfs.c) and accel-config enforce when such a file
// is loaded and enabled, and explains each failure with the accel-config command that fixes
// it. Attributes that `save-config`/`list` print but that are read-only (clients, cdev_minor,
// op_cap, ...) are accepted and ignored; unknown attributes give a warning.

import { HW_LIMITS, type EmuDeviceConfig, type EmuGroupConfig } from './config.js';
import {
  attributeNames,
  describe,
  intAttr,
  isObject,
  isPow2,
  nextPow2,
  unknownAttrs,
} from './config-attributes.js';
import { resolveEngine, resolveWq } from './config-validate-wq.js';

export interface ConfigResult {
  devices: EmuDeviceConfig[];
  errors: string[];
  warnings: string[];
}

const DEVICE_ATTRS = attributeNames(`
  dev groups ungrouped_engines ungrouped_workqueues state max_batch_size max_transfer_size
  max_groups max_work_queues max_engines work_queue_size max_work_queues_size
  read_buffer_limit token_limit max_read_buffers max_tokens numa_node op_cap gen_cap version
  configurable pasid_enabled cdev_major clients event_log_size iaa_cap errors cmd_status
  ims_size`);
const GROUP_ATTRS = attributeNames(`
  dev grouped_workqueues grouped_engines read_buffers_reserved use_read_buffer_limit
  read_buffers_allowed tokens_reserved use_token_limit tokens_allowed traffic_class_a
  traffic_class_b desc_progress_limit batch_progress_limit`);
/**
 * Validate an accel-config JSON configuration and resolve it into the emulator's model.
 * Never throws: problems come back as `errors` (the configuration cannot be used) and
 * `warnings` (it can, with the stated adjustment).
 */
export function resolveAccfgConfig(json: unknown): ConfigResult {
  const errors: string[] = [];
  const warnings: string[] = [];
  const devices: EmuDeviceConfig[] = [];
  if (!Array.isArray(json)) {
    errors.push(
      `the configuration must be a JSON array of devices (as accel-config save-config writes), got ${describe(json)}`,
    );
    return { devices, errors, warnings };
  }
  if (json.length === 0) {
    errors.push('the configuration has no devices; add at least one, e.g. {"dev":"dsa0", ...}');
  }
  const seenDevices = new Set<string>();
  json.forEach((d, i) => {
    const dev = resolveDevice(d, i, errors, warnings);
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

function resolveDevice(
  d: unknown,
  index: number,
  errors: string[],
  warnings: string[],
): EmuDeviceConfig | undefined {
  if (!isObject(d)) {
    errors.push(`device #${index}: expected an object with "dev", got ${describe(d)}`);
    return undefined;
  }
  const name = d.dev;
  if (typeof name !== 'string') {
    errors.push(`device #${index}: missing "dev" (the device name, e.g. "dsa0")`);
    return undefined;
  }
  if (Object.keys(d)[0] !== 'dev') {
    warnings.push(
      `${name}: "dev" should be the first key of the object (accel-config requires it)`,
    );
  }
  const m = /^(dsa|iax)(\d+)$/.exec(name);
  if (!m) {
    errors.push(`device #${index}: name '${name}' is not a DSA device name (dsaN, e.g. dsa0)`);
    return undefined;
  }
  if (m[1] === 'iax') {
    errors.push(
      `${name}: IAA (iax) devices are not emulated; only DSA devices (dsaN) can be configured`,
    );
    return undefined;
  }
  const id = Number(m[2]);
  unknownAttrs(d, DEVICE_ATTRS, name, warnings);
  const errCount = errors.length;

  const maxGroups =
    intAttr(d, 'max_groups', name, errors, 1, HW_LIMITS.maxGroups) ?? HW_LIMITS.maxGroups;
  const maxWorkQueues =
    intAttr(d, 'max_work_queues', name, errors, 1, HW_LIMITS.maxWorkQueues) ??
    HW_LIMITS.maxWorkQueues;
  const maxEngines =
    intAttr(d, 'max_engines', name, errors, 1, HW_LIMITS.maxEngines) ?? HW_LIMITS.maxEngines;
  const maxWorkQueuesSize =
    intAttr(d, 'max_work_queues_size', name, errors, 1, HW_LIMITS.maxWorkQueuesSize) ??
    intAttr(d, 'work_queue_size', name, errors, 1, HW_LIMITS.maxWorkQueuesSize) ??
    HW_LIMITS.maxWorkQueuesSize;
  let maxBatchSize =
    intAttr(d, 'max_batch_size', name, errors, 2, HW_LIMITS.maxBatchSize) ?? HW_LIMITS.maxBatchSize;
  if (!isPow2(maxBatchSize)) {
    errors.push(`${name}: max_batch_size ${maxBatchSize} is not a power of two`);
    maxBatchSize = nextPow2(maxBatchSize);
  }
  const maxTransferSize =
    intAttr(d, 'max_transfer_size', name, errors, 4096, HW_LIMITS.maxTransferSize) ??
    HW_LIMITS.maxTransferSize;
  if (!isPow2(maxTransferSize)) {
    errors.push(`${name}: max_transfer_size ${maxTransferSize} is not a power of two`);
  }
  let enabled = true;
  if (d.state !== undefined) {
    if (d.state === 'disabled') enabled = false;
    else if (d.state !== 'enabled') {
      errors.push(`${name}: state '${String(d.state)}' must be 'enabled' or 'disabled'`);
    }
  }

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

  const groups = d.groups;
  if (groups !== undefined && !Array.isArray(groups)) {
    errors.push(`${name}: "groups" must be an array`);
  }
  const seenWq = new Set<string>();
  const seenEngine = new Set<string>();
  const seenGroup = new Set<number>();
  for (const [gi, g] of (Array.isArray(groups) ? groups : []).entries()) {
    if (!isObject(g) || typeof g.dev !== 'string') {
      errors.push(`${name}: group #${gi} must be an object with "dev" (e.g. "group${id}.0")`);
      continue;
    }
    const gm = /^group(\d+)\.(\d+)$/.exec(g.dev);
    if (!gm || Number(gm[1]) !== id) {
      errors.push(
        `${name}: group '${g.dev}' does not name a group of ${name} (group${id}.0 .. group${id}.${maxGroups - 1})`,
      );
      continue;
    }
    const gid = Number(gm[2]);
    if (gid >= maxGroups) {
      errors.push(
        `${name}/${g.dev}: ${name} has ${maxGroups} groups (group${id}.0 .. group${id}.${maxGroups - 1})`,
      );
      continue;
    }
    if (seenGroup.has(gid)) {
      errors.push(`${name}/${g.dev}: the group appears twice`);
      continue;
    }
    seenGroup.add(gid);
    unknownAttrs(g, GROUP_ATTRS, `${name}/${g.dev}`, warnings);
    const group: EmuGroupConfig = { name: g.dev, id: gid, wqs: [], engines: [] };
    dev.groups.push(group);
    const gwqs = g.grouped_workqueues ?? [];
    const gengs = g.grouped_engines ?? [];
    if (!Array.isArray(gwqs)) errors.push(`${name}/${g.dev}: grouped_workqueues must be an array`);
    if (!Array.isArray(gengs)) errors.push(`${name}/${g.dev}: grouped_engines must be an array`);
    for (const w of Array.isArray(gwqs) ? gwqs : []) {
      const wq = resolveWq(w, dev, gid, errors, warnings, seenWq);
      if (wq) {
        group.wqs.push(dev.wqs.length);
        dev.wqs.push(wq);
      }
    }
    for (const e of Array.isArray(gengs) ? gengs : []) {
      const eng = resolveEngine(e, dev, gid, errors, warnings, seenEngine);
      if (eng) {
        group.engines.push(dev.engines.length);
        dev.engines.push(eng);
      }
    }
  }
  for (const [key, isWq] of [
    ['ungrouped_workqueues', true],
    ['ungrouped_engines', false],
  ] as const) {
    const list = d[key];
    if (list === undefined) continue;
    if (!Array.isArray(list)) {
      errors.push(`${name}: ${key} must be an array`);
      continue;
    }
    for (const x of list) {
      if (isWq) {
        const wq = resolveWq(x, dev, -1, errors, warnings, seenWq);
        if (wq) dev.wqs.push(wq);
      } else {
        const eng = resolveEngine(x, dev, -1, errors, warnings, seenEngine);
        if (eng) dev.engines.push(eng);
      }
    }
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
