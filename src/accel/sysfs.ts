// Real DSA hardware: discovery through sysfs and the checks a `dsa:` accel-path entry must pass.
//
// The idxd driver shows devices, groups, engines and work queues under /sys/bus/dsa/devices
// (attributes in linux Documentation/ABI/stable/sysfs-driver-dma-idxd) and user work queues as
// character devices /dev/dsa/wqN.M. Both roots are relocatable the way DPDK's idxd bus driver
// does it — environment variables DSA_SYSFS_PATH and DSA_DEV_PATH — or by options, so tests run
// against a fixture tree.
//
// Submitting to real hardware needs livemig's optional native addon (src/accel/hw/): ENQCMD or
// MOVDIR64B on the mmapped portal, or write() on the node. A `dsa:` path that passes every check
// is opened through it (src/accel/hw/wq.ts); without the addon it gets a clear "hardware path
// unavailable" error that says why and points to `dsa-emu:`.

import { constants as fsConstants } from 'node:fs';
import { open, readFile, readdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { genericError } from '../util/errors.js';
import type { DsaTarget } from './accel-path.js';
import { attributeNames } from './dsa/emu/config-attributes.js';
import { addonStatus } from './hw/addon.js';

export const DEFAULT_SYSFS_ROOT = '/sys/bus/dsa/devices';
export const DEFAULT_DEV_ROOT = '/dev/dsa';

export interface SysfsOptions {
  /** Directory holding dsaN, wqN.M, ... (default: $DSA_SYSFS_PATH or /sys/bus/dsa/devices). */
  sysfsRoot?: string;
  /** Directory holding the wqN.M nodes (default: $DSA_DEV_PATH or /dev/dsa). */
  devRoot?: string;
  env?: Record<string, string | undefined>;
  /** Opens a node read-write and closes it; replaceable in tests. */
  openNode?: (path: string) => Promise<void>;
}

export function sysfsRoot(o: SysfsOptions = {}): string {
  return o.sysfsRoot ?? (o.env ?? process.env).DSA_SYSFS_PATH ?? DEFAULT_SYSFS_ROOT;
}

export function devRoot(o: SysfsOptions = {}): string {
  return o.devRoot ?? (o.env ?? process.env).DSA_DEV_PATH ?? DEFAULT_DEV_ROOT;
}

async function defaultOpenNode(path: string): Promise<void> {
  const fh = await open(path, fsConstants.O_RDWR);
  await fh.close();
}

async function attr(dir: string, name: string): Promise<string | undefined> {
  try {
    return (await readFile(join(dir, name), 'utf8')).trim();
  } catch {
    return undefined;
  }
}

export async function intAttr(dir: string, name: string): Promise<number | undefined> {
  const v = await attr(dir, name);
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await stat(p)).isDirectory();
  } catch {
    return false;
  }
}

// The attributes listed, in `accel-config list` order; those in TEXT are strings, the others
// integers (cdev_major/cdev_minor: the numbers of the WQs' character devices; pasid_enabled: 1
// when the device uses PASIDs, which shared user WQs need).
const WQ_LIST =
  'state mode type size threshold priority group_id max_batch_size max_transfer_size block_on_fault name driver_name clients occupancy cdev_minor';
const DEVICE_LIST =
  'state version max_groups max_work_queues max_engines max_work_queues_size max_batch_size max_transfer_size numa_node op_cap clients pasid_enabled cdev_major';
const TEXT_LIST = 'state mode type name driver_name version op_cap';
const [WQ_ATTRS, DEVICE_ATTRS, TEXT] = [WQ_LIST, DEVICE_LIST, TEXT_LIST].map(attributeNames);

/** The names of a space-separated list, as a type. */
type Words<S extends string> = S extends `${infer A} ${infer B}` ? A | Words<B> : S;
/** A sysfs directory's attributes of `S` (undefined where one is missing). */
type Attrs<S extends string> = {
  [K in Words<S>]?: K extends Words<typeof TEXT_LIST> ? string : number;
};

export type SysfsWq = { dev: string } & Attrs<typeof WQ_LIST>;

export interface SysfsEngine {
  dev: string;
  group_id?: number;
}

export interface SysfsGroup {
  dev: string;
  grouped_workqueues?: SysfsWq[];
  grouped_engines?: SysfsEngine[];
}

export type SysfsDevice = Attrs<typeof DEVICE_LIST> & {
  dev: string;
  groups: SysfsGroup[];
  ungrouped_workqueues?: SysfsWq[];
  ungrouped_engines?: SysfsEngine[];
};

export interface SysfsListing {
  root: string;
  devices: SysfsDevice[];
  /** Why nothing could be listed (no idxd driver, no devices, unreadable root). */
  note?: string;
}

/** The attributes `names` of the sysfs directory `dir` (undefined where one is missing). */
async function readAttrs<T>(dir: string, names: Set<string>): Promise<T> {
  const out: Record<string, string | number | undefined> = {};
  for (const n of names) out[n] = TEXT.has(n) ? await attr(dir, n) : await intAttr(dir, n);
  return out as T;
}

async function readWq(root: string, dev: string): Promise<SysfsWq> {
  return { dev, ...(await readAttrs<Omit<SysfsWq, 'dev'>>(join(root, dev), WQ_ATTRS)) };
}

/** Devices, groups, engines and WQs under the sysfs root, in `accel-config list` shape. */
export async function listSysfs(o: SysfsOptions = {}): Promise<SysfsListing> {
  const root = sysfsRoot(o);
  let names: string[];
  try {
    names = (await readdir(root)).sort(naturalCompare);
  } catch {
    return {
      root,
      devices: [],
      note: `${root} does not exist: the idxd driver is not loaded or this machine has no DSA (lspci -d 8086:0b25 lists DSA devices)`,
    };
  }
  const devices: SysfsDevice[] = [];
  for (const n of names) {
    const m = /^dsa(\d+)$/.exec(n);
    if (!m) continue;
    const d = join(root, n);
    const id = m[1];
    const dev: SysfsDevice = {
      dev: n,
      ...(await readAttrs<Omit<SysfsDevice, 'dev' | 'groups'>>(d, DEVICE_ATTRS)),
      groups: [],
    };
    const wqs = await Promise.all(
      names.filter((x) => x.startsWith(`wq${id}.`)).map((x) => readWq(root, x)),
    );
    const engines: SysfsEngine[] = [];
    for (const x of names.filter((x) => x.startsWith(`engine${id}.`))) {
      engines.push({ dev: x, group_id: await intAttr(join(root, x), 'group_id') });
    }
    for (const g of names.filter((x) => x.startsWith(`group${id}.`))) {
      const gid = Number(g.slice(g.indexOf('.') + 1));
      const gw = wqs.filter((w) => w.group_id === gid);
      const ge = engines.filter((e) => e.group_id === gid);
      dev.groups.push({
        dev: g,
        ...(gw.length ? { grouped_workqueues: gw } : {}),
        ...(ge.length ? { grouped_engines: ge } : {}),
      });
    }
    const uw = wqs.filter((w) => w.group_id === undefined || w.group_id < 0);
    const ue = engines.filter((e) => e.group_id === undefined || e.group_id < 0);
    if (uw.length) dev.ungrouped_workqueues = uw;
    if (ue.length) dev.ungrouped_engines = ue;
    devices.push(dev);
  }
  return {
    root,
    devices,
    ...(devices.length ? {} : { note: `no DSA devices under ${root}` }),
  };
}

function naturalCompare(a: string, b: string): number {
  return a.localeCompare(b, 'en', { numeric: true });
}

export interface DsaCheck {
  ok: boolean;
  errors: string[];
  warnings: string[];
  /** The WQ's attributes, when its sysfs directory exists. */
  wq?: SysfsWq;
  node: string;
}

const CONFIG_HINT = (dev: string, wq: string) =>
  `accel-config config-wq ${dev}/${wq} -g 0 -s 128 -p 10 -t 128 -m shared -y user -n livemig -d user`;

/**
 * Check a `dsa:` target against sysfs and the device node: the WQ exists and is enabled, has
 * type user (driver 'user'), mode shared (with PASID enabled on the device) or dedicated, a
 * usable size and max batch size, and its node opens read-write. Every failure comes with the
 * command that fixes it.
 */
export async function checkDsaTarget(t: DsaTarget, o: SysfsOptions = {}): Promise<DsaCheck> {
  const root = sysfsRoot(o);
  const errors: string[] = [];
  const warnings: string[] = [];
  const { device, wq } = t;
  // The node: the given path, or the same name under a relocated dev root.
  const node =
    o.devRoot !== undefined || (o.env ?? process.env).DSA_DEV_PATH !== undefined
      ? join(devRoot(o), wq)
      : t.path;
  const result = (): DsaCheck => ({ ok: errors.length === 0, errors, warnings, node });
  if (!(await isDir(root))) {
    errors.push(
      `${root} does not exist: the idxd driver is not loaded or this machine has no DSA (check lspci -d 8086:0b25 and modprobe idxd; the kernel needs intel_iommu=on,sm_on for user work queues). Without DSA hardware use the emulated device: accel-path=dsa-emu:dsa0/wq0.0`,
    );
    return result();
  }
  const devDir = join(root, device);
  const wqDir = join(root, wq);
  if (!(await isDir(devDir))) {
    const all = (await readdir(root)).filter((n) => /^dsa\d+$/.test(n)).sort(naturalCompare);
    errors.push(
      `device ${device} (of ${t.path}) not found under ${root}; DSA devices here: ${all.join(', ') || 'none'} (ls ${root})`,
    );
    return result();
  }
  if (!(await isDir(wqDir))) {
    const all = (await readdir(root))
      .filter((n) => n.startsWith(`wq${device.slice(3)}.`))
      .sort(naturalCompare);
    errors.push(
      `work queue ${wq} not found under ${root} (${device} has ${all.join(', ') || 'no work queues'}); configure and enable it: ${CONFIG_HINT(device, wq)} && accel-config enable-device ${device} && accel-config enable-wq ${device}/${wq}`,
    );
    return result();
  }
  const info = await readWq(root, wq);
  const devState = await attr(devDir, 'state');
  if (devState !== 'enabled') {
    errors.push(
      `device ${device} is ${devState ?? 'in an unknown state'}, not enabled: accel-config enable-device ${device}`,
    );
  }
  if (info.state !== 'enabled') {
    errors.push(
      `work queue ${device}/${wq} is ${info.state ?? 'in an unknown state'}, not enabled: accel-config enable-wq ${device}/${wq}`,
    );
  }
  if (info.type !== 'user') {
    errors.push(
      `work queue ${device}/${wq} has type '${info.type ?? 'none'}'; livemig submits from user space and needs type user: accel-config disable-wq ${device}/${wq} && accel-config config-wq ${device}/${wq} -y user -d user -n livemig && accel-config enable-wq ${device}/${wq}`,
    );
  }
  if (info.mode === 'dedicated') {
    warnings.push(
      `work queue ${device}/${wq} is dedicated: livemig submits with MOVDIR64B and keeps at most ${info.size ?? '?'} descriptors outstanding, and no other process (or second migration) can open it while livemig does; a shared WQ can be shared: accel-config config-wq ${device}/${wq} -m shared -t ${Math.max(1, info.size ?? 128)}`,
    );
  } else if (info.mode !== 'shared') {
    errors.push(
      `work queue ${device}/${wq} is in mode '${info.mode ?? 'unknown'}'; livemig needs a shared WQ (ENQCMD; like QEMU's DSA series) or a dedicated one (MOVDIR64B): accel-config disable-wq ${device}/${wq} && accel-config config-wq ${device}/${wq} -m shared -t ${Math.max(1, info.size ?? 128)} && accel-config enable-wq ${device}/${wq}`,
    );
  } else if (!info.threshold) {
    errors.push(
      `shared work queue ${device}/${wq} has threshold 0, so every submission would be refused: accel-config config-wq ${device}/${wq} -t ${Math.max(1, info.size ?? 1)}`,
    );
  }
  if (info.driver_name !== undefined && info.driver_name !== '' && info.driver_name !== 'user') {
    errors.push(
      `work queue ${device}/${wq} is bound to driver '${info.driver_name}'; a user work queue (a /dev/dsa node) needs driver 'user': accel-config disable-wq ${device}/${wq} && accel-config config-wq ${device}/${wq} -y user -d user && accel-config enable-wq ${device}/${wq}`,
    );
  }
  const pasid = await intAttr(devDir, 'pasid_enabled');
  if (pasid === 0 && info.mode !== 'dedicated') {
    errors.push(
      `device ${device} has PASID (shared virtual memory) disabled, and a shared work queue needs it: the IOMMU must run in scalable mode — boot with intel_iommu=on,sm_on (check cat /proc/cmdline; the BIOS must enable VT-d)`,
    );
  }
  if (!info.size) {
    errors.push(
      `work queue ${device}/${wq} has size 0: give it entries with accel-config config-wq ${device}/${wq} -s 128 (the device's WQ sizes must add up to at most max_work_queues_size)`,
    );
  }
  // A WQ's max_batch_size may not exceed the device's own.
  const deviceBatch = await intAttr(devDir, 'max_batch_size');
  const batchHint = `accel-config config-wq ${device}/${wq} -c ${deviceBatch !== undefined ? `${deviceBatch}, ${device}'s max_batch_size` : `N, N at most cat ${devDir}/max_batch_size`}`;
  if (info.max_batch_size !== undefined && info.max_batch_size < 2) {
    errors.push(
      `work queue ${device}/${wq} has max_batch_size ${info.max_batch_size}; batches need at least 2: ${batchHint}`,
    );
  } else if (info.max_batch_size !== undefined && info.max_batch_size < 128) {
    warnings.push(
      `work queue ${device}/${wq} has max_batch_size ${info.max_batch_size}, below a 128-page packet; packets will be split into several batches (${batchHint})`,
    );
  }
  try {
    await (o.openNode ?? defaultOpenNode)(node);
  } catch (e) {
    errors.push(explainOpenError((e as NodeJS.ErrnoException).code, node, t));
  }
  return { ...result(), wq: info };
}

/** Why opening the node failed, in words a user can act on. */
export function explainOpenError(code: string | undefined, node: string, t: DsaTarget): string {
  const dev = `${t.device}/${t.wq}`;
  switch (code) {
    case 'ENOENT':
      return `device node ${node} does not exist: the work queue is not enabled with driver 'user' (accel-config enable-wq ${dev}), or the idxd driver is not loaded`;
    case 'EACCES':
    case 'EPERM':
      return `permission denied opening ${node} read-write: run as root or give this user the node: sudo chown $(id -un) ${node} (or every node, as QEMU's guide does: sudo chown -R $(id -un) ${dirname(node)})`;
    case 'EBUSY':
      return `${node} is busy: a dedicated work queue has one opener at a time (another process, or another migration of this one, has it open)`;
    case 'ENXIO':
    case 'ENODEV':
      return `${node} refused to open (${code}): the work queue ${dev} is disabled or its device is gone (cat /sys/bus/dsa/devices/${t.wq}/state; accel-config enable-wq ${dev})`;
    case 'EOPNOTSUPP':
    case 'EINVAL':
      return `${node} refused to open (${code}): a shared work queue needs PASID/SVA — boot with intel_iommu=on,sm_on and check cat /sys/bus/dsa/devices/${t.device}/pasid_enabled`;
    default:
      return `cannot open ${node} read-write (${code ?? 'unknown error'})`;
  }
}

/** The message of a `dsa:` entry that cannot be opened because the native addon is missing. */
export function hardwareUnavailableMessage(t: DsaTarget, reason: string, detail?: string): string {
  return (
    `accel-path dsa:${t.path}: ${detail ?? `${t.device}/${t.wq}`}, but the hardware path is unavailable: ${reason}. ` +
    "Submitting to real DSA hardware needs livemig's native addon (ENQCMD/MOVDIR64B on the mmapped portal, or write() on the node), built by npm ci on x86-64 Linux with g++ (npm run build:addon rebuilds it); " +
    'use the emulated device instead, e.g. accel-path=dsa-emu:dsa0/wq0.0'
  );
}

/**
 * Check a `dsa:` target before opening it: throws when the check fails (listing every problem)
 * or when the hardware path is unavailable (no native addon: says why, points to dsa-emu:).
 * Returns the check of a usable WQ; src/accel/hw/wq.ts then opens it through the addon.
 */
export async function openDsaTarget(t: DsaTarget, o: SysfsOptions = {}): Promise<DsaCheck> {
  const c = await checkDsaTarget(t, o);
  if (!c.ok) {
    throw genericError(`accel-path dsa:${t.path} cannot be used:\n  - ${c.errors.join('\n  - ')}`);
  }
  const a = addonStatus();
  if (!a.available) {
    throw genericError(
      hardwareUnavailableMessage(
        t,
        a.reason,
        `${t.device}/${t.wq} is a usable ${c.wq?.mode ?? 'shared'} work queue`,
      ),
    );
  }
  return c;
}
