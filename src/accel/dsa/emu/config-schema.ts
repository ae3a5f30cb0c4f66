// The accel-config JSON (config.ts shows the file) as a JSON Schema, checked with ajv: the types,
// the ranges at the emulated part's limits (HW_LIMITS), the enums, the forms of the names, the
// required "dev", and the attributes that exist. What depends on other fields (a name's device
// number, limits the file itself lowers, thresholds against sizes, groups) is checked in
// config-validate*.ts, on what passed here.

import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import { HW_LIMITS } from './config.js';
import { article, attributeNames, isObject, isPow2 } from './config-attributes.js';
import { jsonPath, pointerKeys } from '../../../util/json-path.js';

const int = (minimum: number, maximum: number) => ({ type: 'integer', minimum, maximum });
const pow2 = (minimum: number, maximum: number) => ({ ...int(minimum, maximum), powerOfTwo: true });
const STATE = { enum: ['enabled', 'disabled'] };
const GROUP_ID = int(-1, HW_LIMITS.maxGroups - 1);
const QUEUE_SIZE = int(0, HW_LIMITS.maxWorkQueuesSize);

/**
 * An object with a "dev" name of the form `pattern` (`form` says it in words), the attributes
 * `props` checked as given, and the attributes `unchecked` (read-only ones `save-config` and
 * `list` print, or ones the emulation has no use for) accepted as anything. Any other attribute
 * is unknown: the caller turns those into warnings, since the file is still usable without them.
 */
function accfgObject(pattern: string, form: string, props: object, unchecked: string) {
  const any = Object.fromEntries([...attributeNames(unchecked)].map((k) => [k, {}]));
  return {
    type: 'object',
    required: ['dev'],
    properties: { dev: { type: 'string', pattern, description: form }, ...props, ...any },
    additionalProperties: false,
  };
}
const list = (items: object) => ({ type: 'array', items });
// WQs and engines stand in two places each: defined once ($defs), so ajv compiles them once.
const WQ_REF = { $ref: '#/$defs/wq' };
const ENGINE_REF = { $ref: '#/$defs/engine' };

const ENGINE = accfgObject(
  '^engine\\d+\\.\\d+$',
  'engineN.M, e.g. engine0.0',
  { group_id: GROUP_ID },
  '',
);

const WQ = accfgObject(
  '^wq\\d+\\.\\d+$',
  'wqN.M, e.g. wq0.0',
  {
    mode: { enum: ['shared', 'dedicated'] },
    size: QUEUE_SIZE,
    group_id: GROUP_ID,
    priority: int(1, 15),
    block_on_fault: int(0, 1),
    // Rounded up to a power of two by the kernel (a warning, config-validate.ts).
    max_batch_size: int(1, HW_LIMITS.maxBatchSize),
    max_transfer_size: int(1, HW_LIMITS.maxTransferSize),
    type: { enum: ['user', 'kernel', 'none'] },
    name: { type: 'string' },
    driver_name: { type: 'string' },
    threshold: QUEUE_SIZE,
    state: STATE,
  },
  'cdev_minor ats_disable prs_disable op_config clients occupancy enqcmds_retries',
);

const GROUP = accfgObject(
  '^group\\d+\\.\\d+$',
  'groupN.M, e.g. group0.0',
  { grouped_workqueues: list(WQ_REF), grouped_engines: list(ENGINE_REF) },
  `read_buffers_reserved use_read_buffer_limit read_buffers_allowed tokens_reserved
  use_token_limit tokens_allowed traffic_class_a traffic_class_b desc_progress_limit
  batch_progress_limit`,
);

const DEVICE = accfgObject(
  '^dsa\\d+$',
  'a DSA device name, dsaN (e.g. dsa0); IAA (iax) devices are not emulated',
  {
    groups: list(GROUP),
    ungrouped_engines: list(ENGINE_REF),
    ungrouped_workqueues: list(WQ_REF),
    state: STATE,
    max_batch_size: pow2(2, HW_LIMITS.maxBatchSize),
    max_transfer_size: pow2(4096, HW_LIMITS.maxTransferSize),
    max_groups: int(1, HW_LIMITS.maxGroups),
    max_work_queues: int(1, HW_LIMITS.maxWorkQueues),
    max_engines: int(1, HW_LIMITS.maxEngines),
    max_work_queues_size: int(1, HW_LIMITS.maxWorkQueuesSize),
    work_queue_size: int(1, HW_LIMITS.maxWorkQueuesSize),
  },
  `read_buffer_limit token_limit max_read_buffers max_tokens numa_node op_cap gen_cap version
  configurable pasid_enabled cdev_major clients event_log_size iaa_cap errors cmd_status
  ims_size`,
);

export const ACCFG_SCHEMA = {
  $schema: 'https://json-schema.org/draft/2020-12/schema',
  title: 'accel-config configuration of the emulated DSA devices',
  description: 'a JSON array of devices, as accel-config save-config writes, e.g. [{"dev":"dsa0"}]',
  type: 'array',
  minItems: 1,
  items: DEVICE,
  $defs: { wq: WQ, engine: ENGINE },
};

const ajv = new Ajv2020({ allErrors: true, verbose: true });
ajv.addKeyword({
  keyword: 'powerOfTwo',
  type: 'number',
  schemaType: 'boolean',
  validate: (wanted: boolean, n: number) => !wanted || isPow2(n),
});
// Compiled when first used: it takes tens of milliseconds, which a process that never reads a
// configuration (every `livemig` command imports this) should not pay.
let checkAccfg: ValidateFunction | undefined;

export interface SchemaResult {
  /** Unusable: a value of the wrong type, out of range, not allowed, or missing. */
  errors: string[];
  /** Unknown attributes, ignored. */
  warnings: string[];
  /** Indices of the devices that have errors. */
  badDevices: Set<number>;
}

/** Check an accel-config JSON configuration against ACCFG_SCHEMA. */
export function checkAccfgSchema(json: unknown): SchemaResult {
  const result: SchemaResult = { errors: [], warnings: [], badDevices: new Set() };
  checkAccfg ??= ajv.compile(ACCFG_SCHEMA);
  if (checkAccfg(json)) return result;
  for (const e of checkAccfg.errors ?? []) {
    if (e.keyword === 'additionalProperties') {
      const attr = String(e.params.additionalProperty);
      result.warnings.push(`${place(json, e.instancePath)}: unknown attribute '${attr}' ignored`);
      continue;
    }
    result.errors.push(`${place(json, e.instancePath)}: ${problem(e)}`);
    const device = pointerKeys(e.instancePath)[0];
    if (device !== undefined) result.badDevices.add(Number(device));
  }
  return result;
}

/** What one ajv error says, in words: the bad value and what is allowed (place() says where). */
function problem(e: ErrorObject): string {
  const key = pointerKeys(e.instancePath).at(-1) ?? '';
  const what = e.instancePath === '' ? 'the configuration' : /^\d+$/.test(key) ? 'entry' : key;
  const value = JSON.stringify(e.data);
  const s = (e.parentSchema ?? {}) as Record<string, unknown>;
  const range = `${String(s.minimum)}..${String(s.maximum)}`;
  switch (e.keyword) {
    case 'type': {
      const form = s.description === undefined ? '' : ` (${String(s.description)})`;
      return `${what} must be ${article(String(e.params.type))}${form}, got ${describe(e.data)}`;
    }
    case 'minimum':
    case 'maximum':
      return `${what} ${value} is out of range (${range})`;
    case 'powerOfTwo':
      return `${what} ${value} is not a power of two (${range})`;
    case 'enum':
      return `${what} ${value} is not one of ${(s.enum as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'pattern':
      return `${what} ${value} is not ${String(s.description)}`;
    case 'required': {
      const missing = String(e.params.missingProperty);
      const form = (s.properties as Record<string, { description?: string }>)[missing].description;
      return `"${missing}" is missing (${String(form)})`;
    }
    case 'minItems':
      return `${what} is empty; it needs at least ${String(s.minItems)} (${String(s.description)})`;
    default:
      return `${what} ${e.message ?? e.keyword}`;
  }
}

/**
 * Where a JSON pointer leads, for a person: the "dev" names of the objects on the way, then
 * the JSON path. '/0/groups/0/grouped_workqueues/1/size' -> 'dsa0/group0.0/wq0.1
 * ($[0].groups[0].grouped_workqueues[1].size)'.
 */
function place(json: unknown, pointer: string): string {
  const keys = pointerKeys(pointer);
  const names: string[] = [];
  let node = json;
  for (const key of [...keys, undefined]) {
    if (isObject(node) && typeof node.dev === 'string') names.push(node.dev);
    if (key !== undefined) node = (node as Record<string, unknown> | undefined)?.[key];
  }
  const path = jsonPath(keys);
  return names.length ? `${names.join('/')} (${path})` : path;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'object') return article(Array.isArray(v) ? 'array' : 'object');
  return `${typeof v} ${JSON.stringify(v)}`;
}
