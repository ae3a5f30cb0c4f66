// Configuration of the emulated DSA devices, in the JSON that `accel-config save-config` writes
// and `accel-config load-config` reads (intel/idxd-config contrib/configs/*.conf):
//
//   [ { "dev": "dsa0", "groups": [ { "dev": "group0.0",
//         "grouped_workqueues": [ { "dev": "wq0.0", "mode": "shared", "size": 128, "group_id": 0,
//             "priority": 10, "block_on_fault": 0, "max_batch_size": 1024,
//             "max_transfer_size": 2097152, "type": "user", "name": "livemig",
//             "driver_name": "user", "threshold": 128 } ],
//         "grouped_engines": [ { "dev": "engine0.0", "group_id": 0 } ] } ],
//       "ungrouped_engines": [ ... ] } ]
//
// Validation follows what the kernel (drivers/dma/idxd/sysfs.c) and accel-config enforce when
// such a file is loaded and enabled, and explains each failure with the accel-config command
// that fixes it. Attributes that `save-config`/`list` print but that are read-only (clients,
// cdev_minor, op_cap, ...) are accepted and ignored; unknown attributes give a warning.

import { availableParallelism } from 'node:os';
import { EMULATED_OPCODES, MAX_BATCH_SIZE, opCapString } from '../opcodes.js';

// ---- The file format (as accel-config writes it) ----

export interface AccfgWq {
  dev: string;
  mode?: 'shared' | 'dedicated' | string;
  size?: number;
  group_id?: number;
  priority?: number;
  block_on_fault?: number;
  max_batch_size?: number;
  max_transfer_size?: number;
  type?: 'user' | 'kernel' | 'none' | string;
  name?: string;
  driver_name?: string;
  threshold?: number;
  state?: 'enabled' | 'disabled' | string;
  [attr: string]: unknown;
}

export interface AccfgEngine {
  dev: string;
  group_id?: number;
  [attr: string]: unknown;
}

export interface AccfgGroup {
  dev: string;
  grouped_workqueues?: AccfgWq[];
  grouped_engines?: AccfgEngine[];
  [attr: string]: unknown;
}

export interface AccfgDevice {
  dev: string;
  groups?: AccfgGroup[];
  ungrouped_engines?: AccfgEngine[];
  ungrouped_workqueues?: AccfgWq[];
  state?: string;
  max_batch_size?: number;
  max_transfer_size?: number;
  [attr: string]: unknown;
}

// ---- The resolved model the emulator runs ----

export type WqMode = 'shared' | 'dedicated';
export type WqType = 'user' | 'kernel' | 'none';

export interface EmuWqConfig {
  /** "wq0.0" */
  name: string;
  /** The M of wqN.M. */
  id: number;
  /** Group id, -1 when ungrouped. */
  group: number;
  mode: WqMode;
  size: number;
  /** Shared WQs: submissions are refused at this occupancy. 0 for dedicated WQs. */
  threshold: number;
  priority: number;
  blockOnFault: boolean;
  maxBatchSize: number;
  maxTransferSize: number;
  type: WqType;
  /** The `name` attribute (the client name accel-config sets with -n). */
  clientName: string;
  driverName: string;
  enabled: boolean;
}

export interface EmuEngineConfig {
  /** "engine0.1" */
  name: string;
  id: number;
  /** Group id, -1 when ungrouped (an ungrouped engine runs nothing and gets no thread). */
  group: number;
}

export interface EmuGroupConfig {
  name: string;
  id: number;
  /** Indices into EmuDeviceConfig.wqs. */
  wqs: number[];
  /** Indices into EmuDeviceConfig.engines. */
  engines: number[];
}

export interface EmuDeviceConfig {
  /** "dsa0" */
  name: string;
  /** The N of dsaN. */
  id: number;
  enabled: boolean;
  maxBatchSize: number;
  maxTransferSize: number;
  maxGroups: number;
  maxWorkQueues: number;
  maxEngines: number;
  maxWorkQueuesSize: number;
  groups: EmuGroupConfig[];
  wqs: EmuWqConfig[];
  engines: EmuEngineConfig[];
}

/** The emulated part's capabilities: those of an SPR DSA 1.0 (dsa-notes §3). */
export const HW_LIMITS = {
  maxGroups: 4,
  maxWorkQueues: 8,
  maxEngines: 4,
  maxWorkQueuesSize: 128,
  maxBatchSize: MAX_BATCH_SIZE,
  maxTransferSize: 2 ** 31,
  version: '0x100',
  opCap: opCapString(EMULATED_OPCODES),
} as const;

/** Kernel defaults for WQ attributes that a configuration leaves out (linux idxd.h). */
export const WQ_DEFAULTS = {
  size: 16,
  maxBatchSize: 32,
  maxTransferSize: 2 * 1024 * 1024,
  priority: 1,
} as const;

/**
 * Engines in the built-in configuration: one per available core, at most the 4 a real device
 * has. An engine is a thread doing the compare a channel thread would otherwise do; a channel
 * waiting on the device uses no CPU, so on a 2-core machine 2 engines keep both cores busy when
 * the compare is the whole job (an all-zero guest), and more would only add context switches.
 */
export function defaultEngineCount(cpus: number = availableParallelism()): number {
  return Math.min(HW_LIMITS.maxEngines, Math.max(1, Math.floor(cpus)));
}

/**
 * The built-in configuration: `dsa0`, `group0.0` with `engines` engines, and `wq0.0`: shared,
 * size 128, threshold 128, max_batch_size 1024, max_transfer_size 2 MiB, type user.
 */
export function defaultAccfgConfig(engines: number = defaultEngineCount()): AccfgDevice[] {
  return [
    {
      dev: 'dsa0',
      groups: [
        {
          dev: 'group0.0',
          grouped_workqueues: [
            {
              dev: 'wq0.0',
              mode: 'shared',
              size: 128,
              group_id: 0,
              priority: 10,
              block_on_fault: 0,
              max_batch_size: 1024,
              max_transfer_size: 2 * 1024 * 1024,
              type: 'user',
              name: 'livemig',
              driver_name: 'user',
              threshold: 128,
            },
          ],
          grouped_engines: Array.from({ length: engines }, (_, i) => ({
            dev: `engine0.${i}`,
            group_id: 0,
          })),
        },
      ],
    },
  ];
}

// ---- Validation ----

export interface ConfigResult {
  devices: EmuDeviceConfig[];
  errors: string[];
  warnings: string[];
}

const DEVICE_ATTRS = new Set([
  'dev',
  'groups',
  'ungrouped_engines',
  'ungrouped_workqueues',
  'state',
  'max_batch_size',
  'max_transfer_size',
  'max_groups',
  'max_work_queues',
  'max_engines',
  'work_queue_size',
  'max_work_queues_size',
  'read_buffer_limit',
  'token_limit',
  'max_read_buffers',
  'max_tokens',
  'numa_node',
  'op_cap',
  'gen_cap',
  'version',
  'configurable',
  'pasid_enabled',
  'cdev_major',
  'clients',
  'event_log_size',
  'iaa_cap',
  'errors',
  'cmd_status',
  'ims_size',
]);
const GROUP_ATTRS = new Set([
  'dev',
  'grouped_workqueues',
  'grouped_engines',
  'read_buffers_reserved',
  'use_read_buffer_limit',
  'read_buffers_allowed',
  'tokens_reserved',
  'use_token_limit',
  'tokens_allowed',
  'traffic_class_a',
  'traffic_class_b',
  'desc_progress_limit',
  'batch_progress_limit',
]);
const WQ_ATTRS = new Set([
  'dev',
  'mode',
  'size',
  'group_id',
  'priority',
  'block_on_fault',
  'max_batch_size',
  'max_transfer_size',
  'cdev_minor',
  'type',
  'name',
  'threshold',
  'ats_disable',
  'prs_disable',
  'op_config',
  'state',
  'clients',
  'driver_name',
  'occupancy',
  'enqcmds_retries',
]);
const ENGINE_ATTRS = new Set(['dev', 'group_id']);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isPow2(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0 && Number.isInteger(n);
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

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

function describe(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'an object' : `${typeof v} ${JSON.stringify(v)}`;
}

function intAttr(
  obj: Record<string, unknown>,
  key: string,
  where: string,
  errors: string[],
  min: number,
  max: number,
): number | undefined {
  const v = obj[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v)) {
    errors.push(`${where}: ${key} must be an integer, got ${JSON.stringify(v)}`);
    return undefined;
  }
  if (v < min || v > max) {
    errors.push(`${where}: ${key} ${v} is out of range (${min}..${max})`);
    return undefined;
  }
  return v;
}

function unknownAttrs(
  obj: Record<string, unknown>,
  known: Set<string>,
  where: string,
  warnings: string[],
): void {
  for (const k of Object.keys(obj)) {
    if (!known.has(k)) warnings.push(`${where}: unknown attribute '${k}' ignored`);
  }
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

function resolveWq(
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
  let maxBatchSize =
    intAttr(w, 'max_batch_size', where, errors, 1, HW_LIMITS.maxBatchSize) ??
    WQ_DEFAULTS.maxBatchSize;
  if (!isPow2(maxBatchSize)) {
    const p = nextPow2(maxBatchSize);
    warnings.push(
      `${where}: max_batch_size ${maxBatchSize} rounded up to ${p} (the kernel keeps powers of two)`,
    );
    maxBatchSize = p;
  }
  let maxTransferSize =
    intAttr(w, 'max_transfer_size', where, errors, 1, HW_LIMITS.maxTransferSize) ??
    WQ_DEFAULTS.maxTransferSize;
  if (!isPow2(maxTransferSize)) {
    const p = nextPow2(maxTransferSize);
    warnings.push(
      `${where}: max_transfer_size ${maxTransferSize} rounded up to ${p} (the kernel keeps powers of two)`,
    );
    maxTransferSize = p;
  }
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

function resolveEngine(
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

/** Resolve, throwing one error that lists every problem. */
export function resolveAccfgConfigOrThrow(json: unknown): EmuDeviceConfig[] {
  const r = resolveAccfgConfig(json);
  if (r.errors.length) {
    throw new Error(`invalid emulated DSA configuration:\n  ${r.errors.join('\n  ')}`);
  }
  return r.devices;
}

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
