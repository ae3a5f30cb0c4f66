// Validation of the work queue and engine entries of a device in an accel-config JSON
// configuration (config-validate.ts handles the file and the device).

import {
  HW_LIMITS,
  WQ_DEFAULTS,
  type EmuDeviceConfig,
  type EmuEngineConfig,
  type EmuWqConfig,
  type WqMode,
  type WqType,
} from './config.js';
import { attributeNames, intAttr, isObject, pow2Attr, unknownAttrs } from './config-attributes.js';

const WQ_ATTRS = attributeNames(`
  dev mode size group_id priority block_on_fault max_batch_size max_transfer_size cdev_minor
  type name threshold ats_disable prs_disable op_config state clients driver_name occupancy
  enqcmds_retries`);
const ENGINE_ATTRS = attributeNames(`
  dev group_id`);

export function resolveWq(
  w: unknown,
  dev: EmuDeviceConfig,
  groupId: number,
  errors: string[],
  warnings: string[],
  seen: Set<string>,
): EmuWqConfig | undefined {
  const devName = dev.name;
  if (!isObject(w) || typeof w.dev !== 'string') {
    errors.push(`${devName}: each work queue must be an object with "dev" (e.g. "wq${dev.id}.0")`);
    return undefined;
  }
  const where = `${devName}/${w.dev}`;
  const m = /^wq(\d+)\.(\d+)$/.exec(w.dev);
  if (!m || Number(m[1]) !== dev.id) {
    errors.push(
      `${devName}: work queue '${w.dev}' does not name a work queue of ${devName} (wq${dev.id}.0 .. wq${dev.id}.${dev.maxWorkQueues - 1})`,
    );
    return undefined;
  }
  const id = Number(m[2]);
  if (id >= dev.maxWorkQueues) {
    errors.push(
      `${where}: ${devName} has ${dev.maxWorkQueues} work queues (wq${dev.id}.0 .. wq${dev.id}.${dev.maxWorkQueues - 1})`,
    );
    return undefined;
  }
  if (seen.has(w.dev)) {
    errors.push(`${where}: the work queue appears twice`);
    return undefined;
  }
  seen.add(w.dev);
  unknownAttrs(w, WQ_ATTRS, where, warnings);
  const before = errors.length;

  const gid = intAttr(w, 'group_id', where, errors, -1, dev.maxGroups - 1);
  if (gid !== undefined && gid !== groupId) {
    errors.push(
      groupId < 0
        ? `${where}: group_id ${gid} on an ungrouped work queue; move it into group${dev.id}.${gid}'s grouped_workqueues`
        : `${where}: group_id ${gid} does not match its group group${dev.id}.${groupId}`,
    );
  }
  let mode: WqMode = 'dedicated';
  let modeOk = true;
  if (w.mode !== undefined) {
    if (w.mode === 'shared' || w.mode === 'dedicated') mode = w.mode;
    else {
      errors.push(`${where}: mode '${String(w.mode)}' must be 'shared' or 'dedicated'`);
      modeOk = false;
    }
  }
  const size = intAttr(w, 'size', where, errors, 0, dev.maxWorkQueuesSize) ?? WQ_DEFAULTS.size;
  const priority = intAttr(w, 'priority', where, errors, 1, 15) ?? WQ_DEFAULTS.priority;
  const bof = intAttr(w, 'block_on_fault', where, errors, 0, 1) ?? 0;
  const limit = (key: string, max: number, fallback: number) =>
    pow2Attr(intAttr(w, key, where, errors, 1, max) ?? fallback, key, where, warnings);
  const maxBatchSize = limit('max_batch_size', HW_LIMITS.maxBatchSize, WQ_DEFAULTS.maxBatchSize);
  const { maxTransferSize: maxXfer } = HW_LIMITS;
  const maxTransferSize = limit('max_transfer_size', maxXfer, WQ_DEFAULTS.maxTransferSize);
  let type: WqType = 'none';
  if (w.type !== undefined) {
    if (w.type === 'user' || w.type === 'kernel' || w.type === 'none') type = w.type;
    else errors.push(`${where}: type '${String(w.type)}' must be 'user', 'kernel' or 'none'`);
  }
  let enabled = true;
  if (w.state !== undefined) {
    if (w.state === 'disabled') enabled = false;
    else if (w.state !== 'enabled') {
      errors.push(`${where}: state '${String(w.state)}' must be 'enabled' or 'disabled'`);
    }
  }
  const thresholdRaw = intAttr(w, 'threshold', where, errors, 0, dev.maxWorkQueuesSize);
  let threshold = 0;
  if (!modeOk) {
    // The threshold rules depend on the mode; the mode error says enough.
  } else if (mode === 'dedicated') {
    if (thresholdRaw) {
      errors.push(
        `${where}: threshold ${thresholdRaw} on a dedicated work queue; thresholds apply to shared WQs only (set it to 0, or use -m shared)`,
      );
    }
  } else {
    threshold = thresholdRaw ?? 0;
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
  const driverName =
    typeof w.driver_name === 'string' ? w.driver_name : type === 'user' ? 'user' : '';
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
    priority,
    blockOnFault: bof === 1,
    maxBatchSize,
    maxTransferSize,
    type,
    clientName: typeof w.name === 'string' ? w.name : '',
    driverName,
    enabled,
  };
}

export function resolveEngine(
  e: unknown,
  dev: EmuDeviceConfig,
  groupId: number,
  errors: string[],
  warnings: string[],
  seen: Set<string>,
): EmuEngineConfig | undefined {
  if (!isObject(e) || typeof e.dev !== 'string') {
    errors.push(`${dev.name}: each engine must be an object with "dev" (e.g. "engine${dev.id}.0")`);
    return undefined;
  }
  const where = `${dev.name}/${e.dev}`;
  const m = /^engine(\d+)\.(\d+)$/.exec(e.dev);
  if (!m || Number(m[1]) !== dev.id) {
    errors.push(
      `${dev.name}: engine '${e.dev}' does not name an engine of ${dev.name} (engine${dev.id}.0 .. engine${dev.id}.${dev.maxEngines - 1})`,
    );
    return undefined;
  }
  const id = Number(m[2]);
  if (id >= dev.maxEngines) {
    errors.push(
      `${where}: ${dev.name} has ${dev.maxEngines} engines (engine${dev.id}.0 .. engine${dev.id}.${dev.maxEngines - 1})`,
    );
    return undefined;
  }
  if (seen.has(e.dev)) {
    errors.push(`${where}: the engine appears twice`);
    return undefined;
  }
  seen.add(e.dev);
  unknownAttrs(e, ENGINE_ATTRS, where, warnings);
  const gid = intAttr(e, 'group_id', where, errors, -1, dev.maxGroups - 1);
  if (gid !== undefined && gid !== groupId) {
    errors.push(
      groupId < 0
        ? `${where}: group_id ${gid} on an ungrouped engine; move it into group${dev.id}.${gid}'s grouped_engines`
        : `${where}: group_id ${gid} does not match its group group${dev.id}.${groupId}`,
    );
    return undefined;
  }
  return { name: e.dev, id, group: groupId };
}
