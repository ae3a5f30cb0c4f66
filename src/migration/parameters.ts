// Migration parameters and capabilities, with QEMU's names, defaults and error messages.
// The table below is the single source of truth: QMP, HMP and the CLI all validate through it.

import { genericError } from '../util/errors.js';
import { parseAccelPath } from '../accel/accel-path.js';
import { PAGE_SIZE, MAX_PACKET_PAGES } from './protocol.js';

export type ZeroPageDetection = 'none' | 'legacy' | 'multifd' | 'dsa-accel';
export const ZERO_PAGE_DETECTION_MODES: readonly ZeroPageDetection[] = [
  'none',
  'legacy',
  'multifd',
  'dsa-accel',
];

/** An `accel-path` entry: the DSA series' string forms, or structured objects (QEMU reviewers'). */
export type AccelPathEntry = string | { type: string; [key: string]: unknown };

export interface MigrationParameters {
  'multifd-channels': number;
  'zero-page-detection': ZeroPageDetection;
  /** ms */
  'downtime-limit': number;
  /** bytes/s; 0 = unlimited */
  'max-bandwidth': number;
  /** bytes/s the link really has, used instead of the measured figure for switchover; 0 = measure */
  'avail-switchover-bandwidth': number;
  /** bytes per multifd packet (pages * 4096) */
  'multifd-packet-size': number;
  'accel-path': AccelPathEntry[];
  /** auto-converge: first throttle, % of vCPU time taken away */
  'cpu-throttle-initial': number;
  /** auto-converge: added each time the guest still dirties too fast */
  'cpu-throttle-increment': number;
  'max-cpu-throttle': number;
  /** auto-converge: smaller steps as the dirty rate approaches the link's rate */
  'cpu-throttle-tailslow': boolean;
  /** auto-converge triggers when a pass dirties more than this % of what it sent */
  'throttle-trigger-threshold': number;
  /** livemig: a peer that makes no progress for this long (ms) fails the migration */
  'x-stall-timeout': number;
  /**
   * livemig: the nice value (0-19) of the migration's threads on both sides (Linux), so that a
   * host without a spare core gives it to the guest's vCPU first; 0 = as the vCPU
   */
  'x-migration-nice': number;
  /** id of the tls-creds-x509/tls-creds-psk object; "" = plain TCP (QEMU) */
  'tls-creds': string;
  /** source: the name the destination's certificate must carry; "" = the URI's host */
  'tls-hostname': string;
  /** destination: id of the authz-simple object a client's DN or PSK identity must match */
  'tls-authz': string;
}

export interface MigrationCapabilities {
  multifd: boolean;
  /** throttle the vCPU when the guest dirties memory faster than the link carries it */
  'auto-converge': boolean;
  /** stop in 'pre-switchover' with the guest paused until migrate-continue */
  'pause-before-switchover': boolean;
  events: boolean;
  /** livemig: compare the destination's RAM digest with the source's at completion */
  'x-verify-ram': boolean;
}

export const DEFAULT_PARAMETERS: Readonly<MigrationParameters> = Object.freeze({
  'multifd-channels': 2,
  'zero-page-detection': 'multifd',
  'downtime-limit': 300,
  'max-bandwidth': 0,
  'avail-switchover-bandwidth': 0,
  'multifd-packet-size': 512 * 1024,
  'accel-path': [],
  'cpu-throttle-initial': 20,
  'cpu-throttle-increment': 10,
  'max-cpu-throttle': 99,
  'cpu-throttle-tailslow': false,
  'throttle-trigger-threshold': 50,
  'x-stall-timeout': 10_000,
  'x-migration-nice': 0,
  'tls-creds': '',
  'tls-hostname': '',
  'tls-authz': '',
});

export const DEFAULT_CAPABILITIES: Readonly<MigrationCapabilities> = Object.freeze({
  multifd: false,
  'auto-converge': false,
  'pause-before-switchover': false,
  events: false,
  'x-verify-ram': false,
});

/** Upper bound on channels: bounded so a bad value cannot exhaust threads or sockets. */
export const MAX_MULTIFD_CHANNELS = 64;
/** QEMU's MAX_MIGRATE_DOWNTIME is 2000 s. */
export const MAX_DOWNTIME_LIMIT_MS = 2_000_000;

function integerIn(name: string, value: unknown, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    throw genericError(`Parameter '${name}' expects an integer, got ${JSON.stringify(value)}`);
  }
  if (value < min || value > max) {
    throw genericError(
      `Parameter '${name}' expects a value between ${min} and ${max}, got ${value}`,
    );
  }
  return value;
}

/** Coerce HMP's string form ("4", "dsa-accel", "128M") to the type the parameter takes. */
export function parameterFromString(name: string, text: string): unknown {
  switch (name) {
    case 'zero-page-detection':
    case 'tls-creds':
    case 'tls-hostname':
    case 'tls-authz':
      return text;
    case 'cpu-throttle-tailslow':
      if (text === 'on' || text === 'true') return true;
      if (text === 'off' || text === 'false') return false;
      throw genericError(`Parameter '${name}' expects on or off, got '${text}'`);
    case 'accel-path':
      return text
        .split(/\s+/)
        .filter((s) => s.length > 0)
        .map((s) => (s.startsWith('{') ? (JSON.parse(s) as AccelPathEntry) : s));
    case 'max-bandwidth':
    case 'avail-switchover-bandwidth': {
      // HMP takes a size with suffix for bandwidths (bytes/s), as QEMU does.
      const m = /^(\d+)([kmgtKMGT]?)$/.exec(text.trim());
      if (!m) throw genericError(`Parameter '${name}' expects a size (e.g. 1G), got '${text}'`);
      const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[
        m[2].toLowerCase() as '' | 'k' | 'm' | 'g' | 't'
      ];
      return Number(m[1]) * mult;
    }
    default: {
      if (!/^-?\d+$/.test(text.trim())) {
        throw genericError(`Parameter '${name}' expects an integer, got '${text}'`);
      }
      return Number(text);
    }
  }
}

/**
 * Validate a partial update and return the merged parameters. Unknown names are errors
 * (QEMU's QAPI rejects them; silently ignoring a typo would be worse).
 */
export function applyParameters(
  current: MigrationParameters,
  update: Record<string, unknown>,
): MigrationParameters {
  const next: MigrationParameters = { ...current, 'accel-path': [...current['accel-path']] };
  for (const [name, value] of Object.entries(update)) {
    switch (name) {
      case 'multifd-channels':
        next[name] = integerIn(name, value, 1, MAX_MULTIFD_CHANNELS);
        break;
      case 'downtime-limit':
        next[name] = integerIn(name, value, 0, MAX_DOWNTIME_LIMIT_MS);
        break;
      case 'max-bandwidth':
      case 'avail-switchover-bandwidth':
        next[name] = integerIn(name, value, 0, Number.MAX_SAFE_INTEGER);
        break;
      case 'multifd-packet-size': {
        const v = integerIn(name, value, PAGE_SIZE, MAX_PACKET_PAGES * PAGE_SIZE);
        if (v % PAGE_SIZE !== 0) {
          throw genericError(
            `Parameter '${name}' must be a multiple of the page size ${PAGE_SIZE}, got ${v}`,
          );
        }
        next[name] = v;
        break;
      }
      case 'cpu-throttle-initial':
      case 'cpu-throttle-increment':
      case 'max-cpu-throttle':
        next[name] = integerIn(name, value, 1, 99);
        break;
      case 'throttle-trigger-threshold':
        next[name] = integerIn(name, value, 1, 100);
        break;
      case 'x-stall-timeout':
        next[name] = integerIn(name, value, 100, 3_600_000);
        break;
      case 'x-migration-nice':
        next[name] = integerIn(name, value, 0, 19);
        break;
      case 'cpu-throttle-tailslow':
        if (typeof value !== 'boolean') {
          throw genericError(`Parameter '${name}' expects a boolean, got ${JSON.stringify(value)}`);
        }
        next[name] = value;
        break;
      case 'zero-page-detection': {
        if (typeof value !== 'string' || !ZERO_PAGE_DETECTION_MODES.includes(value as never)) {
          throw genericError(
            `Parameter 'zero-page-detection' does not accept value ${JSON.stringify(value)}; ` +
              `allowed: ${ZERO_PAGE_DETECTION_MODES.join(', ')}`,
          );
        }
        next[name] = value as ZeroPageDetection;
        break;
      }
      case 'accel-path': {
        if (!Array.isArray(value)) {
          throw genericError(`Parameter 'accel-path' expects a list, got ${JSON.stringify(value)}`);
        }
        // Checked now, so a typo is reported by migrate-set-parameters, not at migrate time.
        if (value.length > 0) parseAccelPath(value);
        next[name] = value as AccelPathEntry[];
        break;
      }
      case 'tls-creds':
      case 'tls-hostname':
      case 'tls-authz':
        // QEMU's StrOrNull: null turns it off, as "" does
        if (value !== null && typeof value !== 'string') {
          throw genericError(`Invalid parameter type for '${name}', expected: string or null`);
        }
        next[name] = value ?? '';
        break;
      default:
        throw genericError(`Parameter '${name}' is unexpected`);
    }
  }
  return next;
}

export const CAPABILITY_NAMES = Object.keys(
  DEFAULT_CAPABILITIES,
) as (keyof MigrationCapabilities)[];

export function applyCapabilities(
  current: MigrationCapabilities,
  list: unknown,
): MigrationCapabilities {
  if (!Array.isArray(list)) {
    throw genericError(`Parameter 'capabilities' expects an array`);
  }
  const next = { ...current };
  for (const item of list) {
    if (typeof item !== 'object' || item === null) {
      throw genericError(`Parameter 'capabilities' expects objects with 'capability' and 'state'`);
    }
    const { capability, state } = item as { capability?: unknown; state?: unknown };
    if (typeof capability !== 'string' || !(CAPABILITY_NAMES as string[]).includes(capability)) {
      throw genericError(
        `Parameter 'capability' does not accept value ${JSON.stringify(capability)}; ` +
          `allowed: ${CAPABILITY_NAMES.join(', ')}`,
      );
    }
    if (typeof state !== 'boolean') {
      throw genericError(`Parameter 'state' expects a boolean, got ${JSON.stringify(state)}`);
    }
    next[capability as keyof MigrationCapabilities] = state;
  }
  return next;
}

/** zero-page-detection=dsa-accel, at `migrate`: what else it needs is set, or a clear error. */
export function checkDsaAccelSettings(p: MigrationParameters, caps: MigrationCapabilities): void {
  if (!caps.multifd) {
    throw genericError(
      "zero-page-detection=dsa-accel needs the 'multifd' capability: the device checks the " +
        'pages of each multifd packet (migrate_set_capability multifd on)',
    );
  }
  if (p['accel-path'].length === 0) {
    throw genericError(
      "zero-page-detection=dsa-accel needs 'accel-path', e.g. accel-path=dsa-emu:dsa0/wq0.0 " +
        '(the emulated device) or accel-path=dsa:/dev/dsa/wq0.0 (a kernel idxd work queue)',
    );
  }
}
