// The accelerator driver's client API: what QEMU keeps in util/dsa.c, behind an async API.
//
//   const accel = await openAccelerator(['dsa-emu:dsa0/wq0.0'], { devices: emu }); // open.ts
//   // any thread (pass accel.handle in workerData, then attachAccelerator(handle)):
//   const task = client.createBatchTask(channelIndex, 128); // batch-task.ts
//   const zeros = await task.zeroPages(ramBlockSab, pageIndices, count, results);
//
// Two devices, one driver: `dsa-emu:` work queues of the emulated device (registered memory,
// emulated WQ rings, completion interrupts) and `dsa:` kernel idxd work queues (real virtual
// addresses through the native addon, the mmapped portal or write(); no completion interrupt
// in user space, so src/accel/hw/completion-worker.ts waits on the records). Only the portal
// (submit.ts) and the address space differ. Every page the device does not decide is checked
// on the CPU: a loaded or broken device slows migration down but never fails or hangs it.

import type { Worker } from 'node:worker_threads';
import {
  A_COMP_IMS,
  A_IRQ,
  A_MAGIC,
  A_RR,
  A_SHUTDOWN,
  ArenaView,
  M_IRQ,
  MAGIC,
  MAX_TASKS,
  TASK_FREE,
} from './arena.js';
import { BatchTask } from './batch-task.js';
import { completionCpuReport } from './completion-thread.js';
import { addBlock, emptyCounters, type AccelCounters } from './counters.js';
import { AddressSpace, type Region } from './dsa/emu/address-space.js';
import { EmulatedDevice, type DsaEmu } from './dsa/emu/device.js';
import type { EmuDeviceHandle } from './dsa/emu/handles.js';
import { freeIms, openRegisters } from './dsa/emu/registers.js';
import { W_CLAIM, openRing } from './dsa/emu/wq.js';
import type { AccelHandle, BatchTaskOptions, DevicePort } from './handle.js';
import { loadAddon } from './hw/addon.js';
import { A_HW_KICK, A_HW_SLEEPING } from './hw/completion-shared.js';
import { closeHwWq } from './hw/wq.js';
import type { PageRequest } from './page-request.js';
import { closeGate } from './submit-gate.js';
import { awaitExit } from '../util/worker-exit.js';

/** How long close() waits for submitters beyond a request's deadline. */
const GATE_GRACE_MS = 2000;

export { BatchTask } from './batch-task.js';
export { completionWorkerFile, openAccelerator } from './open.js';
export type {
  AccelHandle,
  AccelTargetHandle,
  BatchTaskOptions,
  CompletionMode,
  OpenAcceleratorOptions,
} from './handle.js';

/**
 * One thread's use of an open accelerator: batch tasks, counters, thread CPU. Get one with
 * attachAccelerator(handle) in a worker; the Accelerator returned by openAccelerator is one
 * for the thread that opened it.
 */
export class AcceleratorClient {
  readonly arena: ArenaView;
  readonly addressSpace: AddressSpace;
  /** By arena device index; undefined for devices no target uses. */
  readonly ports: (DevicePort | undefined)[];
  private readonly tasks = new Set<BatchTask>();
  private readonly blocks = new Set<SharedArrayBuffer>();
  /** Real addresses of RAM blocks (hardware). */
  private readonly addresses = new WeakMap<SharedArrayBuffer, number>();
  /** @internal The requests of this thread's tasks (the deadline watch looks at those waiting). */
  readonly requests: PageRequest[] = [];
  private watch: ReturnType<typeof setTimeout> | undefined;
  private inFlight = 0;
  /** stop() calls waiting for inFlight to reach 0 */
  private idle: (() => void)[] = [];
  private defaultTask: BatchTask | undefined;
  protected closed = false;

  constructor(readonly handle: AccelHandle) {
    if (handle.kind !== 'livemig-accel') throw new TypeError('not an accelerator handle');
    this.arena = new ArenaView(handle.arena, handle.layout);
    if (Atomics.load(this.arena.i32, A_MAGIC) !== MAGIC)
      throw new TypeError('bad accelerator arena');
    this.addressSpace = AddressSpace.attach(handle.emu.addressSpace);
    const used = new Set(handle.targets.map((t) => t.device));
    this.ports =
      handle.space === 'hw'
        ? handle.hw.map((h) => ({ hw: h, words: new Int32Array(h.state), rings: [] }))
        : handle.emu.devices.map((d, i) =>
            used.has(i)
              ? {
                  handle: d,
                  words: openRegisters(d.registers).words,
                  rings: d.wqs.map((q) => openRing(q.ring, d.registers)),
                }
              : undefined,
          );
  }

  /** The work queues in use, in accel-path order. */
  get targets(): readonly string[] {
    return this.handle.targets.map((t) => t.text);
  }

  /**
   * A batch task for multifd channel `channel` (WQs are assigned round-robin by channel
   * index; omit it to take the next one), for requests of up to `maxPages` pages.
   */
  createBatchTask(channel?: number, maxPages?: number, opts: BatchTaskOptions = {}): BatchTask {
    if (this.closed) throw new Error('the accelerator is closed');
    const n = this.handle.targets.length;
    const ch = channel ?? Atomics.add(this.arena.i32, A_RR, 1);
    if (!Number.isInteger(ch) || ch < 0) throw new RangeError(`channel ${ch} is not an index`);
    const pages = maxPages ?? this.handle.layout.maxPages;
    if (!Number.isInteger(pages) || pages < 1 || pages > this.handle.layout.maxPages) {
      throw new RangeError(
        `maxPages ${pages} must be between 1 and ${this.handle.layout.maxPages} (openAccelerator's maxPages)`,
      );
    }
    const unit = opts.pagesPerUnit ?? 1;
    if (!Number.isInteger(unit) || unit < 1)
      throw new RangeError(`pagesPerUnit ${unit} must be a positive integer`);
    const task = new BatchTask(
      this,
      ch,
      this.handle.targets[ch % n],
      pages,
      opts.pageSize ?? 4096,
      unit,
    );
    this.tasks.add(task);
    return task;
  }

  /**
   * BatchTask.zeroPages with this thread's default task (created on first use). Channels
   * should use their own task from createBatchTask.
   */
  zeroPages(...request: Parameters<BatchTask['zeroPages']>): Promise<number> {
    this.defaultTask ??= this.createBatchTask();
    return this.defaultTask.zeroPages(...request);
  }

  /**
   * The device address region of a RAM block: one this thread already mapped, or a new one
   * registered for this accelerator (unmapped by closeClient or the accelerator's close).
   */
  regionFor(block: SharedArrayBuffer): Region {
    let r = this.addressSpace.findRegion(block);
    if (!r) {
      r = this.addressSpace.register(block, this.handle.owner);
      this.blocks.add(block);
    }
    return r;
  }

  /**
   * Device address of byte 0 of a RAM block: its emulated region, or (hardware) its real
   * virtual address, which never changes (SharedArrayBuffer memory does not move).
   */
  blockBase(block: SharedArrayBuffer): number {
    if (this.handle.space === 'emu') return this.regionFor(block).base;
    let a = this.addresses.get(block);
    if (a === undefined) {
      a = loadAddon()!.address(new Uint8Array(block, 0, Math.min(1, block.byteLength)));
      this.addresses.set(block, a);
    }
    return a;
  }

  /** @internal Wake dsa_completion after a hardware submission (when it sleeps). */
  kickCompletion(): void {
    const w = this.arena.i32;
    Atomics.store(w, A_HW_KICK, 1);
    Atomics.add(w, A_IRQ, 1);
    if (Atomics.load(w, A_HW_SLEEPING) !== 0) Atomics.notify(w, A_IRQ);
  }

  /** Counters summed over every task of every thread (and closed tasks). */
  counters(): AccelCounters {
    const a = this.arena;
    const c = emptyCounters();
    for (let t = 0; t < MAX_TASKS; t++) {
      if (Atomics.load(a.i32, a.taskState(t)) !== TASK_FREE) addBlock(c, a.f64, a.taskCounters(t));
    }
    return c;
  }

  /**
   * CPU milliseconds of the accelerator's threads, each measured by the thread itself:
   * "dsa_completion" and every engine of the devices in use ("dsa0/engine0.N").
   */
  async threadCpu(timeoutMs = 200): Promise<Record<string, number>> {
    const w = this.arena.i32;
    const report = completionCpuReport(this.arena.sab);
    const before = report.ask();
    Atomics.add(w, A_IRQ, 1); // dsa_completion sleeps on its interrupt word
    Atomics.notify(w, A_IRQ);
    const out: Record<string, number> = {};
    const devices = this.ports
      .filter((p): p is DevicePort & { handle: EmuDeviceHandle } => !!p?.handle)
      .map((p) => new EmulatedDevice(p.handle));
    await Promise.all([
      report.answered(before, 1, timeoutMs),
      ...devices.map((d) => d.refreshEngineCpu(timeoutMs)),
    ]);
    out.dsa_completion = report.read(0);
    for (const d of devices) Object.assign(out, d.engineCpuMs());
    return out;
  }

  /**
   * Stop using the accelerator from this thread: wait until this thread's requests in flight
   * have finished (each within the deadline), then closeClient(). A thread that is going to be
   * ended calls this first, so that it is never ended in the middle of a submission.
   */
  async stop(): Promise<void> {
    while (this.inFlight > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
    this.closeClient();
  }

  /** Close this thread's tasks and unregister the RAM blocks it registered. */
  closeClient(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of [...this.tasks]) t.close();
    for (const b of this.blocks) this.addressSpace.unregister(b, this.handle.owner);
    this.blocks.clear();
    // Requests still in flight keep their deadline watch; it stops once they have ended.
    if (this.inFlight > 0) return;
    clearTimeout(this.watch);
    this.watch = undefined;
  }

  /** @internal */
  forgetTask(t: BatchTask, idle: readonly PageRequest[]): void {
    this.tasks.delete(t);
    // Its idle requests need no watching (one still in flight is watched until it ends).
    for (const r of idle) {
      const i = this.requests.indexOf(r);
      if (i >= 0) this.requests.splice(i, 1);
    }
  }

  /**
   * @internal The deadline watch: one timer per thread wakes the requests whose deadline has
   * passed, so that a request's wait needs no timeout of its own (a timed Atomics.waitAsync
   * costs a timer and an extra event-loop wake-up per request). While requests are in flight
   * it is ref'd: a pending Atomics.waitAsync does not keep Node's event loop alive.
   */
  hold(): void {
    if (this.inFlight++ !== 0) return;
    if (this.watch) this.watch.ref();
    else this.armWatch(this.handle.deadlineMs);
  }

  /** @internal */
  release(): void {
    if (--this.inFlight !== 0) return;
    this.watch?.unref();
    for (const resolve of this.idle.splice(0)) resolve();
  }

  private armWatch(ms: number): void {
    this.watch = setTimeout(() => this.onWatch(), ms);
    if (this.inFlight === 0) this.watch.unref();
  }

  /** Wake the overdue requests; look again at the next deadline, or stop when idle. */
  private onWatch(): void {
    this.watch = undefined;
    const now = performance.now();
    let next = Infinity;
    for (const r of this.requests) {
      if (!r.waiting) continue;
      if (r.deadline > now) next = Math.min(next, r.deadline);
      else Atomics.notify(this.arena.i32, this.arena.meta(r.slot, M_IRQ)); // its poll ends it
    }
    if (next < Infinity) this.armWatch(next - now);
    else if (this.inFlight > 0) this.armWatch(this.handle.deadlineMs);
  }
}

/** The thread that opened the accelerator: a client plus the dsa_completion thread. */
export class Accelerator extends AcceleratorClient {
  private worker: Worker | undefined;
  private ownedEmu: DsaEmu | undefined;
  private claims: Int32Array[] = [];
  private shut = false;

  /** @internal */
  setup(worker: Worker, ownedEmu: DsaEmu | undefined, claims: Int32Array[]): void {
    this.worker = worker;
    this.ownedEmu = ownedEmu;
    this.claims = claims;
  }

  /** The emulated devices openAccelerator started itself (undefined when given `devices`). */
  get emu(): DsaEmu | undefined {
    return this.ownedEmu;
  }

  /**
   * Wait until no thread is submitting (the submit gate; later requests go to the CPU), stop
   * dsa_completion, close the kernel WQs, release interrupt handles and dedicated-WQ claims,
   * unregister the arena, and stop the devices openAccelerator started. Threads that used the
   * accelerator should stop() first; close() never closes a WQ under a submitter. `usersEnded`:
   * every other thread that used it has ended (exited or terminated), so a count left in the
   * gate is a dead thread's and the WQs are closed at once.
   */
  async close(opts: { usersEnded?: boolean } = {}): Promise<void> {
    if (this.shut) return;
    this.shut = true;
    await this.stop();
    const w = this.arena.i32;
    const wait = opts.usersEnded ? 0 : this.handle.deadlineMs + GATE_GRACE_MS;
    const drained = (await closeGate(w, wait)) || opts.usersEnded === true;
    Atomics.store(w, A_SHUTDOWN, 1);
    Atomics.add(w, A_IRQ, 1);
    Atomics.notify(w, A_IRQ);
    if (this.worker) await awaitExit(this.worker, 2000);
    if (drained) for (const h of this.handle.hw) closeHwWq(h);
    else if (this.handle.hw.length > 0) {
      // A thread ended in the middle of a submission: an fd number closed now could be
      // reused under it. Leaving the WQs open costs an fd and a mapping each.
      console.error(
        `accelerator close: a submitter did not leave in time; ${this.handle.targets.map((t) => t.text).join(' ')} stay open`,
      );
    }
    const l = this.handle.layout;
    this.ports.forEach((p, d) => {
      if (!p?.handle) return;
      freeIms(p.words, Atomics.load(w, A_COMP_IMS + d));
      for (let s = 0; s < l.slots; s++)
        freeIms(p.words, Atomics.load(w, this.arena.meta(s, l.slotImsOffset + d)));
    });
    for (const c of this.claims) Atomics.store(c, W_CLAIM, 0);
    // The arena and every RAM block any thread registered for this accelerator.
    this.addressSpace.unregisterOwner(this.handle.owner);
    await this.ownedEmu?.close();
  }
}

/** Attach to an accelerator opened in another thread (handle from workerData). */
export function attachAccelerator(handle: AccelHandle): AcceleratorClient {
  return new AcceleratorClient(handle);
}
