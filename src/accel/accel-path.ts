// `accel-path`: which accelerator work queues the migration may use.
//
// Accepted forms (a list; order matters: channels get WQs round-robin in this order):
//   "dsa:/dev/dsa/wq0.0"                               a kernel idxd work queue (real DSA)
//   "dsa-emu:dsa0/wq0.0"                               a work queue of the emulated device
//   {"type": "dsa", "path": "/dev/dsa/wq0.0"}          the same, structured (QEMU reviewers'
//   {"type": "dsa-emu", "device": "dsa0", "wq": "wq0.0"}  request for a defined structure)
// HMP's one-line form separates string entries with spaces (`splitAccelPath`).

import { genericError } from '../util/errors.js';

/** The first work queue of the emulated device the process starts on first use. */
export const DEFAULT_ACCEL_PATH = 'dsa-emu:dsa0/wq0.0';

export interface DsaEmuTarget {
  type: 'dsa-emu';
  /** "dsa0" */
  device: string;
  /** "wq0.0" */
  wq: string;
}

export interface DsaTarget {
  type: 'dsa';
  /** The device node as given, e.g. "/dev/dsa/wq0.0". */
  path: string;
  /** Derived from the node name: "dsa0". */
  device: string;
  /** "wq0.0" */
  wq: string;
}

export type AccelTarget = DsaEmuTarget | DsaTarget;

const FORMS =
  "expected 'dsa:/dev/dsa/wqX.Y', 'dsa-emu:DEVICE/WQ' (e.g. dsa-emu:dsa0/wq0.0), " +
  'or an object {"type":"dsa","path":"/dev/dsa/wqX.Y"} / {"type":"dsa-emu","device":"dsa0","wq":"wq0.0"}';

const WQ_RE = /^wq(\d+)\.(\d+)$/;
const DEV_RE = /^dsa(\d+)$/;

/** The canonical string form of a target. */
export function formatAccelTarget(t: AccelTarget): string {
  return t.type === 'dsa' ? `dsa:${t.path}` : `dsa-emu:${t.device}/${t.wq}`;
}

/** HMP's form: entries separated by spaces (and commas, which QEMU's list syntax uses). */
export function splitAccelPath(text: string): string[] {
  return text.split(/[\s,]+/).filter((s) => s.length > 0);
}

function bad(entry: unknown, index: number, why: string): Error {
  const shown = typeof entry === 'string' ? `'${entry}'` : JSON.stringify(entry);
  return genericError(`accel-path entry ${index + 1} ${shown}: ${why}`);
}

function emuTarget(device: string, wq: string, entry: unknown, index: number): DsaEmuTarget {
  const dm = DEV_RE.exec(device);
  if (!dm) {
    throw bad(entry, index, `device '${device}' is not a DSA device name (dsaN, e.g. dsa0)`);
  }
  const wm = WQ_RE.exec(wq);
  if (!wm) {
    throw bad(entry, index, `work queue '${wq}' is not a work queue name (wqN.M, e.g. wq0.0)`);
  }
  if (wm[1] !== dm[1]) {
    throw bad(
      entry,
      index,
      `work queue ${wq} belongs to dsa${wm[1]}, not ${device} (work queues of ${device} are named wq${dm[1]}.M)`,
    );
  }
  return { type: 'dsa-emu', device, wq };
}

function dsaTarget(path: string, entry: unknown, index: number): DsaTarget {
  if (!path.startsWith('/')) {
    throw bad(entry, index, `'${path}' is not an absolute path; expected /dev/dsa/wqX.Y`);
  }
  const base = path.slice(path.lastIndexOf('/') + 1);
  const m = WQ_RE.exec(base);
  if (!m) {
    throw bad(
      entry,
      index,
      `'${path}' does not name a work queue device node; expected /dev/dsa/wqX.Y (see ls /dev/dsa)`,
    );
  }
  return { type: 'dsa', path, device: `dsa${m[1]}`, wq: base };
}

function parseString(s: string, index: number): AccelTarget {
  const entry = s.trim();
  if (entry === '') throw bad(s, index, `empty entry; ${FORMS}`);
  const colon = entry.indexOf(':');
  if (colon <= 0) throw bad(entry, index, `no scheme; ${FORMS}`);
  const scheme = entry.slice(0, colon);
  const rest = entry.slice(colon + 1);
  switch (scheme) {
    case 'dsa':
      return dsaTarget(rest, entry, index);
    case 'dsa-emu': {
      const parts = rest.split('/');
      if (parts.length !== 2 || !parts[0] || !parts[1]) {
        throw bad(entry, index, `expected dsa-emu:DEVICE/WQ, e.g. dsa-emu:dsa0/wq0.0`);
      }
      return emuTarget(parts[0], parts[1], entry, index);
    }
    default:
      throw bad(entry, index, `unknown scheme '${scheme}'; ${FORMS}`);
  }
}

function parseObject(o: Record<string, unknown>, index: number): AccelTarget {
  const type = o.type;
  const allowed =
    type === 'dsa' ? ['type', 'path'] : type === 'dsa-emu' ? ['type', 'device', 'wq'] : undefined;
  if (!allowed) {
    throw bad(o, index, `unknown type ${JSON.stringify(type)}; ${FORMS}`);
  }
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) {
      throw bad(
        o,
        index,
        `unknown key '${k}' for type '${String(type)}' (allowed: ${allowed.join(', ')})`,
      );
    }
  }
  for (const k of allowed) {
    if (typeof o[k] !== 'string' || o[k] === '') {
      throw bad(o, index, `'${k}' must be a non-empty string`);
    }
  }
  return type === 'dsa'
    ? dsaTarget(o.path as string, o, index)
    : emuTarget(o.device as string, o.wq as string, o, index);
}

/**
 * Parse an accel-path value: a list of strings and objects, or one string in HMP's
 * space-separated form. Rejects empty lists, unknown schemes and types, malformed names and
 * duplicates, naming the bad entry and what is allowed. Throws a QMP GenericError.
 */
export function parseAccelPath(value: unknown): AccelTarget[] {
  let list: unknown[];
  if (typeof value === 'string') list = splitAccelPath(value);
  else if (Array.isArray(value)) list = value;
  else {
    throw genericError(
      `accel-path must be a list of work queues, got ${value === null ? 'null' : typeof value}; ${FORMS}`,
    );
  }
  if (list.length === 0) {
    throw genericError(
      'accel-path is empty: give at least one work queue, e.g. dsa-emu:dsa0/wq0.0 (emulated device) or dsa:/dev/dsa/wq0.0',
    );
  }
  const out: AccelTarget[] = [];
  const seen = new Map<string, number>();
  list.forEach((entry, i) => {
    let t: AccelTarget;
    if (typeof entry === 'string') t = parseString(entry, i);
    else if (typeof entry === 'object' && entry !== null && !Array.isArray(entry)) {
      t = parseObject(entry as Record<string, unknown>, i);
    } else throw bad(entry, i, `must be a string or an object; ${FORMS}`);
    // Two spellings of one WQ are duplicates too: key by what the entry denotes.
    const key = t.type === 'dsa' ? `dsa:${t.device}/${t.wq}` : formatAccelTarget(t);
    const prev = seen.get(key);
    if (prev !== undefined) {
      throw bad(
        entry,
        i,
        `duplicate of entry ${prev + 1} (${formatAccelTarget(out[prev])}); list each work queue once`,
      );
    }
    seen.set(key, i);
    out.push(t);
  });
  return out;
}
