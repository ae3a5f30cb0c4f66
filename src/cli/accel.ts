// `livemig accel list [--json]`, `livemig accel check CONFIG.json` and `livemig accel selftest
// TARGET`, as functions the CLI wires up: they return text (or a result) and never print or
// exit themselves.

import { readFile } from 'node:fs/promises';
import { formatBytes } from '../util/size.js';
import {
  defaultAccfgConfig,
  type AccfgDevice,
  type EmuDeviceConfig,
} from '../accel/dsa/emu/config.js';
import { toAccfgList } from '../accel/dsa/emu/config-list.js';
import { resolveAccfgConfig } from '../accel/dsa/emu/config-validate.js';
import { DsaEmu, EmulatedDevice } from '../accel/dsa/emu/device.js';
import type { DsaEmuHandle } from '../accel/dsa/emu/handles.js';
import {
  listSysfs,
  type SysfsDevice,
  type SysfsListing,
  type SysfsOptions,
} from '../accel/sysfs.js';
import { accelSelftest, type SelftestOptions } from '../accel/hw/selftest.js';
import { tableLines } from '../util/table.js';

export interface AccelListOptions {
  json?: boolean;
  /**
   * The emulated configuration to show: a path to an accel-config JSON file or the parsed
   * JSON. Default: the built-in configuration. Ignored when `emu` is given.
   */
  emuConfig?: string | unknown[];
  /** Running emulated devices: shows their live state (halted, WQ occupancy). */
  emu?: DsaEmu | DsaEmuHandle;
  sysfs?: SysfsOptions;
}

export interface AccelListing {
  emulated: { source: string; devices: AccfgDevice[]; errors?: string[] };
  sysfs: SysfsListing;
}

async function readJson(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${path} is not valid JSON: ${(e as Error).message}`);
  }
}

/** Devices, groups, engines and WQs of the emulated configuration and of sysfs. */
export async function accelListing(opts: AccelListOptions = {}): Promise<AccelListing> {
  let emulated: AccelListing['emulated'];
  if (opts.emu) {
    const handle = opts.emu instanceof DsaEmu ? opts.emu.handle : opts.emu;
    const configs: EmuDeviceConfig[] = handle.devices.map((d) => d.config);
    const live = new Map(handle.devices.map((d) => [d.name, new EmulatedDevice(d)]));
    emulated = {
      source: 'running',
      devices: toAccfgList(configs, (c) => {
        const dev = live.get(c.name)!;
        return {
          device: dev.state,
          wqs: new Map(
            dev.wqStats().map((s) => [s.name, { state: s.state, occupancy: s.occupancy }]),
          ),
        };
      }),
    };
  } else {
    const source =
      typeof opts.emuConfig === 'string' ? opts.emuConfig : opts.emuConfig ? 'given' : 'built-in';
    const json =
      typeof opts.emuConfig === 'string'
        ? await readJson(opts.emuConfig)
        : (opts.emuConfig ?? defaultAccfgConfig());
    const r = resolveAccfgConfig(json);
    emulated = {
      source,
      devices: toAccfgList(r.devices),
      ...(r.errors.length ? { errors: r.errors } : {}),
    };
  }
  return { emulated, sysfs: await listSysfs(opts.sysfs) };
}

const WQ_HEAD = ['wq', 'group', 'state', 'mode', 'type', 'size', 'threshold', 'priority'];
const NUMERIC = new Set(['size', 'threshold', 'priority', 'max batch', 'max xfer', 'occupancy']);

/** A WQ's row in its device's table; `live`: with its occupancy. */
function wqRow(
  w: Record<string, unknown>,
  group: string,
  accelPath: string,
  hardware: boolean,
  live: boolean,
): (string | number)[] {
  const num = (k: string) => (typeof w[k] === 'number' ? (w[k] as number) : undefined);
  const maxXfer = num('max_transfer_size');
  // The entry that would name it, for WQs livemig can use (hardware: shared, with room).
  const usable =
    w.state === 'enabled' &&
    w.type === 'user' &&
    (!hardware || (w.mode === 'shared' && (num('size') ?? 0) > 0 && (num('threshold') ?? 0) > 0));
  return [
    String(w.dev),
    group,
    String(w.state ?? '?'),
    String(w.mode ?? '?'),
    String(w.type ?? '?'),
    num('size') ?? '?',
    // A dedicated WQ has no threshold.
    w.mode === 'shared' ? (num('threshold') ?? '?') : '',
    num('priority') ?? '?',
    num('max_batch_size') ?? '',
    maxXfer === undefined ? '' : formatBytes(maxXfer),
    ...(live ? [num('occupancy') ?? ''] : []),
    usable ? accelPath : '',
  ];
}

/** A device: its line, its groups' engines, then one table of its WQs. */
function deviceLines(
  d: AccfgDevice | SysfsDevice,
  pathOf: (wq: string) => string,
  hardware: boolean,
): string[] {
  const out: string[] = [];
  const num = (v: unknown) => (typeof v === 'number' ? v : undefined);
  const mbs = num(d.max_batch_size);
  const mxs = num(d.max_transfer_size);
  out.push(
    `  ${d.dev}  ${d.state ?? '?'}` +
      (mbs !== undefined ? `  max_batch_size ${mbs}` : '') +
      (mxs !== undefined ? `  max_transfer_size ${formatBytes(mxs)}` : ''),
  );
  const wqs: [Record<string, unknown>, string][] = [];
  for (const g of d.groups ?? []) {
    const engines = (g.grouped_engines ?? []).map((e) => e.dev);
    const gwqs = g.grouped_workqueues ?? [];
    if (!engines.length && !gwqs.length) continue;
    out.push(`    ${g.dev}  engines: ${engines.join(' ') || 'none'}`);
    for (const w of gwqs) wqs.push([w as Record<string, unknown>, g.dev]);
  }
  const ue = (d.ungrouped_engines ?? []).map((e) => e.dev);
  if (ue.length) out.push(`    ungrouped engines: ${ue.join(' ')}`);
  for (const w of d.ungrouped_workqueues ?? []) {
    wqs.push([w as Record<string, unknown>, '(ungrouped)']);
  }
  if (!wqs.length) return out;
  const live = wqs.some(([w]) => typeof w.occupancy === 'number');
  const head = [...WQ_HEAD, 'max batch', 'max xfer', ...(live ? ['occupancy'] : []), 'accel-path'];
  const aligns = head.map((h) => (NUMERIC.has(h) ? 'right' : 'left'));
  const rows = wqs.map(([w, g]) => wqRow(w, g, pathOf(String(w.dev)), hardware, live));
  return [...out, ...tableLines(head, rows, '    ', aligns)];
}

/** Text (like `accel-config list`, condensed) or JSON of every accelerator livemig sees. */
export async function accelList(opts: AccelListOptions = {}): Promise<string> {
  const l = await accelListing(opts);
  if (opts.json) return JSON.stringify(l, null, 2);
  const lines: string[] = [];
  const src =
    l.emulated.source === 'running'
      ? 'running'
      : l.emulated.source === 'built-in'
        ? 'built-in configuration'
        : `configuration ${l.emulated.source}`;
  lines.push(`Emulated DSA (dsa-emu, ${src}):`);
  if (l.emulated.errors) {
    lines.push('  invalid configuration:');
    for (const e of l.emulated.errors) lines.push(`    - ${e}`);
  }
  for (const d of l.emulated.devices) {
    lines.push(...deviceLines(d, (wq) => `dsa-emu:${d.dev}/${wq}`, false));
  }
  lines.push(`DSA hardware (sysfs ${l.sysfs.root}):`);
  if (l.sysfs.note) lines.push(`  ${l.sysfs.note}`);
  for (const d of l.sysfs.devices)
    lines.push(...deviceLines(d, (wq) => `dsa:/dev/dsa/${wq}`, true));
  return lines.join('\n');
}

export interface AccelCheckResult {
  ok: boolean;
  errors: string[];
  warnings: string[];
  /** One line per usable work queue: the accel-path entry that names it. */
  usable: string[];
}

/** Validate an emulated-device configuration file (accel-config JSON). */
export async function accelCheck(path: string): Promise<AccelCheckResult> {
  let json: unknown;
  try {
    json = await readJson(path);
  } catch (e) {
    return { ok: false, errors: [(e as Error).message], warnings: [], usable: [] };
  }
  const r = resolveAccfgConfig(json);
  const usable: string[] = [];
  for (const d of r.devices) {
    for (const w of d.wqs) {
      if (d.enabled && w.enabled && w.type === 'user' && w.group >= 0) {
        usable.push(
          `dsa-emu:${d.name}/${w.name}  (${w.mode}, size ${w.size}, max_batch_size ${w.maxBatchSize}, ${d.engines.filter((e) => e.group === w.group).length} engine(s))`,
        );
      }
    }
  }
  if (r.errors.length === 0 && usable.length === 0) {
    r.warnings.push('no enabled user work queue: livemig cannot use any WQ of this configuration');
  }
  return { ok: r.errors.length === 0, errors: r.errors, warnings: r.warnings, usable };
}

/** accelCheck's result as the text `livemig accel check` prints. */
export function formatAccelCheck(path: string, r: AccelCheckResult): string {
  const lines: string[] = [];
  lines.push(r.ok ? `${path}: valid` : `${path}: ${r.errors.length} error(s)`);
  for (const e of r.errors) lines.push(`  error: ${e}`);
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  if (r.ok && r.usable.length) {
    lines.push('  usable work queues:');
    for (const u of r.usable) lines.push(`    ${u}`);
  }
  return lines.join('\n');
}

/**
 * `livemig accel selftest TARGET [--config FILE] [--json]`: the selftest of src/accel/hw/selftest.ts,
 * with the emulated configuration read from FILE. Returns the text to print and the exit code.
 */
export async function accelSelftestCommand(
  target: string,
  o: { config?: string; json?: boolean } = {},
): Promise<{ text: string; ok: boolean }> {
  const opts: SelftestOptions = {};
  if (o.config) opts.emuConfig = await readJson(o.config);
  const r = await accelSelftest(target, opts);
  if (!o.json) return { text: r.text, ok: r.ok };
  const { text: _text, ...rest } = r;
  return { text: JSON.stringify(rest, null, 2), ok: r.ok };
}
