// The synthetic machine: RAM blocks plus a vCPU worker running a workload that writes pages and
// sets their dirty bits itself (src/ram/vcpu-worker.ts). Its device state is the workload's
// position, so that the destination's vCPU goes on where the source's stopped.

import { Worker } from 'node:worker_threads';
import { allocateBlocks, type RamBlockDesc } from '../ram/layout.js';
import { REQ_QUIT, REQ_RUN, REQ_STOP, VCPU, VcpuControl } from '../ram/vcpu-control.js';
import type { VcpuState, WorkloadSpec } from '../ram/vcpu-control.js';
import type { CpuRegistry } from '../util/cpu-slots.js';
import { ramDigestInWorker } from '../ram/digest.js';
import { PAGE_SIZE } from '../migration/protocol.js';
import {
  describeMismatch,
  type DeviceState,
  type GuestMachine,
  type MachineDescription,
} from './guest-machine.js';

export interface SyntheticMachineOptions {
  ramBytes: number;
  blockSize?: number;
  workload: WorkloadSpec;
  cpu: CpuRegistry;
}

export class SyntheticMachine implements GuestMachine {
  readonly type = 'synthetic';
  readonly dirtyTracking = 'vcpu-writes';
  blocks: RamBlockDesc[];
  readonly vcpu = new VcpuControl();
  private worker: Worker | null = null;
  workload: WorkloadSpec;

  constructor(private readonly opts: SyntheticMachineOptions) {
    this.blocks = allocateBlocks(opts.ramBytes, opts.blockSize);
    this.workload = opts.workload;
  }

  get ramBytes(): number {
    return this.opts.ramBytes;
  }

  get running(): boolean {
    return this.vcpu.runRequested;
  }

  start(): void {
    if (!this.worker) {
      this.worker = new Worker(new URL('../ram/vcpu-worker.js', import.meta.url), {
        workerData: {
          blocks: this.blocks,
          control: this.vcpu.buffer,
          workload: this.workload,
          cpuSlots: this.opts.cpu.slots,
          cpuSlot: this.opts.cpu.slot('vcpu_0'),
        },
        name: 'vcpu_0',
      });
      this.worker.unref();
    }
    this.vcpu.request(REQ_RUN);
  }

  async stop(): Promise<void> {
    this.vcpu.request(REQ_STOP);
    if (this.worker) await this.vcpu.waitStoppedAsync();
  }

  stopSync(): void {
    this.vcpu.request(REQ_STOP);
    if (this.worker) this.vcpu.waitStopped(() => {}, 1000);
  }

  describe(): MachineDescription {
    return { type: 'synthetic', ramBytes: this.ramBytes };
  }

  incompatibility(source: unknown): string {
    return describeMismatch(this.describe(), source);
  }

  deviceState(): Promise<DeviceState> {
    const w = this.vcpu.words;
    const vcpu: VcpuState = {
      workload: this.workload,
      position: Atomics.load(w, VCPU.position),
      loops: Atomics.load(w, VCPU.loops),
    };
    return Promise.resolve({ json: { vcpu } });
  }

  /** Its RAM blocks are the guest's RAM: nothing to follow, nothing to take in. */
  beginIncoming(): void {}

  finishIncoming(): Promise<undefined> {
    return Promise.resolve(undefined);
  }

  loadDeviceState(state: DeviceState): Promise<void> {
    const s = state.json.vcpu as VcpuState | undefined;
    if (!s || !validVcpuState(s, this.ramBytes)) {
      return Promise.reject(new Error('invalid vCPU state'));
    }
    if (this.worker) return Promise.reject(new Error('cannot load vCPU state into a running vCPU'));
    this.workload = s.workload;
    Atomics.store(this.vcpu.words, VCPU.position, s.position);
    Atomics.store(this.vcpu.words, VCPU.loops, s.loops);
    return Promise.resolve();
  }

  discardRam(): Promise<void> {
    if (this.worker)
      return Promise.reject(new Error('cannot discard the RAM of a guest that has run'));
    this.blocks = allocateBlocks(this.opts.ramBytes, this.opts.blockSize);
    return Promise.resolve();
  }

  /** On a thread of its own: the main thread keeps up heartbeats and QMP meanwhile. */
  digest(): Promise<string> {
    return ramDigestInWorker(this.blocks);
  }

  async quit(): Promise<void> {
    this.vcpu.request(REQ_QUIT);
    if (this.worker) await this.worker.terminate();
    this.worker = null;
  }
}

function validVcpuState(s: VcpuState, ramBytes: number): boolean {
  const w = s.workload as VcpuState['workload'] | undefined;
  const pages = Math.floor(ramBytes / PAGE_SIZE);
  return (
    typeof w === 'object' &&
    w !== null &&
    (w.kind === 'none' || w.kind === 'stress') &&
    typeof w.mbps === 'number' &&
    w.mbps >= 0 &&
    Number.isInteger(w.startPage) &&
    Number.isInteger(w.pages) &&
    w.startPage >= 0 &&
    w.pages >= 1 &&
    w.startPage + w.pages <= pages &&
    Number.isInteger(s.position) &&
    s.position >= 0 &&
    s.position < w.pages &&
    Number.isInteger(s.loops)
  );
}
