// Validation of the work queue and engine entries of a device in an accel-config JSON
// configuration (config-validate.ts handles the file and the device).

import {
  WQ_DEFAULTS,
  type AccfgEngine,
  type AccfgWq,
  type EmuDeviceConfig,
  type EmuEngineConfig,
  type EmuWqConfig,
} from './config.js';
import { memberIndex, pow2Attr } from './config-attributes.js';

/** One work queue that follows the schema: the rules between its fields, and its model. */
export function resolveWq(
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
export function resolveEngine(
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
