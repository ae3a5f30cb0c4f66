// The guest hosted by a `livemig run` process: its RAM blocks and its vCPU worker.

import { Worker } from 'node:worker_threads';
import { createHash } from 'node:crypto';
import { allocateBlocks, segmentViews, type RamBlockDesc } from './layout.js';
import {
  REQ_QUIT,
  REQ_RUN,
  REQ_STOP,
  VCPU,
  type VcpuState,
  type WorkloadSpec,
} from './vcpu-control.js';
import type { CpuRegistry } from '../util/cpu-slots.js';

export interface GuestOptions {
  ramBytes: number;
  blockSize?: number;
  workload: WorkloadSpec;
  cpu: CpuRegistry;
}

const DIGEST_CHUNK = 1024 * 1024;
const ZERO_CHUNK = Buffer.alloc(DIGEST_CHUNK);

export class Guest {
  blocks: RamBlockDesc[];
  readonly control = new SharedArrayBuffer(4 * VCPU.size);
  private readonly ctl = new Int32Array(this.control);
  private vcpu: Worker | null = null;
  workload: WorkloadSpec;

  constructor(private readonly opts: GuestOptions) {
    this.blocks = allocateBlocks(opts.ramBytes, opts.blockSize);
    this.workload = opts.workload;
  }

  get ramBytes(): number {
    return this.opts.ramBytes;
  }

  get running(): boolean {
    return Atomics.load(this.ctl, VCPU.request) === REQ_RUN;
  }

  /** Start (or resume) the vCPU. */
  start(): void {
    if (!this.vcpu) {
      this.vcpu = new Worker(new URL('./vcpu-worker.js', import.meta.url), {
        workerData: {
          blocks: this.blocks,
          control: this.control,
          workload: this.workload,
          cpuSlots: this.opts.cpu.slots,
          cpuSlot: this.opts.cpu.slot('vcpu_0'),
        },
        name: 'vcpu_0',
      });
      this.vcpu.unref();
    }
    Atomics.store(this.ctl, VCPU.request, REQ_RUN);
    Atomics.notify(this.ctl, VCPU.request);
  }

  /** Stop the vCPU and wait until it has stopped writing (bounded by the worker's batch). */
  async stop(): Promise<void> {
    Atomics.store(this.ctl, VCPU.request, REQ_STOP);
    Atomics.notify(this.ctl, VCPU.request);
    if (!this.vcpu) return;
    while (Atomics.load(this.ctl, VCPU.ack) !== 0) {
      const r = Atomics.waitAsync(this.ctl, VCPU.ack, 1, 1000);
      await r.value;
    }
  }

  /** Synchronous stop for worker-free callers and shutdown paths. */
  stopSync(): void {
    Atomics.store(this.ctl, VCPU.request, REQ_STOP);
    Atomics.notify(this.ctl, VCPU.request);
    if (!this.vcpu) return;
    while (Atomics.load(this.ctl, VCPU.ack) !== 0) Atomics.wait(this.ctl, VCPU.ack, 1, 1000);
  }

  deviceState(): VcpuState {
    return {
      workload: this.workload,
      position: Atomics.load(this.ctl, VCPU.position),
      loops: Atomics.load(this.ctl, VCPU.loops),
    };
  }

  /** Load vCPU state received at switchover (destination); the vCPU must not have started. */
  loadDeviceState(s: VcpuState): void {
    if (this.vcpu) throw new Error('cannot load vCPU state into a vCPU that has run');
    this.workload = s.workload;
    Atomics.store(this.ctl, VCPU.position, s.position);
    Atomics.store(this.ctl, VCPU.loops, s.loops);
  }

  /** Replace RAM with fresh zero blocks: how a destination discards a failed migration. */
  discardRam(): void {
    if (this.vcpu) throw new Error('cannot discard the RAM of a guest that has run');
    this.blocks = allocateBlocks(this.opts.ramBytes, this.opts.blockSize);
  }

  /**
   * A digest of all RAM, to verify a migration. All-zero 1 MiB chunks are skipped (named by
   * index only), so untouched destination memory is read cheaply and never written.
   */
  digest(): string {
    const h = createHash('sha256');
    const idx = Buffer.alloc(8);
    for (const b of this.blocks) {
      let base = 0;
      for (const seg of segmentViews(b)) {
        for (let off = 0; off < seg.length; off += DIGEST_CHUNK) {
          const end = Math.min(seg.length, off + DIGEST_CHUNK);
          if (ZERO_CHUNK.compare(seg, off, end, 0, end - off) === 0) continue;
          idx.writeUInt32LE(b.id, 0);
          idx.writeUInt32LE((base + off) / 4096, 4);
          h.update(idx);
          h.update(seg.subarray(off, end));
        }
        base += seg.length;
      }
    }
    return h.digest('hex');
  }

  async quit(): Promise<void> {
    Atomics.store(this.ctl, VCPU.request, REQ_QUIT);
    Atomics.notify(this.ctl, VCPU.request);
    if (this.vcpu) await this.vcpu.terminate();
    this.vcpu = null;
  }
}
