// The shared state of one kernel work queue (Int32 words, one SharedArrayBuffer per WQ, every
// thread of the accelerator holds it through HwWqHandle.state).
//
// Who writes what, in which order:
//   - openHwWq (the opener, before any other thread has the handle): H_STATE = ENABLED.
//   - A submitter (multifdsend_N) whose submission failed for good, or whose request missed its
//     deadline, adds 1 to H_TROUBLE and wakes dsa_completion, which then re-reads sysfs. A
//     write() that the kernel refuses for good (ENXIO, EIO...) halts the WQ itself (markHalted,
//     cause SUBMISSION, H_ERRNO).
//   - dsa_completion (src/accel/hw/wq-monitor.ts), when poll() reports the fd readable or a
//     submitter asked, reads the WQ's and its device's sysfs `state`; when either is not
//     `enabled` it halts the WQ (markHalted, cause WQ_STATE / DEVICE_STATE / SYSFS_GONE) and,
//     the device writing nothing more to a disabled WQ's records, bumps H_EPOCH (stopped()).
//   - markHalted: the first caller wins H_CAUSE (compare-exchange from 0), then writes
//     H_ERRNO / H_DETAIL, then stores H_STATE = HALTED. Later callers only store H_STATE.
// Readers: submitters check H_STATE and H_EPOCH before each request (the positions of the
// emulated device's C_STATE and C_EPOCH, so the driver treats both alike: a halted WQ's pages go
// straight to the CPU; a bumped epoch makes its in-flight and abandoned slots reclaimable).
// query-migrate reads haltReason().

import { DevState } from '../dsa/emu/registers.js';
import { errnoName } from '../../util/errors.js';

/** Why a WQ halted (H_CAUSE; 0 while it has not). */
export const HaltCause = {
  /** A write() the kernel refused for good. */
  SUBMISSION: 1,
  /** The WQ's sysfs state is not `enabled`. */
  WQ_STATE: 2,
  /** The device's sysfs state is not `enabled` (halted after a hardware error, disabled). */
  DEVICE_STATE: 3,
  /** The WQ's sysfs directory is gone (device removed, driver unbound). */
  SYSFS_GONE: 4,
} as const;
export type HaltCauseCode = (typeof HaltCause)[keyof typeof HaltCause];

export const H_STATE = 0;
/** Bumped once the device is known to write nothing more for this WQ (slots reclaimable). */
export const H_EPOCH = 1;
/** errno of the submission that failed for good (cause SUBMISSION). */
export const H_ERRNO = 2;
/** 1 once the halt was reported on stderr. */
export const H_REPORTED = 3;
/** Why it halted: a HaltCause. */
export const H_CAUSE = 4;
/** With WQ_STATE / DEVICE_STATE: the index of the sysfs state in SYSFS_STATES. */
export const H_DETAIL = 5;
/** Bumped by submitters on trouble (refused for good, deadline): dsa_completion re-reads sysfs. */
export const H_TROUBLE = 6;
/** sysfs re-reads dsa_completion made (poll() events and trouble together). */
export const H_CHECKS = 7;
export const H_WORDS = 16;

/** sysfs `state` values of idxd WQs and devices (drivers/dma/idxd/sysfs.c); others: 'unknown'. */
export const SYSFS_STATES = ['enabled', 'disabled', 'locked', 'halted', 'unknown'] as const;

export function sysfsStateIndex(text: string): number {
  const i = (SYSFS_STATES as readonly string[]).indexOf(text.trim());
  return i < 0 ? SYSFS_STATES.indexOf('unknown') : i;
}

/** A new WQ's words: ENABLED, epoch 0. */
export function newWqState(): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(H_WORDS * 4);
  new Int32Array(sab)[H_STATE] = DevState.ENABLED;
  return sab;
}

export function isHalted(w: Int32Array): boolean {
  return Atomics.load(w, H_STATE) !== DevState.ENABLED;
}

/** Halt the WQ for `cause`: true when this call was the first (it then owns the report). */
export function markHalted(w: Int32Array, cause: HaltCauseCode, detail = 0, errno = 0): boolean {
  const first = Atomics.compareExchange(w, H_CAUSE, 0, cause) === 0;
  if (first) {
    Atomics.store(w, H_ERRNO, errno);
    Atomics.store(w, H_DETAIL, detail);
  }
  Atomics.store(w, H_STATE, DevState.HALTED);
  return first;
}

/** The device writes nothing more for this WQ: its in-flight and abandoned slots may be reused. */
export function stopped(w: Int32Array): void {
  Atomics.add(w, H_EPOCH, 1);
}

/** A submitter saw trouble: ask dsa_completion to look at sysfs. */
export function noteTrouble(w: Int32Array): void {
  Atomics.add(w, H_TROUBLE, 1);
}

/** Why the WQ is halted, in words (undefined while it is enabled). */
export function haltReason(w: Int32Array, q: { device: string; wq: string }): string | undefined {
  if (!isHalted(w)) return undefined;
  const state = SYSFS_STATES[Atomics.load(w, H_DETAIL)] ?? 'unknown';
  const why = ((): string => {
    switch (Atomics.load(w, H_CAUSE)) {
      case HaltCause.SUBMISSION:
        return `the kernel refused its descriptors (${errnoName(Atomics.load(w, H_ERRNO))})`;
      case HaltCause.WQ_STATE:
        return `its sysfs state is '${state}' (/sys/bus/dsa/devices/${q.wq}/state)`;
      case HaltCause.DEVICE_STATE:
        return `its device ${q.device} is '${state}' (/sys/bus/dsa/devices/${q.device}/state; dmesg | grep idxd)`;
      case HaltCause.SYSFS_GONE:
        return `its sysfs entry /sys/bus/dsa/devices/${q.wq} is gone (device removed or driver unbound)`;
      default:
        return 'it stopped taking descriptors';
    }
  })();
  return `work queue ${q.device}/${q.wq} halted: ${why}; its pages are checked on the CPU`;
}

/**
 * query-migrate's accelerator block: `{ 'halted-work-queues': { 'dsa:/dev/dsa/wq0.0': why } }`
 * when a kernel WQ halted, otherwise nothing.
 */
export function haltedWorkQueues(
  wqs: readonly { text: string; device: string; wq: string; state: SharedArrayBuffer }[],
): { 'halted-work-queues'?: Record<string, string> } {
  const out: Record<string, string> = {};
  for (const q of wqs) {
    const why = haltReason(new Int32Array(q.state), q);
    if (why) out[q.text] = why;
  }
  return Object.keys(out).length > 0 ? { 'halted-work-queues': out } : {};
}
