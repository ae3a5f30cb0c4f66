// Loading livemig's optional native addon (native/livemig_dsa.c, built at install by
// scripts/build-addon.mjs into build/Release/livemig_dsa.node).
//
// The addon is optional: when it was not built (another platform, no compiler, a failed build,
// `npm ci --ignore-scripts`), `loadAddon()` says why and livemig works as before — `dsa-emu:`
// paths are unaffected and `dsa:` paths get a clear "hardware path unavailable" error.
//
// LIVEMIG_DSA_ADDON=off disables it (as if it had not been built); LIVEMIG_DSA_ADDON=/path/x.node
// loads another build. The environment is read on every call, so tests can switch it.

import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

/** CPUID leaf 7 bits, as the addon reads them. */
export interface CpuidFeatures {
  /** ECX[28] */
  movdir64b: boolean;
  /** ECX[29] */
  enqcmd: boolean;
  /** ECX[5]: UMONITOR/UMWAIT/TPAUSE */
  waitpkg: boolean;
  /** ECX[27] */
  movdiri: boolean;
  maxLeaf: number;
}

/** The addon's functions (see native/livemig_dsa.c). */
export interface NativeDsa {
  abiVersion: number;
  cpu(): CpuidFeatures;
  /** Virtual address of the view's first byte. */
  address(view: ArrayBufferView): number;
  /** mmap the 4 KiB portal of an open WQ node: a portal handle (≥ 0), or -errno. */
  mapPortal(fd: number): number;
  /** 0, or -EBADF when `handle` is not a live portal handle. Waits for submitters inside. */
  unmapPortal(handle: number): number;
  /** The addon owns the opened WQ node `fd` from now on: a handle (≥ 0), or -EMFILE. */
  adoptFd(fd: number): number;
  /** Close an adopted fd: 0, or -EBADF. Waits for writers and pollers inside. */
  closeFd(handle: number): number;
  /** write(2) of view[offset, offset+length) on an adopted fd: bytes written, or -errno. */
  writeFd(handle: number, view: ArrayBufferView, offset: number, length: number): number;
  /**
   * ppoll(2) for POLLIN|POLLPRI on adopted fds handles[0..n): revents per handle (POLLNVAL for
   * a closed one), returns how many have events (or -errno).
   */
  pollFds(handles: Int32Array, n: number, timeoutUs: number, revents: Int32Array): number;
  /**
   * op 0: ENQCMD (tried up to `tries` times), op 1: MOVDIR64B. The first 64 bytes of `desc`.
   * Returns 1 + refusals when accepted, 0 when refused every time. A closed or stale handle
   * throws EBADF (checked under the lock unmapPortal takes).
   */
  submit(handle: number, op: 0 | 1, desc: ArrayBufferView, tries: number): number;
  /**
   * Index of the first non-zero status byte view[offsets[i]] (i < n), or -1 after timeoutUs.
   * method: 2 sleep (through firstSleepUs, then growing steps), 1 UMWAIT, 0 pause loop (or
   * true/false for UMWAIT/pause).
   */
  waitAny(
    view: ArrayBufferView,
    offsets: Int32Array,
    n: number,
    timeoutUs: number,
    method: boolean | number,
    firstSleepUs?: number,
  ): number;
  /** A reserved PROT_NONE page: every access to it faults. */
  faultAddress(): number;
  /** Test-only (test/accel/native-testing.ts). */
  testing: {
    peek(address: number, length: number): Buffer;
    poke(address: number, bytes: ArrayBufferView, statusByteLast?: boolean): number;
    movdir64b(dst: ArrayBufferView, src: ArrayBufferView): number;
  };
}

export const ADDON_ABI = 2;

export type AddonStatus =
  | { available: true; native: NativeDsa; path: string }
  | { available: false; reason: string; path: string };

/** Where the install script puts the addon: <package>/build/Release/livemig_dsa.node. */
export const DEFAULT_ADDON_PATH = fileURLToPath(
  new URL('../../../../build/Release/livemig_dsa.node', import.meta.url),
);

const cache = new Map<string, AddonStatus>();

function buildStatusReason(path: string): string | undefined {
  const file = path.replace(/Release[/\\]livemig_dsa\.node$/, 'addon-status.json');
  try {
    const s = JSON.parse(readFileSync(file, 'utf8')) as { built?: boolean; reason?: string };
    if (s.built === false && s.reason) return s.reason;
  } catch {
    /* no status file */
  }
  return undefined;
}

function load(setting: string | undefined): AddonStatus {
  if (setting === 'off' || setting === '0') {
    return { available: false, reason: 'disabled by LIVEMIG_DSA_ADDON=off', path: '' };
  }
  const path = setting || DEFAULT_ADDON_PATH;
  if (process.platform !== 'linux' || process.arch !== 'x64') {
    return {
      available: false,
      reason: `the DSA hardware path needs x86-64 Linux (this is ${process.platform}-${process.arch})`,
      path,
    };
  }
  if (!existsSync(path)) {
    const why = buildStatusReason(path);
    return {
      available: false,
      reason: why
        ? `the native addon was not built at install: ${why} (npm run build:addon shows the full error)`
        : `the native addon ${path} was not built (npm ci builds it; npm run build:addon rebuilds it)`,
      path,
    };
  }
  try {
    const native = createRequire(import.meta.url)(path) as NativeDsa;
    if (native.abiVersion !== ADDON_ABI) {
      return {
        available: false,
        reason: `the native addon ${path} is stale (ABI ${native.abiVersion}, expected ${ADDON_ABI}): npm run build:addon`,
        path,
      };
    }
    return { available: true, native, path };
  } catch (e) {
    return {
      available: false,
      reason: `the native addon ${path} failed to load: ${(e as Error).message}`,
      path,
    };
  }
}

/** The addon, or why it is unavailable. */
export function addonStatus(): AddonStatus {
  const key = process.env.LIVEMIG_DSA_ADDON ?? '';
  let s = cache.get(key);
  if (!s) {
    s = load(key || undefined);
    cache.set(key, s);
  }
  return s;
}

/** The addon, or undefined. */
export function loadAddon(): NativeDsa | undefined {
  const s = addonStatus();
  return s.available ? s.native : undefined;
}
