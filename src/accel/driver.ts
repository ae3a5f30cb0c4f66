// The accelerator driver: what QEMU keeps in util/dsa.c, behind a high-level async API.
//
//   const accel = await openAccelerator(['dsa-emu:dsa0/wq0.0'], { devices: emu });
//   // any thread (pass accel.handle in workerData, then attachAccelerator(handle)):
//   const task = client.createBatchTask(channelIndex, 128);
//   const zeros = await task.zeroPages(ramBlockSab, pageIndices, count, results);
//
// One batch task per multifd channel, bound to a work queue round-robin by channel index.
// A request fills one COMPVAL descriptor (pattern 0) per page into a descriptor slot of the
// arena, submits them as one BATCH (or several when the WQ's max_batch_size is smaller; a
// single page goes as a plain descriptor, since hardware refuses a batch of one), then awaits
// the completion interrupt on the slot's word with Atomics.waitAsync. Every page the device
// did not decide — page fault (partial completion), failed batch, deadline, halted device,
// submission refused too often, no free slot — is checked on the CPU, so a loaded or broken
// device slows migration down but never fails or hangs it.
//
// Hot path: no allocation per page, no postMessage, no JSON, no BigInt. Descriptor templates
// are written once per slot; per page only the two source-address words and the record's
// status word are written, and per page only the record's first word is read back.
//
// Two devices, one driver: `dsa-emu:` work queues of the emulated device, and `dsa:` kernel
// idxd work queues (src/accel/hw/, through the native addon). Only the portal and the address
// space differ:
//   - emulated: descriptors carry addresses of the emulated device's address space (memory is
//     registered); ENQCMD/MOVDIR64B are the emulated WQ rings; completion interrupts (IMS) wake
//     the channel or dsa_completion;
//   - hardware: descriptors carry real virtual addresses (the addon gives a SharedArrayBuffer's
//     address; SVA shares the page tables); submission is ENQCMD/MOVDIR64B on the mmapped portal
//     or write() on the node; user space gets no completion interrupt, so dsa_completion
//     (src/accel/hw/completion-worker.ts) waits on the records (UMWAIT, or a pause loop) and
//     wakes the channel.
// A `dsa:` list and a `dsa-emu:` list cannot be mixed in one accelerator (one address space).

import { randomInt } from 'node:crypto';
import { Worker } from 'node:worker_threads';
import {
  parseAccelPath,
  formatAccelTarget,
  type AccelTarget,
  type DsaEmuTarget,
} from './accel-path.js';
import {
  A_COMP_IMS,
  A_CPU_ACK,
  A_CPU_REQ,
  A_CREDITS,
  A_IRQ,
  A_MAGIC,
  A_RETIRE_LOCK,
  A_RR,
  A_SHUTDOWN,
  ArenaView,
  F_COMPLETION_CPU_MS,
  M_COUNT,
  M_CREDITS,
  M_DEVICE,
  M_EPOCH,
  M_IRQ,
  M_NSUB,
  M_STATE,
  M_TARGET,
  M_TASK,
  M_TMPL_COUNT,
  M_TMPL_SIZE,
  M_WATCH,
  MAGIC,
  MAX_DEVICES,
  MAX_TARGETS,
  MAX_TASKS,
  SLOT_ABANDONED,
  SLOT_BUSY,
  SLOT_FREE,
  SLOT_HALTED,
  SLOT_SUBMITTED,
  arenaLayout,
  type ArenaLayout,
} from './arena.js';
import {
  COUNTER_FIELDS,
  FALLBACK_REASONS,
  K,
  addBlock,
  emptyCounters,
  mergeBlock,
  type AccelCounters,
  type FallbackReason,
} from './counters.js';
import { blockMemory, isZeroRange } from './cpu-zero.js';
import { DESCRIPTOR_WORDS, writeBatchWords, writeCompvalTemplateWords } from './dsa/descriptor.js';
import { AddressSpace, type Region } from './dsa/emu/address-space.js';
import { DsaEmu, EmulatedDevice, waitUntil } from './dsa/emu/device.js';
import type { DsaEmuHandle, EmuDeviceHandle } from './dsa/emu/handles.js';
import {
  C_EPOCH,
  C_STATE,
  DevState,
  IMS_MISC,
  allocIms,
  freeIms,
  openRegisters,
  ringDoorbell,
} from './dsa/emu/registers.js';
import {
  W_CLAIM,
  W_DEQ_COUNT,
  W_SPACE_WAITERS,
  enqcmd,
  movdir64b,
  openRing,
  type WqRing,
} from './dsa/emu/wq.js';
import { Flag, Status } from './dsa/opcodes.js';
import type { SysfsOptions } from './sysfs.js';
import { genericError } from '../util/errors.js';
import { loadAddon } from './hw/addon.js';
import { cpuSupport } from './hw/cpu.js';
import { closeHwWq, haltHwWq, openHwWq, type HwOpenOptions, type HwWqHandle } from './hw/wq.js';
import {
  A_HW_KICK,
  A_HW_SLEEPING,
  M_HW_SEQ,
  type HwCompletionWorkerData,
} from './hw/completion-shared.js';
import type { DsaTarget } from './accel-path.js';
import { writeSync } from 'node:fs';
import type { WorkerPool } from '../util/worker-pool.js';
import { mulWide } from '../util/wide-math.js';

type WaitResult = { async: boolean; value: Promise<string> | string };
const waitAsync = (
  Atomics as unknown as {
    waitAsync: (a: Int32Array, i: number, v: number, t?: number) => WaitResult;
  }
).waitAsync;

export type CompletionMode = 'direct' | 'thread';

export interface OpenAcceleratorOptions {
  /**
   * The emulated devices `dsa-emu:` entries refer to: a running DsaEmu or its handle (from
   * another thread). Without it, openAccelerator starts the devices of `emuConfig` (default:
   * the built-in configuration) and stops them on close().
   */
  devices?: DsaEmu | DsaEmuHandle;
  /** accel-config JSON for the devices openAccelerator starts itself. */
  emuConfig?: unknown;
  /** Where `dsa:` entries are checked (sysfs and /dev roots). */
  sysfs?: SysfsOptions;
  /** How `dsa:` entries are opened (submission method; tests: a FIFO as the node). */
  hw?: HwOpenOptions;
  /** Largest request in pages (default 1024, the DSA batch limit). */
  maxPages?: number;
  /** Descriptor slots (concurrent requests over all channels; default 32). */
  slots?: number;
  /** A request not completed after this long is finished on the CPU (default 1000 ms). */
  deadlineMs?: number;
  /** Refused submissions tolerated per descriptor before falling back (default 64). */
  submitRetries?: number;
  /**
   * 'direct' (default): completion interrupts wake the owning channel; dsa_completion handles
   * device errors. 'thread': every completion goes through dsa_completion (QEMU's design).
   */
  completion?: CompletionMode;
  /**
   * Threads started ahead: dsa_completion is taken from here (a started Node worker costs
   * tens of milliseconds, which `migrate` would otherwise spend in setup). See
   * completionWorkerFile().
   */
  threads?: WorkerPool;
}

/** The dsa_completion thread's module for an accel-path of `kind` (for WorkerPool.prespawn). */
export function completionWorkerFile(kind: 'dsa' | 'dsa-emu'): URL {
  return kind === 'dsa'
    ? new URL('./hw/completion-worker.js', import.meta.url)
    : new URL('./completion-worker.js', import.meta.url);
}

export interface AccelTargetHandle {
  /** "dsa-emu:dsa0/wq0.0" */
  text: string;
  /** Index of the device in the arena's device list (= emu.devices index). */
  device: number;
  /** Index of the WQ in the device's wqs. */
  wq: number;
}

/** Everything a thread needs to use the accelerator; structured-cloneable (workerData). */
export interface AccelHandle {
  kind: 'livemig-accel';
  arena: SharedArrayBuffer;
  layout: ArenaLayout;
  /** 'emu': dsa-emu work queues; 'hw': kernel idxd work queues (real virtual addresses). */
  space: 'emu' | 'hw';
  /** Device address of the arena's byte 0 (emulated address space, or the real address). */
  arenaBase: number;
  /** Owner tag of the memory this accelerator registers (unmapped all together on close). */
  owner: number;
  emu: DsaEmuHandle;
  /** The kernel WQs of a 'hw' accelerator (device index = index here). */
  hw: HwWqHandle[];
  /** How dsa_completion waits for hardware records: UMWAIT, or a pause loop with backoff. */
  hwWait: 'umwait' | 'pause';
  targets: AccelTargetHandle[];
  deadlineMs: number;
  submitRetries: number;
  mode: CompletionMode;
}

export interface BatchTaskOptions {
  /** Bytes per page (default 4096). */
  pageSize?: number;
  /**
   * What one of this task's pages counts as in the page counters (default 1). A task that
   * checks whole packets at once (pageSize = a packet) counts each as the pages it holds.
   */
  pagesPerUnit?: number;
}

const DEFAULTS = { maxPages: 1024, slots: 32, deadlineMs: 1000, submitRetries: 64 };
/** Refusals retried at once before backing off. */
const SPIN_RETRIES = 4;
const MAX_BACKOFF_MS = 2;

const OUTCOME_DONE = 0;
const OUTCOME_HALTED = 1;
const OUTCOME_DEADLINE = 2;

/**
 * Per-thread state of a device: an emulated device's registers and WQ rings, or a kernel WQ
 * (whose state words have the emulated C_STATE/C_EPOCH positions).
 */
interface DevicePort {
  handle?: EmuDeviceHandle;
  hw?: HwWqHandle;
  words: Int32Array;
  rings: WqRing[];
}

/** The WQ attributes a task needs, from either device. */
interface WqInfo {
  mode: 'shared' | 'dedicated';
  group: number;
  maxBatchSize: number;
  maxTransferSize: number;
}

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
  private keepAlive: ReturnType<typeof setInterval> | undefined;
  private inFlight = 0;
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
   * Classify pages with this thread's default task (created on first use). Channels should
   * use their own task from createBatchTask.
   */
  zeroPages(
    block: SharedArrayBuffer,
    pages: Uint32Array,
    count: number,
    results: Uint8Array,
    offset = 0,
  ): Promise<number> {
    this.defaultTask ??= this.createBatchTask();
    return this.defaultTask.zeroPages(block, pages, count, results, offset);
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
      if (Atomics.load(a.i32, a.taskState(t)) !== 0) addBlock(c, a.f64, a.taskCounters(t));
    }
    addBlock(c, a.f64, a.layout.retiredCounters);
    return c;
  }

  /**
   * CPU milliseconds of the accelerator's threads, each measured by the thread itself:
   * "dsa_completion" and every engine of the devices in use ("dsa0/engine0.N").
   */
  async threadCpu(timeoutMs = 200): Promise<Record<string, number>> {
    const w = this.arena.i32;
    const before = Atomics.load(w, A_CPU_ACK);
    Atomics.add(w, A_CPU_REQ, 1);
    Atomics.add(w, A_IRQ, 1);
    Atomics.notify(w, A_IRQ);
    const out: Record<string, number> = {};
    const devices = this.ports
      .filter((p): p is DevicePort & { handle: EmuDeviceHandle } => !!p?.handle)
      .map((p) => new EmulatedDevice(p.handle));
    await Promise.all([
      waitUntil(w, A_CPU_ACK, () => Atomics.load(w, A_CPU_ACK) !== before, timeoutMs),
      ...devices.map((d) => d.refreshEngineCpu(timeoutMs)),
    ]);
    out.dsa_completion = this.arena.headerF64(F_COMPLETION_CPU_MS);
    for (const d of devices) Object.assign(out, d.engineCpuMs());
    return out;
  }

  /** Close this thread's tasks and unregister the RAM blocks it registered. */
  closeClient(): void {
    if (this.closed) return;
    this.closed = true;
    for (const t of [...this.tasks]) t.close();
    for (const b of this.blocks) this.addressSpace.unregister(b, this.handle.owner);
    this.blocks.clear();
    if (this.keepAlive) clearInterval(this.keepAlive);
    this.keepAlive = undefined;
  }

  /** @internal */
  forgetTask(t: BatchTask): void {
    this.tasks.delete(t);
  }

  /**
   * @internal A pending Atomics.waitAsync does not keep Node's event loop alive; a ref'd
   * timer does, while requests are in flight.
   */
  hold(): void {
    if (this.inFlight++ === 0) {
      this.keepAlive ??= setInterval(() => {}, 2 ** 30);
      this.keepAlive.ref();
    }
  }

  /** @internal */
  release(): void {
    if (--this.inFlight === 0) this.keepAlive?.unref();
  }
}

/** The thread that opened the accelerator: a client plus the dsa_completion thread. */
export class Accelerator extends AcceleratorClient {
  private worker: Worker | undefined;
  private ownedEmu: DsaEmu | undefined;
  private claims: Int32Array[] = [];

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
   * Stop dsa_completion, release interrupt handles and dedicated-WQ claims, unregister the
   * arena, and stop the devices openAccelerator started. Tasks in other threads must be idle.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closeClient();
    const w = this.arena.i32;
    Atomics.store(w, A_SHUTDOWN, 1);
    Atomics.add(w, A_IRQ, 1);
    Atomics.notify(w, A_IRQ);
    const worker = this.worker;
    if (worker) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(() => void worker.terminate().then(() => resolve()), 2000);
        worker.once('exit', () => {
          clearTimeout(t);
          resolve();
        });
        worker.ref();
      });
    }
    const l = this.handle.layout;
    for (const h of this.handle.hw) closeHwWq(h);
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

function resolveEmuTarget(t: DsaEmuTarget, emu: DsaEmuHandle): { device: number; wq: number } {
  const text = formatAccelTarget(t);
  const d = emu.devices.findIndex((x) => x.name === t.device);
  if (d < 0) {
    throw genericError(
      `accel-path ${text}: no emulated device '${t.device}' (configured: ${emu.devices.map((x) => x.name).join(', ') || 'none'})`,
    );
  }
  const dev = emu.devices[d];
  const q = dev.wqs.findIndex((x) => x.name === t.wq);
  if (q < 0) {
    throw genericError(
      `accel-path ${text}: ${t.device} has no work queue '${t.wq}' (configured: ${dev.wqs.map((x) => x.name).join(', ') || 'none'})`,
    );
  }
  const wq = dev.wqs[q];
  if (!wq.enabled) {
    throw genericError(
      `accel-path ${text}: the work queue is not enabled in the emulated configuration (device ${dev.config.enabled ? 'enabled' : 'disabled'}, wq state ${dev.config.wqs[q].enabled ? 'enabled' : 'disabled'}, type ${wq.type})`,
    );
  }
  if (wq.type !== 'user') {
    throw genericError(
      `accel-path ${text}: the work queue has type '${wq.type}'; livemig needs a user work queue ("type":"user")`,
    );
  }
  return { device: d, wq: q };
}

/**
 * Open the accelerator for `accelPath` (accel-path list, or HMP's space-separated string):
 * checks every entry, registers the arena with the devices, allocates interrupt handles and
 * starts the dsa_completion thread. `dsa:` entries are checked against sysfs and opened through
 * the native addon (src/accel/hw/); without it they get a "hardware path unavailable" error.
 */
export async function openAccelerator(
  accelPath: unknown,
  opts: OpenAcceleratorOptions = {},
): Promise<Accelerator> {
  const targets: AccelTarget[] = parseAccelPath(accelPath);
  if (targets.length > MAX_TARGETS) {
    throw genericError(
      `accel-path has ${targets.length} entries; at most ${MAX_TARGETS} are supported`,
    );
  }
  const kinds = new Set(targets.map((t) => t.type));
  if (kinds.size > 1) {
    throw genericError(
      `accel-path mixes kernel work queues (dsa:) and emulated ones (dsa-emu:): ${targets.map(formatAccelTarget).join(' ')}; one migration uses one kind (they have different address spaces)`,
    );
  }
  const maxPages = opts.maxPages ?? DEFAULTS.maxPages;
  const slots = opts.slots ?? DEFAULTS.slots;
  const deadlineMs = opts.deadlineMs ?? DEFAULTS.deadlineMs;
  const submitRetries = opts.submitRetries ?? DEFAULTS.submitRetries;
  const mode = opts.completion ?? 'direct';
  if (!Number.isInteger(maxPages) || maxPages < 1 || maxPages > 65536) {
    throw new RangeError(`maxPages ${maxPages} must be between 1 and 65536`);
  }
  if (!Number.isInteger(slots) || slots < 1 || slots > 1024) {
    throw new RangeError(`slots ${slots} must be between 1 and 1024`);
  }
  if (!(deadlineMs > 0)) throw new RangeError(`deadlineMs ${deadlineMs} must be positive`);
  if (!Number.isInteger(submitRetries) || submitRetries < 0) {
    throw new RangeError(`submitRetries ${submitRetries} must be a non-negative integer`);
  }
  if (mode !== 'direct' && mode !== 'thread') {
    throw new RangeError(`completion mode '${String(mode)}' must be 'direct' or 'thread'`);
  }
  if (kinds.has('dsa')) {
    return openHwAccelerator(targets as DsaTarget[], opts, {
      maxPages,
      slots,
      deadlineMs,
      submitRetries,
      mode,
    });
  }

  let ownedEmu: DsaEmu | undefined;
  let emu: DsaEmuHandle;
  if (opts.devices instanceof DsaEmu) emu = opts.devices.handle;
  else if (opts.devices) emu = opts.devices;
  else {
    ownedEmu = await DsaEmu.start({ config: opts.emuConfig });
    emu = ownedEmu.handle;
  }
  const claims: Int32Array[] = [];
  try {
    if (emu.devices.length > MAX_DEVICES) throw new RangeError(`at most ${MAX_DEVICES} devices`);
    const resolved = targets.map((t) => resolveEmuTarget(t as DsaEmuTarget, emu));
    // Dedicated WQs have one opener (the kernel's cdev gives others EBUSY).
    resolved.forEach((r, i) => {
      const q = emu.devices[r.device].wqs[r.wq];
      if (q.mode !== 'dedicated') return;
      const words = new Int32Array(q.ring);
      if (Atomics.compareExchange(words, W_CLAIM, 0, 1) !== 0) {
        throw genericError(
          `accel-path ${formatAccelTarget(targets[i])}: the dedicated work queue is already open (EBUSY); a dedicated WQ has a single user — use a shared WQ to share it`,
        );
      }
      claims.push(words);
    });
    let maxSub = 1;
    for (const r of resolved) {
      const mb = emu.devices[r.device].wqs[r.wq].maxBatchSize;
      maxSub = Math.max(maxSub, mb >= 2 ? Math.ceil(maxPages / mb) : maxPages);
    }
    const layout = arenaLayout(slots, maxPages, maxSub, emu.devices.length);
    const sab = new SharedArrayBuffer(layout.totalBytes);
    const arena = new ArenaView(sab, layout);
    const w = arena.i32;
    w[A_MAGIC] = MAGIC;
    const as = AddressSpace.attach(emu.addressSpace);
    const owner = randomInt(1, 2 ** 31 - 1);
    const region = as.register(sab, owner);
    const handle: AccelHandle = {
      kind: 'livemig-accel',
      arena: sab,
      layout,
      space: 'emu',
      arenaBase: region.base,
      owner,
      emu,
      hw: [],
      hwWait: 'pause',
      targets: resolved.map((r, i) => ({ text: formatAccelTarget(targets[i]), ...r })),
      deadlineMs,
      submitRetries,
      mode,
    };
    resolved.forEach((r, i) => {
      const q = emu.devices[r.device].wqs[r.wq];
      w[A_CREDITS + i] = q.mode === 'dedicated' ? q.size : 0;
    });
    // Interrupt handles: dsa_completion's (device errors; all completions in 'thread' mode)
    // and, in 'direct' mode, one per slot aimed at the slot's own word.
    for (const d of new Set(resolved.map((r) => r.device))) {
      const regs = openRegisters(emu.devices[d].registers).words;
      w[A_COMP_IMS + d] = allocIms(regs, A_IRQ * 4, region.baseHi, IMS_MISC);
      for (let s = 0; s < slots; s++) {
        w[arena.meta(s, layout.slotImsOffset + d)] =
          mode === 'direct'
            ? allocIms(regs, arena.meta(s, M_IRQ) * 4, region.baseHi, 0)
            : w[A_COMP_IMS + d];
      }
    }
    const accel = new Accelerator(handle);
    const worker = await startCompletionWorker(
      completionWorkerFile('dsa-emu'),
      { arena: sab, layout, mode, devices: emu.devices.map((d) => d.registers) },
      opts.threads,
    );
    accel.setup(worker, ownedEmu, claims);
    return accel;
  } catch (e) {
    for (const c of claims) Atomics.store(c, W_CLAIM, 0);
    await ownedEmu?.close();
    throw e;
  }
}

/**
 * dsa_completion: a thread of `threads` (started ahead; not waited for: it reads the arena once
 * it runs, and a CPU report or halt asked for before then waits in the arena), or a new one,
 * waited for until it is online, as opening used to take: a caller that goes on to close
 * descriptors (tests of a vanished device node) must not race the thread's own file opens.
 */
async function startCompletionWorker(
  url: URL,
  data: unknown,
  threads?: WorkerPool,
): Promise<Worker> {
  let worker: Worker;
  if (threads) {
    worker = threads.take(url, data);
  } else {
    worker = new Worker(url, { name: 'dsa_completion' });
    worker.postMessage({ type: 'bind', data });
    const started = worker;
    await new Promise<void>((resolve, reject) => {
      started.once('online', resolve);
      started.once('error', reject);
    });
  }
  worker.on('error', (e) => {
    // Without dsa_completion only halt detection is lost: requests still end by deadline.
    console.error(`dsa_completion failed: ${e.message}`);
  });
  worker.unref();
  return worker;
}

/** An address space without devices: what a hardware-only accelerator carries as `emu`. */
let noEmu: DsaEmuHandle | undefined;
function emptyEmuHandle(): DsaEmuHandle {
  noEmu ??= { kind: 'dsa-emu-system', addressSpace: AddressSpace.create().handle, devices: [] };
  return noEmu;
}

/**
 * The hardware half of openAccelerator: open every `dsa:` WQ (sysfs check, the native addon,
 * the submission method), then lay the arena out so that its descriptors and records have the
 * alignment the device needs at their real addresses.
 */
async function openHwAccelerator(
  targets: DsaTarget[],
  opts: OpenAcceleratorOptions,
  p: {
    maxPages: number;
    slots: number;
    deadlineMs: number;
    submitRetries: number;
    mode: CompletionMode;
  },
): Promise<Accelerator> {
  const wqs: HwWqHandle[] = [];
  try {
    for (const t of targets) wqs.push(await openHwWq(t, opts.sysfs, opts.hw));
    const native = loadAddon()!;
    let maxSub = 1;
    for (const q of wqs) {
      // write(): every page is its own descriptor, and dsa_completion watches each record.
      const mb = q.submit === 'write' && !q.batchOverWrite ? 1 : q.maxBatchSize;
      maxSub = Math.max(maxSub, mb >= 2 ? Math.ceil(p.maxPages / mb) : p.maxPages);
    }
    const base = arenaLayout(p.slots, p.maxPages, maxSub, wqs.length);
    const sab = new SharedArrayBuffer(base.totalBytes + 64);
    const address = native.address(new Uint8Array(sab, 0, 1));
    // Descriptors 64-byte and records 32-byte aligned at their real addresses: shift the slot
    // memory (its offsets are multiples of 64 from slotMemByte).
    const pad = (64 - ((address + base.slotMemByte) % 64)) % 64;
    if (pad % 8 !== 0)
      throw new Error(
        `SharedArrayBuffer memory at 0x${address.toString(16)} is not 8-byte aligned`,
      );
    const layout: ArenaLayout = {
      ...base,
      slotMemByte: base.slotMemByte + pad,
      totalBytes: base.totalBytes + pad,
    };
    const arena = new ArenaView(sab, layout);
    const w = arena.i32;
    w[A_MAGIC] = MAGIC;
    wqs.forEach((q, i) => (w[A_CREDITS + i] = q.mode === 'dedicated' ? q.size : 0));
    const hwWait = cpuSupport().usable.waitpkg ? 'umwait' : 'pause';
    const handle: AccelHandle = {
      kind: 'livemig-accel',
      arena: sab,
      layout,
      space: 'hw',
      arenaBase: address,
      owner: randomInt(1, 2 ** 31 - 1),
      emu: emptyEmuHandle(),
      hw: wqs,
      hwWait,
      targets: wqs.map((q, i) => ({ text: q.text, device: i, wq: 0 })),
      deadlineMs: p.deadlineMs,
      submitRetries: p.submitRetries,
      mode: p.mode,
    };
    const accel = new Accelerator(handle);
    const data: HwCompletionWorkerData = {
      arena: sab,
      layout,
      states: wqs.map((q) => q.state),
      wait: hwWait,
    };
    const worker = await startCompletionWorker(completionWorkerFile('dsa'), data, opts.threads);
    accel.setup(worker, undefined, []);
    return accel;
  } catch (e) {
    for (const q of wqs) closeHwWq(q);
    throw e;
  }
}

/**
 * A channel's handle on the accelerator: classifies the pages of one packet at a time (or a
 * few, pipelined) as zero or normal.
 */
export class BatchTask {
  private readonly a: ArenaView;
  private readonly w: Int32Array;
  private readonly f: Float64Array;
  /** Task table index. */
  readonly index: number;
  /** Float64 index of this task's counters. */
  private readonly c: number;
  private readonly port: DevicePort;
  /** The emulated WQ ring (undefined for hardware). */
  private readonly ring: WqRing | undefined;
  /** The kernel WQ (undefined for the emulated device). */
  private readonly hw: HwWqHandle | undefined;
  /** Hardware submission through write(): members one by one (BATCH is refused there). */
  private readonly hwWrite: boolean;
  /** Byte view of the arena (write() submits descriptors straight from it). */
  private readonly u8: Uint8Array;
  /** A word nobody notifies: backoff sleeps when there is nothing to wait on. */
  private readonly sleepWord = new Int32Array(new SharedArrayBuffer(4));
  private readonly targetIndex: number;
  private readonly deviceIndex: number;
  private readonly group: number;
  private readonly shared: boolean;
  private readonly maxBatch: number;
  /** Device address of the arena's byte 0. */
  private readonly arenaBase: number;
  /** Descriptor flags: emulated completions raise interrupts (RCI); user-space hardware ones cannot. */
  private readonly rci: number;
  private slotHint: number;
  private closed = false;
  /** "dsa-emu:dsa0/wq0.0" */
  readonly target: string;

  constructor(
    private readonly client: AcceleratorClient,
    readonly channel: number,
    target: AccelTargetHandle,
    readonly maxPages: number,
    readonly pageSize: number,
    /** pages each checked unit counts as (BatchTaskOptions.pagesPerUnit) */
    private readonly unit = 1,
  ) {
    const h = client.handle;
    this.a = client.arena;
    this.w = this.a.i32;
    this.f = this.a.f64;
    this.target = target.text;
    this.targetIndex = h.targets.indexOf(target);
    this.deviceIndex = target.device;
    this.port = client.ports[target.device]!;
    this.hw = this.port.hw;
    this.ring = this.port.rings[target.wq];
    const q: WqInfo = this.hw
      ? {
          mode: this.hw.mode,
          group: 0,
          maxBatchSize:
            this.hw.submit === 'write' && !this.hw.batchOverWrite ? 1 : this.hw.maxBatchSize,
          maxTransferSize: this.hw.maxTransferSize,
        }
      : this.port.handle!.wqs[target.wq];
    this.hwWrite = this.hw?.submit === 'write' && !this.hw.batchOverWrite;
    this.u8 = new Uint8Array(h.arena);
    this.group = q.group;
    this.shared = q.mode === 'shared';
    this.maxBatch = q.maxBatchSize;
    this.arenaBase = h.arenaBase;
    this.rci = this.hw ? 0 : Flag.RCI;
    if (!Number.isInteger(pageSize) || pageSize < 8 || pageSize > q.maxTransferSize) {
      throw new RangeError(
        `page size ${pageSize} must be between 8 and ${target.text}'s max_transfer_size ${q.maxTransferSize}`,
      );
    }
    let index = -1;
    for (let t = 0; t < MAX_TASKS; t++) {
      if (Atomics.compareExchange(this.w, this.a.taskState(t), 0, 1) === 0) {
        index = t;
        break;
      }
    }
    if (index < 0) throw new Error(`too many batch tasks (at most ${MAX_TASKS} open at once)`);
    this.index = index;
    this.c = this.a.taskCounters(index);
    this.f.fill(0, this.c, this.c + COUNTER_FIELDS);
    this.slotHint = (channel * 2) % h.layout.slots;
  }

  /** This task's counters. */
  counters(): AccelCounters {
    const c = emptyCounters();
    addBlock(c, this.f, this.c);
    return c;
  }

  /**
   * Classify `count` pages of `block`: page i is bytes [offset + pages[i]*pageSize, +pageSize)
   * (`offset`: where the block's page 0 starts in the buffer, see src/ram/page-aligned.ts).
   * Sets results[i] = 1 for a zero page, 0 for a normal one; resolves to the number of zero
   * pages. Never rejects because of the device: whatever it does not finish is checked on the
   * CPU. Up to `slots` requests may be in flight (pipelining).
   */
  async zeroPages(
    block: SharedArrayBuffer,
    pages: Uint32Array,
    count: number,
    results: Uint8Array,
    offset = 0,
  ): Promise<number> {
    this.validate(block, pages, count, results, offset);
    if (count === 0) return 0;
    const r = this.pool.pop() ?? new PageRequest();
    r.offset = offset;
    this.client.hold();
    try {
      if (!this.start(r, block, pages, count, results)) return r.zeros;
      let nsub = r.nsubTotal;
      let reason: FallbackReason = 'submitFailed';
      if (this.hwWrite) {
        nsub = await this.writeAll(r, count);
        if (nsub < count) reason = this.unsubmitted(r, nsub);
      } else {
        for (let s = 0; s < nsub; s++) {
          this.prepareSub(r, s, count);
          if (this.submitNow(r) || (await this.submitRetry(r))) continue;
          reason = this.unsubmitted(r, s);
          nsub = s;
        }
      }
      const outcome = await this.waitFor(r, nsub);
      return this.finish(r, block, pages, count, results, nsub, outcome, reason);
    } finally {
      this.client.release();
      this.pool.push(r);
    }
  }

  /** zeroPages that blocks the calling thread (Atomics.wait) instead of returning a promise. */
  zeroPagesSync(
    block: SharedArrayBuffer,
    pages: Uint32Array,
    count: number,
    results: Uint8Array,
    offset = 0,
  ): number {
    this.validate(block, pages, count, results, offset);
    if (count === 0) return 0;
    const r = this.pool.pop() ?? new PageRequest();
    r.offset = offset;
    try {
      if (!this.start(r, block, pages, count, results)) return r.zeros;
      let nsub = r.nsubTotal;
      let reason: FallbackReason = 'submitFailed';
      if (this.hwWrite) {
        nsub = this.writeAllSync(r, count);
        if (nsub < count) reason = this.unsubmitted(r, nsub);
      } else {
        for (let s = 0; s < nsub; s++) {
          this.prepareSub(r, s, count);
          if (this.submitNow(r) || this.submitRetrySync(r)) continue;
          reason = this.unsubmitted(r, s);
          nsub = s;
        }
      }
      const outcome = this.waitForSync(r, nsub);
      return this.finish(r, block, pages, count, results, nsub, outcome, reason);
    } finally {
      this.pool.push(r);
    }
  }

  /** Give the task's counters to the accelerator's total and free its table entry. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    const w = this.w;
    while (Atomics.compareExchange(w, A_RETIRE_LOCK, 0, 1) !== 0) {
      /* another thread is retiring a task */
    }
    mergeBlock(this.f, this.a.layout.retiredCounters, this.c);
    this.f.fill(0, this.c, this.c + COUNTER_FIELDS);
    Atomics.store(w, this.a.taskState(this.index), 0);
    Atomics.store(w, A_RETIRE_LOCK, 0);
    this.client.forgetTask(this);
  }

  // ---- PageRequest steps (shared by the async and sync forms) ----

  private readonly pool: PageRequest[] = [];

  /** Sub-request `s` could not be submitted: forget it, and say why. */
  private unsubmitted(r: PageRequest, s: number): FallbackReason {
    Atomics.store(this.w, this.a.meta(r.slot, M_NSUB), s);
    return this.deviceUsable(r.epoch) ? 'submitFailed' : 'deviceHalted';
  }

  private validate(
    block: SharedArrayBuffer,
    pages: Uint32Array,
    count: number,
    results: Uint8Array,
    offset: number,
  ): void {
    if (this.closed) throw new Error('the batch task is closed');
    if (!(block instanceof SharedArrayBuffer))
      throw new TypeError('block must be a SharedArrayBuffer');
    if (!Number.isInteger(offset) || offset < 0 || offset >= Math.max(1, block.byteLength))
      throw new RangeError(`offset ${offset} must be a byte index inside the block`);
    if (!Number.isInteger(count) || count < 0 || count > this.maxPages) {
      throw new RangeError(
        `count ${count} must be between 0 and the task's maxPages ${this.maxPages}`,
      );
    }
    if (pages.length < count || results.length < count) {
      throw new RangeError(
        `pages (${pages.length}) and results (${results.length}) must hold count ${count} entries`,
      );
    }
  }

  private add(field: number, v: number): void {
    this.f[this.c + field] += v;
  }

  /** A page counter: in pages, whatever this task's unit. */
  private addPages(field: number, units: number): void {
    this.f[this.c + field] += units * this.unit;
  }

  private deviceUsable(epoch: number): boolean {
    const w = this.port.words;
    return Atomics.load(w, C_STATE) === DevState.ENABLED && Atomics.load(w, C_EPOCH) === epoch;
  }

  /**
   * Count the request, take and fill a slot. Returns false when the request was finished on
   * the CPU instead (device halted, no free slot); then `r.zeros` holds the result.
   */
  private start(
    r: PageRequest,
    block: SharedArrayBuffer,
    pages: Uint32Array,
    count: number,
    results: Uint8Array,
  ): boolean {
    this.add(K.requests, 1);
    this.addPages(K.pages, count);
    const epoch = Atomics.load(this.port.words, C_EPOCH);
    if (!this.deviceUsable(epoch)) {
      r.zeros = this.cpuRange(block, r.offset, pages, 0, count, results, 'deviceHalted');
      return false;
    }
    const slot = this.acquireSlot();
    if (slot < 0) {
      r.zeros = this.cpuRange(block, r.offset, pages, 0, count, results, 'noSlot');
      return false;
    }
    const base = this.client.blockBase(block) + r.offset;
    this.fill(slot, base, block.byteLength - r.offset, pages, count);
    const a = this.a;
    const w = this.w;
    w[a.meta(slot, M_TASK)] = this.index;
    w[a.meta(slot, M_TARGET)] = this.targetIndex;
    w[a.meta(slot, M_DEVICE)] = this.deviceIndex;
    w[a.meta(slot, M_COUNT)] = count;
    w[a.meta(slot, M_EPOCH)] = epoch;
    w[a.meta(slot, M_CREDITS)] = 0;
    Atomics.store(w, a.meta(slot, M_NSUB), 0);
    if (this.hw) Atomics.add(w, a.meta(slot, M_HW_SEQ), 1);
    r.slot = slot;
    r.epoch = epoch;
    r.nsubTotal = this.maxBatch >= 2 ? Math.ceil(count / this.maxBatch) : count;
    r.t0 = performance.now();
    r.deadline = r.t0 + this.client.handle.deadlineMs;
    return true;
  }

  private acquireSlot(): number {
    const a = this.a;
    const w = this.w;
    const n = a.layout.slots;
    for (let k = 0; k < n; k++) {
      const s = (this.slotHint + k) % n;
      const st = a.meta(s, M_STATE);
      const v = Atomics.load(w, st);
      if (v === SLOT_FREE) {
        if (Atomics.compareExchange(w, st, SLOT_FREE, SLOT_BUSY) !== SLOT_FREE) continue;
      } else if (v === SLOT_ABANDONED && this.reclaimable(s)) {
        if (Atomics.compareExchange(w, st, SLOT_ABANDONED, SLOT_BUSY) !== SLOT_ABANDONED) continue;
        this.returnCredits(s);
      } else continue;
      this.slotHint = (s + 1) % n;
      return s;
    }
    return -1;
  }

  /** An abandoned slot is safe to reuse once the device wrote all it will write. */
  private reclaimable(s: number): boolean {
    const a = this.a;
    const w = this.w;
    const port = this.client.ports[Atomics.load(w, a.meta(s, M_DEVICE))];
    if (port && Atomics.load(port.words, C_EPOCH) !== Atomics.load(w, a.meta(s, M_EPOCH)))
      return true;
    const nsub = Atomics.load(w, a.meta(s, M_NSUB));
    for (let k = 0; k < nsub; k++) {
      if ((Atomics.load(w, Atomics.load(w, a.meta(s, M_WATCH + k))) & 0xff) === 0) return false;
    }
    return true;
  }

  private returnCredits(s: number): void {
    const w = this.w;
    const held = Atomics.exchange(w, this.a.meta(s, M_CREDITS), 0);
    if (held > 0) {
      const t = A_CREDITS + Atomics.load(w, this.a.meta(s, M_TARGET));
      Atomics.add(w, t, held);
      Atomics.notify(w, t);
    }
  }

  /** Per page: the source address words and a cleared record status. */
  private fill(slot: number, base: number, len: number, pages: Uint32Array, count: number): void {
    const a = this.a;
    const w = this.w;
    const ps = this.pageSize;
    const tmplSize = a.meta(slot, M_TMPL_SIZE);
    const tmplCount = a.meta(slot, M_TMPL_COUNT);
    if (w[tmplSize] !== ps) {
      w[tmplSize] = ps;
      w[tmplCount] = 0;
    }
    const d0 = a.descByte(slot, 0) >> 2;
    const r0 = a.recordByte(slot, 0) >> 2;
    if (w[tmplCount] < count) {
      const flags = Flag.CRAV | Flag.RCR;
      for (let i = w[tmplCount]; i < count; i++) {
        const rec = this.arenaBase + (r0 + i * 8) * 4;
        writeCompvalTemplateWords(w, d0 + i * DESCRIPTOR_WORDS, flags, rec | 0, hiWord(rec), ps, 0);
      }
      w[tmplCount] = count;
    }
    for (let i = 0; i < count; i++) {
      const off = mulWide(pages[i], ps);
      if (off + ps > len) {
        Atomics.store(w, a.meta(slot, M_STATE), SLOT_FREE);
        throw new RangeError(`page ${pages[i]} (entry ${i}) is outside the ${len}-byte block`);
      }
      const dw = d0 + i * DESCRIPTOR_WORDS;
      const src = base + off;
      w[dw + 4] = src | 0; // the low word's bits; `| 0` stays int32 where `>>> 0` would not
      w[dw + 5] = (src / 4294967296) | 0;
      w[r0 + i * 8] = 0;
    }
  }

  /** Write sub-request `s` into `r.bd` and record its watched completion record. */
  private prepareSub(r: PageRequest, s: number, count: number): void {
    const a = this.a;
    const w = this.w;
    const bd = r.bd;
    const slot = r.slot;
    const mb = this.maxBatch >= 2 ? this.maxBatch : 1;
    const start = s * mb;
    const n = Math.min(mb, count - start);
    const ims =
      this.client.handle.mode === 'direct'
        ? w[a.meta(slot, a.layout.slotImsOffset + this.deviceIndex)]
        : w[A_COMP_IMS + this.deviceIndex];
    let watch: number;
    const irq = this.rci ? ims : 0;
    if (n >= 2) {
      const rec = a.batchRecordByte(slot, s);
      const recAddr = this.arenaBase + rec;
      const list = this.arenaBase + a.descByte(slot, start);
      writeBatchWords(
        bd,
        0,
        Flag.CRAV | Flag.RCR | this.rci,
        recAddr | 0,
        hiWord(recAddr),
        list | 0,
        hiWord(list),
        n,
        irq,
      );
      watch = rec >> 2;
      this.add(K.batches, 1);
    } else {
      const src = a.descByte(slot, start) >> 2;
      for (let i = 0; i < DESCRIPTOR_WORDS; i++) bd[i] = w[src + i];
      bd[1] |= this.rci;
      bd[9] = irq;
      watch = a.recordByte(slot, start) >> 2;
      this.add(K.singleDescriptors, 1);
    }
    Atomics.store(w, watch, 0);
    w[a.meta(slot, M_WATCH + s)] = watch;
    Atomics.store(w, a.meta(slot, M_NSUB), s + 1);
  }

  /** One submission attempt of `r.bd` (ENQCMD, or MOVDIR64B with a credit). */
  private submitNow(r: PageRequest): boolean {
    let ok: boolean;
    if (this.hw?.batchOverWrite && this.shared) {
      ok = this.writeOne(r.bd);
    } else if (this.hw && this.shared) {
      // The addon retries ENQCMD a few times while ZF says "not accepted".
      const got = loadAddon()!.submit(this.hw.portal, 0, r.bd, ENQCMD_TRIES);
      ok = got > 0;
      this.add(K.submitRetries, ok ? got - 1 : ENQCMD_TRIES - 1);
    } else if (this.shared) ok = enqcmd(this.ring!, r.bd, 0);
    else {
      const cw = A_CREDITS + this.targetIndex;
      const w = this.w;
      let c = Atomics.load(w, cw);
      ok = false;
      while (c > 0) {
        const prev = Atomics.compareExchange(w, cw, c, c - 1);
        if (prev === c) {
          ok = !this.hw
            ? movdir64b(this.ring!, r.bd, 0)
            : this.hw.batchOverWrite
              ? this.writeOne(r.bd)
              : loadAddon()!.submit(this.hw.portal, 1, r.bd, 1) > 0;
          if (ok) Atomics.add(w, this.a.meta(r.slot, M_CREDITS), 1);
          else {
            Atomics.add(w, cw, 1);
          }
          break;
        }
        c = prev;
      }
    }
    if (ok) {
      this.add(K.submissions, 1);
      if (!this.hw) ringDoorbell(this.port.words, this.group);
      return true;
    }
    this.add(K.submitRetries, 1);
    return false;
  }

  /**
   * Where a refused submitter waits for room: the WQ's dispatch count or the DWQ credits. A
   * hardware SWQ says nothing about room, so that wait is a plain sleep.
   */
  private backoffWord(): [Int32Array, number] {
    if (this.shared && !this.ring) return [this.sleepWord, 0];
    return this.shared ? [this.ring!.words, W_DEQ_COUNT] : [this.w, A_CREDITS + this.targetIndex];
  }

  private backoffMs(attempt: number): number {
    return Math.min(MAX_BACKOFF_MS, 0.02 * 2 ** (attempt - SPIN_RETRIES));
  }

  private async submitRetry(r: PageRequest): Promise<boolean> {
    const max = this.client.handle.submitRetries;
    for (let attempt = 1; attempt <= max; attempt++) {
      if (!this.deviceUsable(r.epoch)) return false;
      if (attempt > SPIN_RETRIES) {
        const [words, idx] = this.backoffWord();
        const seen = Atomics.load(words, idx);
        const ring = this.shared && this.ring;
        if (ring) Atomics.add(words, W_SPACE_WAITERS, 1);
        const r = waitAsync(words, idx, seen, this.backoffMs(attempt));
        if (r.async) await r.value;
        if (ring) Atomics.sub(words, W_SPACE_WAITERS, 1);
      }
      if (this.submitNow(r)) return true;
    }
    return false;
  }

  private submitRetrySync(r: PageRequest): boolean {
    const max = this.client.handle.submitRetries;
    for (let attempt = 1; attempt <= max; attempt++) {
      if (!this.deviceUsable(r.epoch)) return false;
      if (attempt > SPIN_RETRIES) {
        const [words, idx] = this.backoffWord();
        const seen = Atomics.load(words, idx);
        const ring = this.shared && this.ring;
        if (ring) Atomics.add(words, W_SPACE_WAITERS, 1);
        Atomics.wait(words, idx, seen, this.backoffMs(attempt));
        if (ring) Atomics.sub(words, W_SPACE_WAITERS, 1);
      }
      if (this.submitNow(r)) return true;
    }
    return false;
  }

  // ---- Hardware write() path: each page's COMPVAL is its own descriptor ----

  /** Watch every member record of the request (write() submits no BATCH). */
  private watchMembers(r: PageRequest, count: number): void {
    const a = this.a;
    const w = this.w;
    const r0 = a.recordByte(r.slot, 0) >> 2;
    for (let i = 0; i < count; i++) w[a.meta(r.slot, M_WATCH + i)] = r0 + i * 8;
    Atomics.store(w, a.meta(r.slot, M_NSUB), count);
    this.add(K.singleDescriptors, count);
  }

  /**
   * write() descriptors [from, from+n) of the slot, straight from the arena: the number the
   * kernel took (0: the WQ refused, EAGAIN), or -1 when the WQ failed for good (it is halted
   * then, and its pages go to the CPU).
   */
  private writeDescriptors(slot: number, from: number, n: number): number {
    const hw = this.hw!;
    const off = this.a.descByte(slot, from);
    let written: number;
    try {
      written = writeSync(hw.fd, this.u8, off, n * 64);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EINTR') return 0;
      haltHwWq(hw, code);
      return -1;
    }
    // The kernel takes whole descriptors; a pipe standing in for it may not: finish the last.
    while (written % 64 !== 0) {
      try {
        written += writeSync(hw.fd, this.u8, off + written, 64 - (written % 64));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'EAGAIN' && code !== 'EINTR') {
          haltHwWq(hw, code);
          return -1;
        }
      }
    }
    return written / 64;
  }

  /**
   * One write() of members [done, count): how many the kernel took (0: refused, or no DWQ
   * credit), or -1 when the WQ failed for good. A dedicated WQ gives no feedback (the kernel
   * submits with MOVDIR64B), so the driver sends at most its free credits.
   */
  private writeStep(r: PageRequest, done: number, count: number): number {
    let k = count - done;
    if (!this.shared) {
      this.reclaimOwnCredits(r, done);
      k = this.takeCredits(k);
      if (k === 0) return 0;
    }
    const n = this.writeDescriptors(r.slot, done, k);
    if (!this.shared) {
      const used = Math.max(0, n);
      if (used) Atomics.add(this.w, this.a.meta(r.slot, M_CREDITS), used);
      if (k > used) this.giveCredits(k - used);
    }
    return n;
  }

  private takeCredits(want: number): number {
    const w = this.w;
    const cw = A_CREDITS + this.targetIndex;
    let c = Atomics.load(w, cw);
    while (c > 0) {
      const k = Math.min(c, want);
      const prev = Atomics.compareExchange(w, cw, c, c - k);
      if (prev === c) return k;
      c = prev;
    }
    return 0;
  }

  private giveCredits(n: number): void {
    const cw = A_CREDITS + this.targetIndex;
    Atomics.add(this.w, cw, n);
    Atomics.notify(this.w, cw);
  }

  /** Return the credits of this request's descriptors the device has finished, in order. */
  private reclaimOwnCredits(r: PageRequest, done: number): void {
    const w = this.w;
    const r0 = this.a.recordByte(r.slot, 0) >> 2;
    let k = r.credCursor;
    while (k < done && (Atomics.load(w, r0 + k * 8) & 0xff) !== 0) k++;
    const n = k - r.credCursor;
    if (n > 0) {
      r.credCursor = k;
      Atomics.sub(w, this.a.meta(r.slot, M_CREDITS), n);
      this.giveCredits(n);
    }
  }

  /** write() one descriptor from `bd` (test only: BATCH over write(), see HwOpenOptions). */
  private writeOne(bd: Int32Array): boolean {
    try {
      return writeSync(this.hw!.fd, bd, 0, 64) === 64;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code !== 'EAGAIN' && code !== 'EINTR') haltHwWq(this.hw!, code);
      return false;
    }
  }

  /** Submit `count` members with write(), retrying refusals: the number submitted. */
  private async writeAll(r: PageRequest, count: number): Promise<number> {
    this.watchMembers(r, count);
    r.credCursor = 0;
    let done = 0;
    let attempt = 0;
    const max = this.client.handle.submitRetries;
    while (done < count && this.deviceUsable(r.epoch)) {
      const n = this.writeStep(r, done, count);
      if (n < 0) break;
      if (n > 0) {
        done += n;
        attempt = 0;
        this.add(K.submissions, n);
        continue;
      }
      this.add(K.submitRetries, 1);
      if (++attempt > max) break;
      if (attempt > SPIN_RETRIES) {
        const [words, idx] = this.backoffWord();
        const res = waitAsync(words, idx, Atomics.load(words, idx), this.backoffMs(attempt));
        if (res.async) await res.value;
      }
    }
    Atomics.store(this.w, this.a.meta(r.slot, M_NSUB), done);
    return done;
  }

  private writeAllSync(r: PageRequest, count: number): number {
    this.watchMembers(r, count);
    r.credCursor = 0;
    let done = 0;
    let attempt = 0;
    const max = this.client.handle.submitRetries;
    while (done < count && this.deviceUsable(r.epoch)) {
      const n = this.writeStep(r, done, count);
      if (n < 0) break;
      if (n > 0) {
        done += n;
        attempt = 0;
        this.add(K.submissions, n);
        continue;
      }
      this.add(K.submitRetries, 1);
      if (++attempt > max) break;
      if (attempt > SPIN_RETRIES) {
        const [words, idx] = this.backoffWord();
        Atomics.wait(words, idx, Atomics.load(words, idx), this.backoffMs(attempt));
      }
    }
    Atomics.store(this.w, this.a.meta(r.slot, M_NSUB), done);
    return done;
  }

  /** All submitted sub-requests have their watched record written. */
  private allDone(slot: number, nsub: number): boolean {
    const a = this.a;
    const w = this.w;
    for (let k = 0; k < nsub; k++) {
      if ((Atomics.load(w, w[a.meta(slot, M_WATCH + k)]) & 0xff) === 0) return false;
    }
    return true;
  }

  /** One check of the wait loop: an outcome, or -1 to keep waiting. */
  private poll(r: PageRequest, nsub: number): number {
    if (this.allDone(r.slot, nsub)) return OUTCOME_DONE;
    if (
      Atomics.load(this.w, this.a.meta(r.slot, M_STATE)) === SLOT_HALTED ||
      !this.deviceUsable(r.epoch)
    ) {
      return OUTCOME_HALTED;
    }
    return performance.now() >= r.deadline ? OUTCOME_DEADLINE : -1;
  }

  private async waitFor(r: PageRequest, nsub: number): Promise<number> {
    if (nsub === 0) return OUTCOME_DONE;
    const w = this.w;
    Atomics.store(w, this.a.meta(r.slot, M_STATE), SLOT_SUBMITTED);
    if (this.hw) this.client.kickCompletion();
    const irq = this.a.meta(r.slot, M_IRQ);
    for (;;) {
      const seen = Atomics.load(w, irq);
      const o = this.poll(r, nsub);
      if (o >= 0) return o;
      const res = waitAsync(w, irq, seen, Math.max(0, r.deadline - performance.now()));
      if (res.async) await res.value;
    }
  }

  private waitForSync(r: PageRequest, nsub: number): number {
    if (nsub === 0) return OUTCOME_DONE;
    const w = this.w;
    Atomics.store(w, this.a.meta(r.slot, M_STATE), SLOT_SUBMITTED);
    if (this.hw) this.client.kickCompletion();
    const irq = this.a.meta(r.slot, M_IRQ);
    for (;;) {
      const seen = Atomics.load(w, irq);
      const o = this.poll(r, nsub);
      if (o >= 0) return o;
      Atomics.wait(w, irq, seen, Math.max(0, r.deadline - performance.now()));
    }
  }

  /** Read the records into `results`, check the rest on the CPU, release the slot. */
  private finish(
    r: PageRequest,
    block: SharedArrayBuffer,
    pages: Uint32Array,
    count: number,
    results: Uint8Array,
    nsub: number,
    outcome: number,
    unsubmitted: FallbackReason,
  ): number {
    const a = this.a;
    const w = this.w;
    const slot = r.slot;
    this.add(K.completionWaitMs, performance.now() - r.t0);
    if (outcome === OUTCOME_DEADLINE) this.add(K.deadlinesMissed, 1);
    const mb = this.maxBatch >= 2 ? this.maxBatch : 1;
    const covered = Math.min(count, nsub * mb);
    const r0 = a.recordByte(slot, 0) >> 2;
    const ps = this.pageSize;
    const missing: FallbackReason =
      outcome === OUTCOME_DEADLINE
        ? 'deadline'
        : outcome === OUTCOME_HALTED
          ? 'deviceHalted'
          : 'batchFailure';
    let zeros = 0;
    let device = 0;
    let mem: ReturnType<typeof blockMemory> | undefined;
    let tCpu = 0;
    for (let i = 0; i < covered; i++) {
      const rec = Atomics.load(w, r0 + i * 8);
      const code = rec & 0x7f;
      if (code === Status.SUCCESS) {
        const z = (rec >>> 8) & 0xff ? 0 : 1;
        results[i] = z;
        zeros += z;
        device++;
        continue;
      }
      if (!mem) {
        mem = blockMemory(block);
        tCpu = performance.now();
      }
      let from = 0;
      let reason: FallbackReason;
      if (code === Status.PAGE_FAULT_NOBOF) {
        // Partial completion: the first bytes_completed bytes matched the pattern.
        from = Math.min(ps, w[r0 + i * 8 + 1] >>> 0);
        reason = 'pageFault';
      } else reason = code === 0 ? missing : 'batchFailure';
      const z = isZeroRange(mem, r.offset + pages[i] * ps + from, ps - from) ? 1 : 0;
      results[i] = z;
      zeros += z;
      this.addPages(K.fallback + FALLBACK_REASONS.indexOf(reason), 1);
    }
    if (mem) this.add(K.cpuFallbackMs, performance.now() - tCpu);
    this.addPages(K.pagesDevice, device);
    this.addPages(K.pagesCpu, covered - device);
    this.addPages(K.zeroPages, zeros);
    if (covered < count)
      zeros += this.cpuRange(block, r.offset, pages, covered, count, results, unsubmitted);
    // Release: a slot the device may still write to waits until it is done.
    const st = a.meta(slot, M_STATE);
    if (outcome === OUTCOME_DONE || nsub === 0) {
      this.returnCredits(slot);
      Atomics.store(w, st, SLOT_FREE);
    } else {
      Atomics.store(w, st, SLOT_ABANDONED);
    }
    return zeros;
  }

  /** Check pages [from, to) on the CPU, counted under `reason`. */
  private cpuRange(
    block: SharedArrayBuffer,
    offset: number,
    pages: Uint32Array,
    from: number,
    to: number,
    results: Uint8Array,
    reason: FallbackReason,
  ): number {
    const t = performance.now();
    const mem = blockMemory(block);
    const ps = this.pageSize;
    let zeros = 0;
    for (let i = from; i < to; i++) {
      const off = offset + pages[i] * ps;
      if (off + ps > block.byteLength) {
        throw new RangeError(
          `page ${pages[i]} (entry ${i}) is outside the ${block.byteLength - offset}-byte block`,
        );
      }
      const z = isZeroRange(mem, off, ps) ? 1 : 0;
      results[i] = z;
      zeros += z;
    }
    const n = to - from;
    this.addPages(K.fallback + FALLBACK_REASONS.indexOf(reason), n);
    this.addPages(K.pagesCpu, n);
    this.addPages(K.zeroPages, zeros);
    this.add(K.cpuFallbackMs, performance.now() - t);
    return zeros;
  }
}

/** High u32 word of an address below 2^53. */
function hiWord(a: number): number {
  return (a / 4294967296) | 0;
}

/** ENQCMD attempts per submission in the addon before the driver backs off. */
const ENQCMD_TRIES = 4;

/** The state of one zeroPages call (pooled per task). */
class PageRequest {
  slot = 0;
  epoch = 0;
  nsubTotal = 0;
  t0 = 0;
  deadline = 0;
  zeros = 0;
  /** byte offset of the block's page 0 in its buffer */
  offset = 0;
  /** write() to a dedicated WQ: members whose credit went back already. */
  credCursor = 0;
  /** The descriptor being submitted (ENQCMD copies it into the WQ). */
  readonly bd = new Int32Array(DESCRIPTOR_WORDS);
}
