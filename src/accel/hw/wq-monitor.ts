// How dsa_completion notices that a kernel work queue halted (src/accel/hw/wq-state.ts says who
// writes which word).
//
// Nothing on the portal path says so: ENQCMD on a disabled shared WQ is only refused (as when
// it is full), and MOVDIR64B to a disabled dedicated WQ is dropped without a word. Two things do:
//   - the kernel reports a device software error (SWERR) by making every WQ fd of the device
//     readable (idxd_cdev_poll: EPOLLIN | EPOLLRDNORM once sw_err is valid);
//   - sysfs: the WQ's `state` is `disabled` (or its device's is `halted`/`disabled`).
// So each round dsa_completion polls the WQ fds (non-blocking, at most once a millisecond), and
// reads sysfs when one is readable, or when a submitter reported trouble (a submission refused
// for good, a deadline missed). sysfs decides: an error that left the WQ enabled halts nothing.
// The kernel's sw_err stays set once seen, so a readable fd re-reads sysfs at most every 100 ms.

import { readFileSync } from 'node:fs';
import type { NativeDsa } from './addon.js';
import type { HwWqHandle } from './wq.js';
import {
  H_CHECKS,
  H_REPORTED,
  H_TROUBLE,
  HaltCause,
  haltReason,
  markHalted,
  stopped,
  sysfsStateIndex,
  type HaltCauseCode,
} from './wq-state.js';

/** Between two polls of the WQ fds. */
const POLL_GAP_MS = 1;
/** A readable fd (SWERR stays set) re-reads sysfs at most this often. */
const READABLE_RECHECK_MS = 100;
/** Submitters' trouble re-reads sysfs at most this often. */
const TROUBLE_RECHECK_MS = 5;
const POLLNVAL = 0x20;

/** What sysfs says about a WQ: undefined while it and its device are enabled. */
export function sysfsHalt(
  files: { wq: string; device: string },
  read: (path: string) => string = (p) => readFileSync(p, 'latin1'),
): { cause: HaltCauseCode; detail: number } | undefined {
  let wq: string;
  try {
    wq = read(files.wq).trim();
  } catch {
    return { cause: HaltCause.SYSFS_GONE, detail: 0 };
  }
  if (wq !== 'enabled') return { cause: HaltCause.WQ_STATE, detail: sysfsStateIndex(wq) };
  let dev: string;
  try {
    dev = read(files.device).trim();
  } catch {
    return { cause: HaltCause.SYSFS_GONE, detail: 0 };
  }
  if (dev !== 'enabled') return { cause: HaltCause.DEVICE_STATE, detail: sysfsStateIndex(dev) };
  return undefined;
}

export class WqMonitor {
  private readonly words: Int32Array[];
  private readonly handles: Int32Array;
  private readonly revents: Int32Array;
  private readonly troubleSeen: Int32Array;
  private readonly readableAgain: Float64Array;
  private readonly troubleAgain: Float64Array;
  /** Halted and stopped by this monitor (or its fd closed): nothing more to watch. */
  private readonly done: Uint8Array;
  /** WQs to re-read sysfs for this round. */
  private readonly due: Uint8Array;
  private lastPoll = -Infinity;
  /** Some WQ was stopped: its abandoned slots are to be reclaimed. */
  anyStopped = false;

  constructor(
    private readonly wqs: HwWqHandle[],
    private readonly native: NativeDsa,
  ) {
    const n = wqs.length;
    this.words = wqs.map((q) => new Int32Array(q.state));
    this.handles = Int32Array.from(wqs, (q) => q.fdHandle);
    this.revents = new Int32Array(n);
    this.troubleSeen = new Int32Array(n);
    this.readableAgain = new Float64Array(n);
    this.troubleAgain = new Float64Array(n);
    this.done = new Uint8Array(n);
    this.due = new Uint8Array(n);
  }

  /** One round: a WQ found halted is stopped (anyStopped). */
  check(now: number): void {
    const n = this.wqs.length;
    const due = this.due.fill(0);
    if (now - this.lastPoll >= POLL_GAP_MS) {
      this.lastPoll = now;
      if (this.native.pollFds(this.handles, n, 0, this.revents) > 0) {
        for (let i = 0; i < n; i++) {
          const ev = this.revents[i];
          if (ev === 0 || this.done[i]) continue;
          if (ev & POLLNVAL)
            this.done[i] = 1; // closed: the accelerator is closing
          else if (now >= this.readableAgain[i]) {
            due[i] = 1;
            this.readableAgain[i] = now + READABLE_RECHECK_MS;
          }
        }
      }
    }
    for (let i = 0; i < n; i++) {
      if (this.done[i]) continue;
      const w = this.words[i];
      const t = Atomics.load(w, H_TROUBLE);
      if (t !== this.troubleSeen[i] && now >= this.troubleAgain[i]) {
        this.troubleSeen[i] = t;
        this.troubleAgain[i] = now + TROUBLE_RECHECK_MS;
        due[i] = 1;
      }
      if (due[i]) this.halt(i);
    }
  }

  /** Read sysfs for WQ i; halt and stop it when it is not enabled. */
  private halt(i: number): void {
    const w = this.words[i];
    Atomics.add(w, H_CHECKS, 1);
    const found = sysfsHalt(this.wqs[i].sysfsState);
    if (!found) return;
    markHalted(w, found.cause, found.detail);
    // A disabled WQ (or a halted device) writes no more completion records.
    stopped(w);
    this.done[i] = 1;
    this.anyStopped = true;
    if (Atomics.exchange(w, H_REPORTED, 1) === 0) {
      process.stderr.write(`livemig: ${this.wqs[i].text}: ${haltReason(w, this.wqs[i])}\n`);
    }
  }
}
