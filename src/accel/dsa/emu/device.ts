// The emulated DSA devices: configuration → registers, work queues and engine threads.
//
// `DsaEmu.start()` (in the thread that owns the devices, usually main) builds every device of
// an accel-config configuration in one shared address space and starts one worker thread per
// grouped engine. `dsaEmu.handle` is structured-cloneable: pass it in workerData, and in the
// other thread `new EmulatedDevice(handle.devices[i])` gives the same controls (state, fault
// injection, statistics) over the same shared memory, while the driver submits to its WQs.

import { Worker } from 'node:worker_threads';
import { waitUntil } from '../../../util/wait-until.js';
import type { WorkerPool } from '../../../util/worker-pool.js';
import { awaitExit } from '../../../util/worker-exit.js';
import { AddressSpace, type Region } from './address-space.js';
import { defaultAccfgConfig, type EmuDeviceConfig } from './config.js';
import type { EngineWorkerData } from './engine.js';
import { resolveAccfgConfig } from './config-validate.js';
import type { DsaEmuHandle, EmuDeviceHandle, EmuEngineHandle, EmuWqHandle } from './handles.js';
import {
  C_ENGINE_DELAY_US,
  C_ENGINES_RUNNING,
  C_ENGINE_ACK,
  C_EPOCH,
  C_HALT_ACKS,
  C_HALT_GEN,
  C_HALT_AFTER,
  C_HALT_IRQ_DONE,
  C_PAUSED,
  C_SHUTDOWN,
  C_STATE,
  DEV_STATE_NAMES,
  DevState,
  createRegisterFile,
  engineCounts,
  haltDevice,
  openRegisters,
  ringAllDoorbells,
  takeSwerr,
  type Registers,
  type SoftwareError,
} from './registers.js';
import {
  W_ACCEPTED,
  W_DEAD,
  W_DROPPED,
  W_ENABLED,
  W_REFUSE,
  W_REFUSED,
  createRingBuffer,
  occupancy,
  openRing,
  resetRing,
  type WqRing,
} from './wq.js';

export type EngineStats = { thread: string; cpuMs: number } & ReturnType<typeof engineCounts>;

export interface WqStats {
  name: string;
  state: 'enabled' | 'disabled';
  occupancy: number;
  accepted: number;
  refused: number;
  dropped: number;
  /** Slots given up on since the last reset: an entry left unpublished (wq.ts). */
  dead: number;
}

/** Controls and statistics of one emulated device; usable in any thread. */
export class EmulatedDevice {
  readonly name: string;
  readonly config: EmuDeviceConfig;
  readonly regs: Registers;
  private readonly rings: WqRing[];

  constructor(readonly handle: EmuDeviceHandle) {
    this.name = handle.name;
    this.config = handle.config;
    this.regs = openRegisters(handle.registers);
    this.rings = handle.wqs.map((w) => openRing(w.ring, handle.registers));
  }

  get state(): 'disabled' | 'enabled' | 'drain' | 'halted' {
    return DEV_STATE_NAMES[Atomics.load(this.regs.words, C_STATE)] as 'enabled';
  }

  get epoch(): number {
    return Atomics.load(this.regs.words, C_EPOCH);
  }

  wq(name: string): EmuWqHandle {
    const q = this.handle.wqs.find((w) => w.name === name);
    if (!q) {
      throw new Error(
        `${this.name} has no work queue '${name}' (it has ${this.handle.wqs.map((w) => w.name).join(', ') || 'none'})`,
      );
    }
    return q;
  }

  /** Halt the device now: engines stop, in-flight descriptors never complete. */
  halt(): void {
    haltDevice(this.regs.words);
  }

  /** Let `n` more descriptors (batch members count) run, then halt: a halt mid-batch. */
  haltAfter(n: number): void {
    Atomics.store(this.regs.words, C_HALT_AFTER, Math.max(0, Math.floor(n)) + 1);
  }

  /** Make every engine sleep `us` microseconds before each descriptor it takes (0 = off). */
  setEngineDelay(us: number): void {
    Atomics.store(this.regs.words, C_ENGINE_DELAY_US, Math.max(0, Math.floor(us)));
  }

  /** Stall the engines: descriptors stay in the WQs (and fill them) until resume(). */
  pause(): void {
    Atomics.store(this.regs.words, C_PAUSED, 1);
  }

  resume(): void {
    Atomics.store(this.regs.words, C_PAUSED, 0);
    ringAllDoorbells(this.regs.words);
  }

  /** Refuse the next `n` ENQCMDs to `wq`, as a full shared WQ would. */
  refuseSubmissions(wq: string, n: number): void {
    Atomics.store(this.rings[this.wq(wq).index].words, W_REFUSE, Math.max(0, Math.floor(n)));
  }

  /** Read and clear the software error register. */
  takeSoftwareError(): SoftwareError | undefined {
    return takeSwerr(this.regs.words);
  }

  /**
   * Reset a halted device: wait until every engine has stopped, empty the WQs, start a new
   * epoch and enable it again. Only while nothing submits to it.
   */
  async reset(timeoutMs = 2000): Promise<void> {
    const w = this.regs.words;
    haltDevice(w);
    const gen = Atomics.load(w, C_HALT_GEN);
    const engines = this.handle.engines;
    const ok = await waitUntil(
      w,
      C_HALT_ACKS,
      () => engines.every((e) => Atomics.load(w, C_ENGINE_ACK + e.index) === gen),
      timeoutMs,
    );
    if (!ok) throw new Error(`${this.name}: the engines did not stop within ${timeoutMs} ms`);
    for (const r of this.rings) resetRing(r);
    Atomics.store(w, C_HALT_AFTER, 0);
    Atomics.store(w, C_HALT_IRQ_DONE, 0);
    Atomics.add(w, C_EPOCH, 1);
    Atomics.store(w, C_STATE, DevState.ENABLED);
    Atomics.notify(w, C_STATE);
    ringAllDoorbells(w);
  }

  /** Ask every engine to publish its CPU time now; resolves when they have (or on timeout). */
  async refreshEngineCpu(timeoutMs = 200): Promise<void> {
    const w = this.regs.words;
    const running = Atomics.load(w, C_ENGINES_RUNNING);
    if (running === 0) return;
    const before = this.regs.cpu.ask();
    ringAllDoorbells(w); // engines sleep on the doorbells
    await this.regs.cpu.answered(before, running, timeoutMs);
  }

  engineStats(): EngineStats[] {
    return this.handle.engines.map((e) => ({
      thread: e.threadName,
      cpuMs: this.regs.cpu.read(e.index),
      ...engineCounts(this.regs, e.index),
    }));
  }

  wqStats(): WqStats[] {
    return this.handle.wqs.map((q, i) => {
      const w = this.rings[i].words;
      return {
        name: q.name,
        state: Atomics.load(w, W_ENABLED) === 1 ? 'enabled' : 'disabled',
        occupancy: occupancy(this.rings[i]),
        accepted: Atomics.load(w, W_ACCEPTED),
        refused: Atomics.load(w, W_REFUSED),
        dropped: Atomics.load(w, W_DROPPED),
        dead: Atomics.load(w, W_DEAD),
      };
    });
  }

  /** CPU ms per engine thread, keyed "dsa0/engine0.N" (last published values). */
  engineCpuMs(): Record<string, number> {
    return Object.fromEntries(this.engineStats().map((e) => [e.thread, e.cpuMs]));
  }
}

export interface DsaEmuOptions {
  /** accel-config JSON (already parsed); default: the built-in configuration. */
  config?: unknown;
  /** Engines of the built-in configuration (default: defaultEngineCount()). */
  engines?: number;
  /**
   * Threads started ahead: engine threads are taken from here (engineWorkerFile()), so that
   * a migration started right after the devices does not pay their start.
   */
  threads?: WorkerPool;
}

/** The engine threads' module (for WorkerPool.prespawn). */
export function engineWorkerFile(): URL {
  return new URL('./engine-worker.js', import.meta.url);
}

/** The emulated devices of one address space, owned by the thread that started them. */
export class DsaEmu {
  readonly devices: EmulatedDevice[];
  private readonly workers: { worker: Worker; device: EmulatedDevice; engine: EmuEngineHandle }[] =
    [];
  private closed = false;
  /** Errors of engine threads that died (each halts its device). */
  readonly engineErrors: { thread: string; error: Error }[] = [];

  private constructor(
    readonly handle: DsaEmuHandle,
    readonly addressSpace: AddressSpace,
  ) {
    this.devices = handle.devices.map((d) => new EmulatedDevice(d));
  }

  /** Build the devices of `config` and start their engine threads. */
  static async start(opts: DsaEmuOptions = {}): Promise<DsaEmu> {
    const r = opts.config
      ? resolveAccfgConfig(opts.config)
      : resolveAccfgConfig(defaultAccfgConfig(opts.engines), { builtIn: true });
    if (r.errors.length) {
      throw new Error(`invalid emulated DSA configuration:\n  ${r.errors.join('\n  ')}`);
    }
    const as = AddressSpace.create();
    const handle: DsaEmuHandle = {
      kind: 'dsa-emu-system',
      addressSpace: as.handle,
      devices: r.devices.map((c) => buildDevice(c, as)),
    };
    const emu = new DsaEmu(handle, as);
    // All at once: a worker's start is mostly its own thread's (isolate, modules), and a
    // migration started right after `migrate-set-parameters` waits for the slowest, not the sum.
    const started = emu.devices.flatMap((d) =>
      d.handle.engines.map((e) => emu.startEngine(d, e, opts.threads)),
    );
    const failed = (await Promise.allSettled(started)).find((r) => r.status === 'rejected');
    if (failed) {
      await emu.close();
      throw failed.reason;
    }
    return emu;
  }

  private async startEngine(
    device: EmulatedDevice,
    engine: EmuEngineHandle,
    threads?: WorkerPool,
  ): Promise<void> {
    const data: EngineWorkerData = { device: device.handle, engine: engine.index };
    const worker =
      threads?.take(engineWorkerFile(), data) ??
      new Worker(engineWorkerFile(), { workerData: data, name: engine.threadName });
    // Pushed now: close() ends a worker that failed to start too, or is still starting.
    this.workers.push({ worker, device, engine });
    await new Promise<void>((resolve, reject) => {
      worker.once('message', () => resolve());
      worker.once('error', reject);
      worker.once('exit', (code) =>
        reject(new Error(`${engine.threadName} exited with code ${code}`)),
      );
    });
    worker.removeAllListeners();
    worker.on('error', (error) => {
      this.engineErrors.push({ thread: engine.threadName, error });
      // A dead engine is a hardware error: halt. Requests in flight end at their deadline
      // (no engine is left to raise the error interrupt); later ones see the halt at once.
      haltDevice(device.regs.words);
    });
    worker.unref();
  }

  device(name: string): EmulatedDevice {
    const d = this.devices.find((x) => x.name === name);
    if (!d) {
      throw new Error(
        `no emulated device '${name}' (configured: ${this.devices.map((x) => x.name).join(', ')})`,
      );
    }
    return d;
  }

  /** Register memory in the devices' address space (the driver does this itself). */
  register(sab: SharedArrayBuffer): Region {
    return this.addressSpace.findRegion(sab) ?? this.addressSpace.register(sab);
  }

  /**
   * Make the 4 KiB device page holding `byteOffset` of `block` not present: accesses to it end
   * with PAGE_FAULT_NOBOF, `times` times (default: until cleared). Registers `block` in this
   * thread if needed; a driver in this thread then uses that same region.
   */
  injectPageFault(block: SharedArrayBuffer, byteOffset: number, times = -1): void {
    this.addressSpace.injectFault(this.register(block).base + byteOffset, times);
  }

  clearPageFaults(): void {
    this.addressSpace.clearFaults();
  }

  /** Refresh and return CPU ms of every engine thread, keyed "dsa0/engine0.N". */
  async engineCpuMs(): Promise<Record<string, number>> {
    await Promise.all(this.devices.map((d) => d.refreshEngineCpu()));
    return Object.assign({}, ...this.devices.map((d) => d.engineCpuMs())) as Record<string, number>;
  }

  /** Stop every engine thread. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const d of this.devices) {
      Atomics.store(d.regs.words, C_SHUTDOWN, 1);
      ringAllDoorbells(d.regs.words);
      Atomics.notify(d.regs.words, C_STATE);
    }
    await Promise.all(this.workers.map(({ worker }) => awaitExit(worker, 2000)));
    this.addressSpace.close();
  }
}

function buildDevice(c: EmuDeviceConfig, as: AddressSpace): EmuDeviceHandle {
  const registers = createRegisterFile();
  const regs = openRegisters(registers);
  Atomics.store(regs.words, C_STATE, c.enabled ? DevState.ENABLED : DevState.DISABLED);
  const wqs: EmuWqHandle[] = c.wqs.map((q, index) => {
    const limit = q.mode === 'shared' ? q.threshold : q.size;
    const ring = createRingBuffer(Math.max(1, q.size), limit, index);
    const usable = c.enabled && q.enabled && q.group >= 0 && q.type !== 'none' && q.size > 0;
    new Int32Array(ring)[W_ENABLED] = usable ? 1 : 0;
    return { ...q, index, enabled: usable, ring };
  });
  // Engines run only in groups with an enabled WQ; others would sleep forever.
  const busyGroups = new Set(wqs.filter((q) => q.enabled).map((q) => q.group));
  const engines: EmuEngineHandle[] = c.engines
    .filter((e) => e.group >= 0 && busyGroups.has(e.group))
    .map((e, index) => ({ ...e, index, threadName: `${c.name}/${e.name}` }));
  return {
    kind: 'dsa-emu',
    name: c.name,
    id: c.id,
    registers,
    config: c,
    wqs,
    engines,
    addressSpace: as.handle,
  };
}
