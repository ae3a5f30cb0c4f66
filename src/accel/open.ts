// Opening an accelerator: check every accel-path entry, claim dedicated work queues, lay out
// and register the arena, allocate interrupt handles, and start dsa_completion. A `dsa:` list
// and a `dsa-emu:` list cannot be mixed in one accelerator (one address space).

import { randomInt } from 'node:crypto';
import { once } from 'node:events';
import { Worker } from 'node:worker_threads';
import {
  formatAccelTarget,
  parseAccelPath,
  type AccelTarget,
  type DsaEmuTarget,
  type DsaTarget,
} from './accel-path.js';
import {
  A_COMP_IMS,
  A_CREDITS,
  A_IRQ,
  A_MAGIC,
  ArenaView,
  M_IRQ,
  MAGIC,
  MAX_DEVICES,
  MAX_TARGETS,
  arenaLayout,
  type ArenaLayout,
} from './arena.js';
import { Accelerator } from './driver.js';
import { AddressSpace } from './dsa/emu/address-space.js';
import { DsaEmu } from './dsa/emu/device.js';
import type { DsaEmuHandle } from './dsa/emu/handles.js';
import { IMS_MISC, allocIms, freeIms, openRegisters } from './dsa/emu/registers.js';
import { W_CLAIM } from './dsa/emu/wq.js';
import type { AccelHandle, CompletionMode, OpenAcceleratorOptions } from './handle.js';
import { loadAddon } from './hw/addon.js';
import { chooseHwWait, type HwCompletionWorkerData } from './hw/completion-shared.js';
import { cpuSupport } from './hw/cpu.js';
import { closeHwWq, openHwWq, type HwWqHandle } from './hw/wq.js';
import { genericError } from '../util/errors.js';
import type { WorkerPool } from '../util/worker-pool.js';

/** The dsa_completion thread's module for an accel-path of `kind` (for WorkerPool.prespawn). */
export function completionWorkerFile(kind: 'dsa' | 'dsa-emu'): URL {
  return kind === 'dsa'
    ? new URL('./hw/completion-worker.js', import.meta.url)
    : new URL('./completion-worker.js', import.meta.url);
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
  const p = openParams(opts);
  if (kinds.has('dsa')) return openHwAccelerator(targets as DsaTarget[], opts, p);
  const { maxPages, slots, mode } = p;

  let ownedEmu: DsaEmu | undefined;
  let emu: DsaEmuHandle;
  if (opts.devices instanceof DsaEmu) emu = opts.devices.handle;
  else if (opts.devices) emu = opts.devices;
  else {
    ownedEmu = await DsaEmu.start({ config: opts.emuConfig });
    emu = ownedEmu.handle;
  }
  const claims: Int32Array[] = [];
  // What a failure part-way gives back: interrupt handles (registers, handle) and the arena.
  const imsTaken: [Int32Array, number][] = [];
  let registered: { as: AddressSpace; owner: number } | undefined;
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
    const batchSizes = resolved.map((r) => emu.devices[r.device].wqs[r.wq].maxBatchSize);
    const maxSub = maxSubRequests(maxPages, batchSizes);
    const layout = arenaLayout(slots, maxPages, maxSub, emu.devices.length);
    const sab = new SharedArrayBuffer(layout.totalBytes);
    const arena = new ArenaView(sab, layout);
    const w = arena.i32;
    const as = AddressSpace.attach(emu.addressSpace);
    const owner = randomInt(1, 2 ** 31 - 1);
    const region = as.register(sab, owner);
    registered = { as, owner };
    const handle = newHandle(
      arena,
      p,
      resolved.map((r) => emu.devices[r.device].wqs[r.wq]),
      {
        space: 'emu',
        arenaBase: region.base,
        owner,
        emu,
        hw: [],
        hwWait: 'pause',
        targets: resolved.map((r, i) => ({ text: formatAccelTarget(targets[i]), ...r })),
      },
    );
    // Interrupt handles: dsa_completion's (device errors; all completions in 'thread' mode)
    // and, in 'direct' mode, one per slot aimed at the slot's own word.
    for (const d of new Set(resolved.map((r) => r.device))) {
      const regs = openRegisters(emu.devices[d].registers).words;
      const take = (lo: number, flags: number): number => {
        const h = allocIms(regs, lo, region.baseHi, flags);
        imsTaken.push([regs, h]);
        return h;
      };
      w[A_COMP_IMS + d] = take(A_IRQ * 4, IMS_MISC);
      for (let s = 0; s < slots; s++) {
        w[arena.meta(s, layout.slotImsOffset + d)] =
          mode === 'direct' ? take(arena.meta(s, M_IRQ) * 4, 0) : w[A_COMP_IMS + d];
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
    for (const [regs, h] of imsTaken) freeIms(regs, h);
    registered?.as.unregisterOwner(registered.owner);
    for (const c of claims) Atomics.store(c, W_CLAIM, 0);
    await ownedEmu?.close();
    throw e;
  }
}

/**
 * The handle of a new arena: its magic word, and the free credits of each dedicated WQ among
 * `wqs` (the targets' WQs, in order).
 */
function newHandle(
  arena: ArenaView,
  p: OpenParams,
  wqs: readonly { mode: string; size: number }[],
  of: Omit<AccelHandle, 'kind' | 'arena' | 'layout' | 'deadlineMs' | 'submitRetries' | 'mode'>,
): AccelHandle {
  const w = arena.i32;
  w[A_MAGIC] = MAGIC;
  wqs.forEach((q, i) => (w[A_CREDITS + i] = q.mode === 'dedicated' ? q.size : 0));
  const { deadlineMs, submitRetries, mode } = p;
  return {
    kind: 'livemig-accel',
    arena: arena.sab,
    layout: arena.layout,
    ...of,
    deadlineMs,
    submitRetries,
    mode,
  };
}

interface OpenParams {
  maxPages: number;
  slots: number;
  deadlineMs: number;
  submitRetries: number;
  mode: CompletionMode;
}

function openParams(opts: OpenAcceleratorOptions): OpenParams {
  const p = {
    maxPages: opts.maxPages ?? 1024,
    slots: opts.slots ?? 32,
    deadlineMs: opts.deadlineMs ?? 1000,
    submitRetries: opts.submitRetries ?? 64,
    mode: opts.completion ?? 'direct',
  };
  if (!Number.isInteger(p.maxPages) || p.maxPages < 1 || p.maxPages > 65536)
    throw new RangeError(`maxPages ${p.maxPages} must be between 1 and 65536`);
  if (!Number.isInteger(p.slots) || p.slots < 1 || p.slots > 1024)
    throw new RangeError(`slots ${p.slots} must be between 1 and 1024`);
  if (!(p.deadlineMs > 0)) throw new RangeError(`deadlineMs ${p.deadlineMs} must be positive`);
  if (!Number.isInteger(p.submitRetries) || p.submitRetries < 0)
    throw new RangeError(`submitRetries ${p.submitRetries} must be a non-negative integer`);
  if (p.mode !== 'direct' && p.mode !== 'thread')
    throw new RangeError(`completion mode '${String(p.mode)}' must be 'direct' or 'thread'`);
  return p;
}

/** Sub-requests a slot must hold: a request of maxPages split by the smallest batch size. */
function maxSubRequests(maxPages: number, batchSizes: number[]): number {
  let maxSub = 1;
  for (const mb of batchSizes)
    maxSub = Math.max(maxSub, mb >= 2 ? Math.ceil(maxPages / mb) : maxPages);
  return maxSub;
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
    await once(worker, 'online'); // rejects on 'error'
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
  p: OpenParams,
): Promise<Accelerator> {
  const wqs: HwWqHandle[] = [];
  try {
    for (const t of targets) wqs.push(await openHwWq(t, opts.sysfs, opts.hw));
    const native = loadAddon()!;
    // write(): every page is its own descriptor, and dsa_completion watches each record.
    const batchSizes = wqs.map((q) =>
      q.submit === 'write' && !q.batchOverWrite ? 1 : q.maxBatchSize,
    );
    const maxSub = maxSubRequests(p.maxPages, batchSizes);
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
    const hwWait = chooseHwWait(undefined, cpuSupport().usable.waitpkg);
    const handle = newHandle(new ArenaView(sab, layout), p, wqs, {
      space: 'hw',
      arenaBase: address,
      owner: randomInt(1, 2 ** 31 - 1),
      emu: emptyEmuHandle(),
      hw: wqs,
      hwWait,
      targets: wqs.map((q, i) => ({ text: q.text, device: i, wq: 0 })),
    });
    const accel = new Accelerator(handle);
    // dsa_completion also watches the WQs for halts.
    const data: HwCompletionWorkerData = { arena: sab, layout, wqs, wait: hwWait };
    const worker = await startCompletionWorker(completionWorkerFile('dsa'), data, opts.threads);
    accel.setup(worker, undefined, []);
    return accel;
  } catch (e) {
    for (const q of wqs) closeHwWq(q);
    throw e;
  }
}
