// The PC machine: an x86 PC emulated by v86 in the vCPU thread (pc-vcpu-worker.ts), booting a
// Linux kernel and initramfs. Its RAM is v86's memory made shared, so it has two RAM blocks:
// - as a source, the engine sends from a mirror of guest RAM that the dirty_sync thread
//   (dirty-sync-worker.ts) brings up to date at each dirty sync while the guest runs;
// - as a destination, pages land straight in guest RAM: nothing is copied at switchover.
// Its device state is v86's saved state without RAM. A destination builds the same PC without a
// kernel and takes the state in at switchover.

import { Worker } from 'node:worker_threads';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { allocateBlocks, dirtyWords, pagesOf, type RamBlockDesc } from '../../ram/layout.js';
import { preallocate } from '../../ram/fill.js';
import { ramDigestInWorker } from '../../ram/digest.js';
import {
  REQ_QUIT,
  REQ_RUN,
  REQ_STOP,
  REQ_SWITCHOVER,
  VcpuControl,
} from '../../ram/vcpu-control.js';
import type { CpuRegistry } from '../../util/cpu-slots.js';
import {
  describeMismatch,
  type DeviceState,
  type GuestMachine,
  type MachineDescription,
} from '../guest-machine.js';
import { describeV86Build, v86Build } from './v86-build.js';
import { createKnownZeroMap } from '../../ram/known-zero.js';
import { SyncSplit } from './sync-split.js';
import {
  VGA_MEMORY_BYTES,
  type DirtySyncWorkerData,
  type GuestRamPlace,
  type PcBoot,
  type PcFirmware,
  type PcReply,
  type PcRequest,
  type PcWorkerData,
} from './pc-config.js';

export interface PcMachineOptions {
  ramBytes: number;
  firmware: PcFirmware;
  /** null on a destination */
  boot: PcBoot | null;
  /** --mem-prealloc: the emulator's memory is allocated at start, as the RAM block is */
  prealloc?: boolean;
  cpu: CpuRegistry;
  /** guest output on the first serial port (ttyS0) */
  onSerialOutput(data: Uint8Array): void;
  /** the emulator failed for good (its thread died, or v86 threw) */
  onFatal(message: string): void;
}

type Pending = {
  resolve(r: { result?: unknown; blob?: ArrayBuffer }): void;
  reject(e: Error): void;
};
type Waiter = { resolve(s: DeviceState): void; reject(e: Error): void };

export class PcMachine implements GuestMachine {
  readonly type = 'pc';
  readonly dirtyTracking = 'content-sync';
  readonly vcpu = new VcpuControl();
  /** the copy of guest RAM a source sends from (dirty-sync-worker.ts) */
  private readonly mirror: RamBlockDesc[];
  /** guest RAM itself, once the vCPU thread has built its emulator */
  private guestRam: RamBlockDesc | null = null;
  /** a destination until its first migration in completes: pages land in guest RAM */
  private receivesRam: boolean;
  private readonly worker: Worker;
  /** dirty_sync and its helper (dirty-sync-worker.ts, dirty-sync-helper.ts) */
  private readonly dirtySync: Worker[];
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly description: MachineDescription;
  private dead: string | null = null;
  /** the vCPU thread has built its emulator */
  readonly ready: Promise<void>;
  /** the device state the vCPU thread saved as it stopped for the latest switchover */
  private switchover: DeviceState | null = null;
  /** where guest RAM is now, as the vCPU thread last said */
  private place: GuestRamPlace | null = null;
  private switchoverWaiter: Waiter | null = null;

  constructor(private readonly opts: PcMachineOptions) {
    // One block (a PC has 2 GiB at most), fresh memory: known zero until dirty_sync writes there.
    const [mirror] = allocateBlocks(opts.ramBytes);
    const mirrorZero = createKnownZeroMap(mirror.size);
    this.mirror = [{ ...mirror, knownZero: mirrorZero }];
    this.receivesRam = opts.boot === null;
    // --mem-prealloc: what this side will write into (guest RAM itself: the vCPU thread's).
    if (opts.prealloc && !this.receivesRam) preallocate(this.mirror);
    const build = v86Build();
    this.description = {
      type: 'pc',
      ramBytes: opts.ramBytes,
      emulator: describeV86Build(build),
      vgaMemoryBytes: VGA_MEMORY_BYTES,
      bios: fileDigest(opts.firmware.bios),
      vgaBios: opts.firmware.vgaBios ? fileDigest(opts.firmware.vgaBios) : null,
    };
    const data: PcWorkerData & { emulatorName: string } = {
      ramBytes: opts.ramBytes,
      wasmPath: build.wasmPath,
      firmware: opts.firmware,
      boot: opts.boot,
      prealloc: opts.prealloc === true,
      control: this.vcpu.buffer,
      cpuSlots: opts.cpu.slots,
      cpuSlot: opts.cpu.slot('vcpu_0'),
      emulatorName: describeV86Build(build),
    };
    this.worker = new Worker(new URL('./pc-vcpu-worker.js', import.meta.url), {
      workerData: data,
      name: 'vcpu_0',
    });
    // The dirty sync's two threads share the mirror, its zero chunks and the split words.
    const split = new SyncSplit();
    const syncData = (name: string): DirtySyncWorkerData => ({
      mirror: this.mirror[0],
      mirrorZero,
      split: split.buffer,
      control: this.vcpu.buffer,
      cpuSlots: opts.cpu.slots,
      cpuSlot: opts.cpu.slot(name),
    });
    this.dirtySync = [
      new Worker(new URL('./dirty-sync-worker.js', import.meta.url), {
        workerData: syncData('dirty_sync'),
        name: 'dirty_sync',
      }),
      new Worker(new URL('./dirty-sync-helper.js', import.meta.url), {
        workerData: syncData('dirty_sync_1'),
        name: 'dirty_sync_1',
      }),
    ];
    for (const w of this.dirtySync) {
      w.on('error', (e) => this.die(`the PC's dirty sync thread failed: ${e.message}`));
    }
    let started: () => void = () => {};
    let failedToStart: (e: Error) => void = () => {};
    this.ready = new Promise<void>((resolve, reject) => {
      started = resolve;
      failedToStart = reject;
    });
    this.ready.catch(() => {});
    this.worker.on('message', (m: PcReply) => {
      switch (m.type) {
        case 'ready':
          this.placeGuestRam(m.guest);
          return started();
        case 'serial-out':
          return opts.onSerialOutput(m.data);
        case 'switchover-state': {
          const state = { json: m.json, blob: new Uint8Array(m.blob) };
          if (this.switchoverWaiter) this.switchoverWaiter.resolve(state);
          else this.switchover = state;
          this.switchoverWaiter = null;
          return;
        }
        case 'done':
          return this.settle(m.id, (p) => p.resolve(m));
        case 'failed':
          return this.settle(m.id, (p) => p.reject(new Error(m.message)));
        case 'fatal':
          failedToStart(new Error(m.message));
          return this.die(m.message);
      }
    });
    this.worker.on('error', (e) => {
      failedToStart(e);
      this.die(`the PC emulator crashed: ${e.message}`);
    });
    this.worker.on('exit', (code) => {
      if (!this.dead && Atomics.load(this.vcpu.words, 0) !== REQ_QUIT) {
        this.die(`the PC emulator's thread exited (code ${code})`);
      }
    });
  }

  /** The RAM the engine migrates: guest RAM on a destination, else the mirror. */
  get blocks(): RamBlockDesc[] {
    return this.receivesRam && this.guestRam ? [this.guestRam] : this.mirror;
  }

  /** The vCPU thread built an emulator: its RAM, as a block, for the other threads. */
  private placeGuestRam(place: GuestRamPlace): void {
    const size = this.opts.ramBytes;
    this.guestRam = {
      id: 0,
      name: this.mirror[0].name,
      size,
      ram: place.ram,
      base: place.base,
      memory: place.memory,
      dirty: new SharedArrayBuffer(dirtyWords(pagesOf(size)) * 4),
    };
    this.place = place;
    for (const w of this.dirtySync) w.postMessage(place);
  }

  get ramBytes(): number {
    return this.opts.ramBytes;
  }

  get running(): boolean {
    return this.vcpu.runRequested;
  }

  start(): void {
    this.switchover = null;
    this.vcpu.request(REQ_RUN);
  }

  async stop(): Promise<void> {
    this.vcpu.request(REQ_STOP);
    if (!this.dead) await this.vcpu.waitStoppedAsync();
  }

  stopSync(): void {
    this.vcpu.request(REQ_STOP);
    if (!this.dead) this.vcpu.waitStopped(() => {}, 1000);
  }

  describe(): MachineDescription {
    return { ...this.description };
  }

  incompatibility(source: unknown): string {
    return describeMismatch(this.description, source);
  }

  /** Bytes for the guest's first serial port. */
  serialInput(data: Uint8Array): void {
    this.send({ type: 'serial-in', data });
  }

  async deviceState(): Promise<DeviceState> {
    if (this.vcpu.requested === REQ_SWITCHOVER) {
      // Saved by the vCPU thread as it stopped; it may still be on its way.
      const saved = this.switchover;
      this.switchover = null;
      if (saved) return saved;
      if (this.dead) throw new Error(this.dead);
      return new Promise((resolve, reject) => {
        this.switchoverWaiter = { resolve, reject };
      });
    }
    const r = await this.call({ type: 'save-state', id: 0 });
    return { json: r.result as Record<string, unknown>, blob: new Uint8Array(r.blob!) };
  }

  beginIncoming(): void {
    this.send({ type: 'incoming' });
  }

  async loadDeviceState(state: DeviceState): Promise<void> {
    const blob = state.blob
      ? (state.blob.buffer.slice(
          state.blob.byteOffset,
          state.blob.byteOffset + state.blob.length,
        ) as ArrayBuffer)
      : null;
    await this.call({ type: 'load-state', id: 0, json: state.json, blob }, blob ? [blob] : []);
  }

  /** Every page is in guest RAM already; from now on a migration out sends from the mirror. */
  finishIncoming(): Promise<undefined> {
    this.receivesRam = false;
    // The receive threads wrote guest RAM past the write log: told the place again, dirty_sync
    // compares all of it at its next sync (write-log.ts).
    if (this.place) for (const w of this.dirtySync) w.postMessage(this.place);
    return Promise.resolve(undefined);
  }

  async discardRam(): Promise<void> {
    const r = await this.call({ type: 'discard', id: 0 });
    this.placeGuestRam(r.result as GuestRamPlace);
  }

  digest(): Promise<string> {
    if (!this.guestRam) return Promise.reject(new Error('the PC emulator has not started'));
    return ramDigestInWorker([this.guestRam]);
  }

  async quit(): Promise<void> {
    this.vcpu.request(REQ_QUIT);
    await Promise.all([this.worker, ...this.dirtySync].map((w) => w.terminate()));
  }

  private send(m: PcRequest, transfer: ArrayBuffer[] = []): void {
    if (!this.dead) this.worker.postMessage(m, transfer);
  }

  private call(
    m: PcRequest & { id: number },
    transfer: ArrayBuffer[] = [],
  ): Promise<{ result?: unknown; blob?: ArrayBuffer }> {
    if (this.dead) return Promise.reject(new Error(this.dead));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ ...m, id }, transfer);
    });
  }

  private settle(id: number, f: (p: Pending) => void): void {
    const p = this.pending.get(id);
    if (!p) return;
    this.pending.delete(id);
    f(p);
  }

  private die(message: string): void {
    if (this.dead) return;
    this.dead = message;
    for (const p of this.pending.values()) p.reject(new Error(message));
    this.pending.clear();
    this.switchoverWaiter?.reject(new Error(message));
    this.switchoverWaiter = null;
    // Nothing runs any more: whoever waits for the vCPU to stop must not wait forever.
    this.vcpu.acknowledge(0);
    for (const w of this.dirtySync) void w.terminate();
    this.opts.onFatal(message);
  }
}

/** The first 16 hex digits of a file's SHA-256: firmware both sides must share. */
function fileDigest(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16);
}
