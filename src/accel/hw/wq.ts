// Opening a kernel idxd work queue (`dsa:/dev/dsa/wqX.Y`) for the driver.
//
//   1. sysfs check (src/accel/sysfs.ts): enabled, type user, mode, sizes, node opens read-write;
//      and the native addon must be available ("hardware path unavailable" otherwise);
//   2. open the node read-write and check it is the WQ's character device;
//   3. choose how to submit, and say why:
//      - mmap: map the 4 KiB portal and submit with ENQCMD (shared WQ) or MOVDIR64B (dedicated
//        WQ, the driver holding one credit per outstanding descriptor);
//      - write(): `write(fd, descriptors, 64*n)` (kernels >= 6.10 and backports). Those kernels
//        mark every DSA and IAA device `user_submission_safe = false` (INTEL-SA-01084), whatever
//        the CPU generation: only CAP_SYS_RAWIO may map the portal (mmap: EPERM), and write()
//        refuses BATCH descriptors, so the driver sends a packet's COMPVAL descriptors one by
//        one, all in one write() call.
//      `auto` maps when it can and falls back to write(); `mmap`/`write` insist.
//
// The result is a structured-cloneable handle: the fd and the portal handle are process-wide, so
// every thread (multifdsend_N, dsa_completion) submits through them.

import { closeSync, constants as fsConstants, fstatSync, openSync, writeSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { errnoName, genericError } from '../../util/errors.js';
import type { DsaTarget } from '../accel-path.js';
import {
  devRoot,
  explainOpenError,
  intAttr,
  openDsaTarget,
  sysfsRoot,
  type SysfsOptions,
} from '../sysfs.js';
import { loadAddon, type NativeDsa } from './addon.js';
import { cpuSupport, type FeatureSet } from './cpu.js';
import { H_REPORTED, HaltCause, markHalted, newWqState } from './wq-state.js';
import { join } from 'node:path';

export type SubmitMethod = 'enqcmd' | 'movdir64b' | 'write';
export type SubmitChoice = 'auto' | 'mmap' | 'write';

export interface HwOpenOptions {
  /** 'auto' (default): map the portal when possible, otherwise write(). */
  submit?: SubmitChoice;
  /**
   * Test only: accept a FIFO standing in for the device node (it cannot be mapped, so the
   * write() path is used, and a test thread plays the device). The environment's
   * LIVEMIG_DSA_TEST_FIFO=1 does the same for accelerators a migration opens.
   */
  allowFifo?: boolean;
  /**
   * Test only: with write(), send a packet as BATCH descriptors as the mapped portal would
   * (kernels refuse BATCH through write() on every DSA device), so the FIFO test device
   * runs the driver's batch path with real addresses.
   */
  batchOverWrite?: boolean;
}

/** A kernel idxd WQ opened for the driver (structured-cloneable). */
export interface HwWqHandle {
  kind: 'dsa-hw';
  /** "dsa:/dev/dsa/wq0.0" */
  text: string;
  device: string;
  wq: string;
  node: string;
  mode: 'shared' | 'dedicated';
  size: number;
  maxBatchSize: number;
  maxTransferSize: number;
  /** The node's fd number (informative: every use goes through `fdHandle`). */
  fd: number;
  /** The addon's handle on the fd (it owns and closes it; see writeWq). */
  fdHandle: number;
  /** Native portal handle, or -1 with write(). */
  portal: number;
  submit: SubmitMethod;
  /** write() carries BATCH descriptors (test only; see HwOpenOptions.batchOverWrite). */
  batchOverWrite: boolean;
  /** Why this method, in words. */
  why: string;
  /** The node is a FIFO standing in for the device (tests). */
  fifo: boolean;
  /** The WQ's shared words (src/accel/hw/wq-state.ts). */
  state: SharedArrayBuffer;
  /** The sysfs `state` files dsa_completion re-reads to tell a halt. */
  sysfsState: { wq: string; device: string };
}

export function hwStateWords(h: HwWqHandle): Int32Array {
  return new Int32Array(h.state);
}

/** Why mapping the portal failed. */
export function explainMmapError(errno: number): string {
  const name = errnoName(errno);
  switch (name) {
    case 'EPERM':
      return 'mapping the portal was refused (EPERM): kernels from 6.10 (and their backports, INTEL-SA-01084) mark every DSA and IAA device user_submission_safe = false, and then let only processes with CAP_SYS_RAWIO map its portal';
    case 'ENODEV':
      return 'the node cannot be mapped (ENODEV): it is not an idxd work queue portal';
    case 'EINVAL':
      return 'mapping the portal failed (EINVAL)';
    default:
      return `mapping the portal failed (${name})`;
  }
}

/** Why a write() submission failed for good. */
export function explainWriteError(code: string | undefined, t: DsaTarget | HwWqHandle): string {
  const dev = `${t.device}/${t.wq}`;
  switch (code) {
    case 'EINVAL':
      return `the kernel refused the descriptors (EINVAL): a BATCH descriptor or a misaligned completion record, or a kernel without write() submission (before 6.10)`;
    case 'ENXIO':
    case 'ENODEV':
    case 'EIO':
    case 'EBADF':
      return `the work queue ${dev} stopped taking descriptors (${code}): it was disabled or its device halted (cat /sys/bus/dsa/devices/${t.wq}/state /sys/bus/dsa/devices/${t.device}/state; dmesg | grep idxd)`;
    case 'EFAULT':
      return 'the kernel could not read the descriptors (EFAULT)';
    case 'EPERM':
      return `the kernel refused the submission (EPERM): check the node's permissions and the WQ's type (user)`;
    default:
      return `write() failed (${code ?? 'unknown error'})`;
  }
}

export interface SubmissionInputs {
  mode: 'shared' | 'dedicated';
  choice: SubmitChoice;
  cpu: FeatureSet;
  /** The result of mapping the portal: a handle (≥ 0), -errno, or undefined when not tried. */
  map: number | undefined;
  /** undefined when write() is possible, otherwise its error code (e.g. EINVAL). */
  writeError: string | undefined;
}

export type SubmissionDecision =
  | { ok: true; method: SubmitMethod; why: string; unmap: boolean }
  | { ok: false; why: string; unmap: boolean };

/** Whether mapping the portal is worth trying (the CPU has the instruction, it was asked for). */
export function wantsMap(mode: 'shared' | 'dedicated', choice: SubmitChoice, cpu: FeatureSet) {
  if (choice === 'write') return false;
  return mode === 'shared' ? cpu.enqcmd : cpu.movdir64b;
}

/** mmap or write(), and why (pure: tests feed it every combination). */
export function chooseSubmission(i: SubmissionInputs): SubmissionDecision {
  const insn = i.mode === 'shared' ? 'ENQCMD' : 'MOVDIR64B';
  const method: SubmitMethod = i.mode === 'shared' ? 'enqcmd' : 'movdir64b';
  const hasInsn = i.mode === 'shared' ? i.cpu.enqcmd : i.cpu.movdir64b;
  const mapped = i.map !== undefined && i.map >= 0;
  const mapWhy =
    i.choice === 'write'
      ? 'write() was asked for'
      : !hasInsn
        ? `this CPU does not offer ${insn} (a ${i.mode} WQ needs it to use the portal)`
        : i.map === undefined
          ? 'the portal was not mapped'
          : !mapped
            ? explainMmapError(i.map)
            : '';
  if (i.choice !== 'write' && mapped && hasInsn) {
    return {
      ok: true,
      method,
      why: `portal mapped; ${insn} on the ${i.mode} WQ${i.mode === 'dedicated' ? ' with the driver holding credits' : ''}`,
      unmap: false,
    };
  }
  if (i.choice === 'mmap') {
    return {
      ok: false,
      why: `submission through the portal was asked for, but ${mapWhy}${/EPERM/.test(mapWhy) ? ' (run as root, or grant it: sudo setcap cap_sys_rawio+ep "$(readlink -f "$(command -v node)")"; or let livemig use write())' : ''}`,
      unmap: mapped,
    };
  }
  if (i.writeError === undefined) {
    return {
      ok: true,
      method: 'write',
      why: `write() on the node (${mapWhy}); BATCH is refused there, so each page's COMPVAL goes as its own descriptor, a packet per write() call`,
      unmap: mapped,
    };
  }
  return {
    ok: false,
    why: `cannot submit: ${mapWhy}, and write() submission is not available (${i.writeError}: kernels before 6.10 without the backport have none)${/EPERM/.test(mapWhy) ? '; run as root or grant CAP_SYS_RAWIO (sudo setcap cap_sys_rawio+ep "$(readlink -f "$(command -v node)")")' : ''}`,
    unmap: mapped,
  };
}

function probeWrite(fd: number): string | undefined {
  try {
    writeSync(fd, Buffer.alloc(0));
    return undefined;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code ?? 'error';
  }
}

/**
 * Open `t` for the driver: sysfs check, the node, the submission method. Throws a QMP
 * GenericError that says what is wrong and how to fix it.
 */
export async function openHwWq(
  t: DsaTarget,
  sysfs: SysfsOptions = {},
  o: HwOpenOptions = {},
): Promise<HwWqHandle> {
  const check = await openDsaTarget(t, sysfs);
  const native = loadAddon() as NativeDsa;
  const text = `dsa:${t.path}`;
  const fail = (why: string) => genericError(`accel-path ${text} cannot be used: ${why}`);
  let fd: number;
  try {
    fd = openSync(check.node, fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
  } catch (e) {
    throw fail(explainOpenError((e as NodeJS.ErrnoException).code, check.node, t));
  }
  let portal = -1;
  try {
    const st = fstatSync(fd);
    const fifo = st.isFIFO();
    // LIVEMIG_DSA_TEST_FIFO=1: the same for a migration a test runs in its own process.
    if (fifo && !o.allowFifo && process.env.LIVEMIG_DSA_TEST_FIFO !== '1') {
      throw fail(`${check.node} is a FIFO, not the character device of a work queue`);
    }
    if (!fifo && !st.isCharacterDevice()) {
      throw fail(
        `${check.node} is not a character device, so it is not an idxd work queue node (ls -l ${devRoot(sysfs)})`,
      );
    }
    if (!fifo) {
      // Never map (and write into) a character device that is not this WQ's.
      const root = sysfsRoot(sysfs);
      const major = await intAttr(join(root, t.device), 'cdev_major');
      const minor = await intAttr(join(root, t.wq), 'cdev_minor');
      const rmaj = Math.floor(st.rdev / 256) & 0xfff;
      const rmin = (st.rdev & 0xff) | ((st.rdev >> 12) & 0xfff00);
      if (major === undefined || minor === undefined) {
        throw fail(
          `cannot verify that ${check.node} is the node of ${t.device}/${t.wq}: ${join(root, t.device, 'cdev_major')} or ${join(root, t.wq, 'cdev_minor')} is missing (kernel idxd exposes both)`,
        );
      }
      if (major !== rmaj || minor !== rmin) {
        throw fail(
          `${check.node} is character device ${rmaj}:${rmin}, but ${t.device}/${t.wq} is ${major}:${minor} (cdev_major/cdev_minor in sysfs): not this work queue's node`,
        );
      }
    }
    const mode = check.wq?.mode === 'dedicated' ? 'dedicated' : 'shared';
    const choice = o.submit ?? 'auto';
    const cpu = cpuSupport().usable;
    const map = wantsMap(mode, choice, cpu) ? native.mapPortal(fd) : undefined;
    const d = chooseSubmission({
      mode,
      choice,
      cpu,
      map,
      writeError: choice === 'mmap' ? 'not tried' : probeWrite(fd),
    });
    if (d.unmap && map !== undefined && map >= 0) native.unmapPortal(map);
    if (!d.ok) throw fail(d.why);
    if (d.method !== 'write') portal = map!;
    const state = newWqState();
    const sysRoot = sysfsRoot(sysfs);
    // From here the addon owns the fd: writes and polls are checked against close under its lock.
    const fdHandle = native.adoptFd(fd);
    if (fdHandle < 0) {
      if (portal >= 0) native.unmapPortal(portal);
      throw fail(`the native addon cannot take another work queue (${errnoName(fdHandle)})`);
    }
    return {
      kind: 'dsa-hw',
      text,
      device: t.device,
      wq: t.wq,
      node: check.node,
      mode,
      size: check.wq?.size ?? 0,
      maxBatchSize: check.wq?.max_batch_size ?? 32,
      maxTransferSize: check.wq?.max_transfer_size ?? 2 * 1024 * 1024,
      fd,
      fdHandle,
      portal,
      submit: d.method,
      batchOverWrite: d.method === 'write' && !!o.batchOverWrite,
      why: d.method === 'write' && o.batchOverWrite ? `${d.why} [test: BATCH over write()]` : d.why,
      fifo,
      state,
      sysfsState: { wq: join(sysRoot, t.wq, 'state'), device: join(sysRoot, t.device, 'state') },
    };
  } catch (e) {
    closeSync(fd);
    throw e;
  }
}

/**
 * Unmap the portal and close the node. A thread still submitting is waited for (inside the
 * addon's lock) or refused with EBADF afterwards; closing twice does nothing.
 */
export function closeHwWq(h: HwWqHandle): void {
  const native = loadAddon();
  if (h.portal >= 0) native?.unmapPortal(h.portal);
  native?.closeFd(h.fdHandle);
}

/**
 * ENQCMD (op 0, up to `tries` times) or MOVDIR64B (op 1) of `desc` on the portal: 1 + refusals
 * when accepted, 0 when refused. A portal closed under a late thread halts the WQ (EBADF)
 * instead of throwing into the channel.
 */
export function submitPortal(h: HwWqHandle, op: 0 | 1, desc: ArrayBufferView, tries: number) {
  try {
    return (loadAddon() as NativeDsa).submit(h.portal, op, desc, tries);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EBADF') throw e;
    haltHwWq(h, 'EBADF');
    return 0;
  }
}

/**
 * write(2) `length` bytes of `view` from `offset` to the WQ node, through the addon's handle:
 * bytes written. Throws like fs.writeSync (err.code 'EAGAIN', 'ENXIO', ...), and EBADF once
 * the WQ was closed, whichever fd number the process has reused since.
 */
export function writeWq(h: HwWqHandle, view: ArrayBufferView, offset: number, length: number) {
  const r = (loadAddon() as NativeDsa).writeFd(h.fdHandle, view, offset, length);
  if (r >= 0) return r;
  const code = errnoName(r);
  throw Object.assign(new Error(`write to ${h.node} failed: ${code}`), { code, errno: r });
}

/**
 * writeWq for a submitter: the bytes written, 0 when the WQ said "try again" (EAGAIN, EINTR),
 * or -1 when it failed for good (the WQ is halted then, and its pages go to the CPU).
 */
export function tryWriteWq(h: HwWqHandle, view: ArrayBufferView, offset: number, length: number) {
  try {
    return writeWq(h, view, offset, length);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EAGAIN' || code === 'EINTR') return 0;
    haltHwWq(h, code);
    return -1;
  }
}

/** Mark a WQ unusable after a submission failed for good; its pages then go to the CPU. */
export function haltHwWq(h: HwWqHandle, code: string | undefined): void {
  const w = hwStateWords(h);
  const errno = code ? ((osConstants.errno as Record<string, number>)[code] ?? -1) : -1;
  markHalted(w, HaltCause.SUBMISSION, 0, errno);
  if (Atomics.exchange(w, H_REPORTED, 1) === 0) {
    process.stderr.write(
      `livemig: ${h.text}: ${explainWriteError(code, h)}; its pages are checked on the CPU from now on\n`,
    );
  }
}
