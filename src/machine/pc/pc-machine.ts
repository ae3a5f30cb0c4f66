// The PC machine: an x86 PC emulated by v86 in the vCPU thread (pc-vcpu-worker.ts), booting a
// Linux kernel and initramfs. The engine migrates a mirror of its RAM (one RAM block) that the
// vCPU thread brings up to date at each dirty sync; its device state is v86's saved state
// without RAM. A destination builds the same PC without a kernel and takes RAM and state in
// at switchover.

import { Worker } from 'node:worker_threads';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { allocateBlocks, type RamBlockDesc } from '../../ram/layout.js';
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
import {
  VGA_MEMORY_BYTES,
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
  blocks: RamBlockDesc[];
  readonly vcpu = new VcpuControl();
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly description: MachineDescription;
  private dead: string | null = null;
  /** the vCPU thread has built its emulator */
  readonly ready: Promise<void>;
  /** the device state the vCPU thread saved as it stopped for the latest switchover */
  private switchover: DeviceState | null = null;
  private switchoverWaiter: Waiter | null = null;

  constructor(private readonly opts: PcMachineOptions) {
    this.blocks = allocateBlocks(opts.ramBytes);
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
      block: this.blocks[0],
      control: this.vcpu.buffer,
      cpuSlots: opts.cpu.slots,
      cpuSlot: opts.cpu.slot('vcpu_0'),
      emulatorName: describeV86Build(build),
    };
    this.worker = new Worker(new URL('./pc-vcpu-worker.js', import.meta.url), {
      workerData: data,
      name: 'vcpu_0',
    });
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

  beginIncoming(received: SharedArrayBuffer[]): void {
    this.send({ type: 'incoming', received: received[0] });
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

  async finishIncoming(): Promise<Record<string, number>> {
    return (await this.call({ type: 'finish-incoming', id: 0 })).result as Record<string, number>;
  }

  async discardRam(): Promise<void> {
    this.blocks = allocateBlocks(this.opts.ramBytes);
    await this.call({ type: 'discard', id: 0, block: this.blocks[0] });
  }

  async digest(): Promise<string> {
    return String((await this.call({ type: 'digest', id: 0 })).result);
  }

  async quit(): Promise<void> {
    this.vcpu.request(REQ_QUIT);
    await this.worker.terminate();
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
    this.opts.onFatal(message);
  }
}

/** The first 16 hex digits of a file's SHA-256: firmware both sides must share. */
function fileDigest(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16);
}
