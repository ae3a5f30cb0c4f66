// An engine of the emulated device: the loop a `dsa0/engine0.N` worker thread runs.
//
// It takes descriptors from the work queues of its group (weighted by WQ priority) and hands
// each to its Executor (executor.ts), which runs it over registered memory and completes it.
// When every WQ of its group is empty it sleeps in Atomics.wait on the group's doorbell: no
// polling. It also answers the device's thread-CPU report (registers.ts) and acknowledges a
// halt once it has stopped touching memory.

import { AddressSpace } from './address-space.js';
import { DESCRIPTOR_WORDS } from '../descriptor.js';
import type { EmuDeviceHandle, EmuWqHandle } from './handles.js';
import { Executor } from './executor.js';
import {
  C_DOORBELL,
  C_ENGINE_DELAY_US,
  C_ENGINES_RUNNING,
  C_ENGINE_ACK,
  C_HALT_GEN,
  C_HALT_ACKS,
  C_HALT_IRQ_DONE,
  C_PAUSED,
  C_SHUTDOWN,
  C_SLEEPERS,
  C_STATE,
  DevState,
  miscImsHandles,
  openRegisters,
  type Registers,
} from './registers.js';
import {
  HeadWatch,
  W_COMPLETED,
  W_DRAIN_WAITERS,
  dequeue,
  giveUpStuckHead,
  openRing,
  ringReady,
  type WqRing,
} from './wq.js';
import { threadCpuMs } from '../../../util/thread-cpu.js';

export interface EngineWorkerData {
  device: EmuDeviceHandle;
  /** Index in device.engines. */
  engine: number;
}

export class Engine {
  private readonly regs: Registers;
  private readonly w: Int32Array;
  private readonly as: AddressSpace;
  private readonly exec: Executor;
  private readonly wqs: EmuWqHandle[];
  private readonly rings: WqRing[];
  private readonly wrr: number[];
  private readonly heads: HeadWatch[];
  private readonly group: number;
  private readonly index: number;
  /** The top-level descriptor being run (copied out of the WQ). */
  private readonly desc = new Int32Array(DESCRIPTOR_WORDS);
  private cpuReqSeen = 0;
  private lastCpuPublish = 0;
  /** The halt generation this engine acknowledged. */
  private haltAcked = 0;

  constructor(device: EmuDeviceHandle, engineIndex: number) {
    this.regs = openRegisters(device.registers);
    this.w = this.regs.words;
    this.as = AddressSpace.attach(device.addressSpace);
    this.as.enableTranslation();
    const eng = device.engines[engineIndex];
    this.index = eng.index;
    this.group = eng.group;
    this.exec = new Executor(this.regs, this.as, eng.index);
    this.wqs = device.wqs.filter((q) => q.group === eng.group && q.enabled);
    this.rings = this.wqs.map((q) => openRing(q.ring, device.registers));
    this.wrr = this.wqs.map(() => 0);
    this.heads = this.wqs.map(() => new HeadWatch());
    this.cpuReqSeen = this.regs.cpu.requests();
  }

  /** Run until the device shuts down. */
  run(): void {
    const w = this.w;
    const doorbell = C_DOORBELL + this.group;
    const sleepers = C_SLEEPERS + this.group;
    Atomics.add(w, C_ENGINES_RUNNING, 1);
    this.publishCpu();
    for (;;) {
      if (Atomics.load(w, C_SHUTDOWN)) break;
      this.serveCpuRequest();
      const state = Atomics.load(w, C_STATE);
      if (state !== DevState.ENABLED) {
        this.idleWhileNotEnabled(state);
        continue;
      }
      if (Atomics.load(w, C_PAUSED)) {
        const seen = Atomics.load(w, doorbell);
        if (Atomics.load(w, C_PAUSED)) Atomics.wait(w, doorbell, seen);
        continue;
      }
      this.as.sync();
      const q = this.pick();
      if (q >= 0) {
        const n = dequeue(this.rings[q], this.desc, 0);
        if (n >= 0) this.runTopLevel(q, n);
        continue;
      }
      // Idle: announce the sleep, re-check, then wait for a doorbell (or to give up an entry
      // whose submitter never published it).
      const seen = Atomics.load(w, doorbell);
      Atomics.add(w, sleepers, 1);
      if (this.pick() < 0 && !Atomics.load(w, C_SHUTDOWN) && !this.cpuRequested()) {
        if (performance.now() - this.lastCpuPublish > 200) this.publishCpu();
        const stuck = this.giveUpStuckHeads();
        if (stuck > 0) Atomics.wait(w, doorbell, seen, stuck);
      }
      Atomics.sub(w, sleepers, 1);
    }
    this.publishCpu();
    Atomics.sub(w, C_ENGINES_RUNNING, 1);
    this.as.close();
  }

  private cpuRequested(): boolean {
    return this.regs.cpu.requests() !== this.cpuReqSeen;
  }

  private serveCpuRequest(): void {
    this.cpuReqSeen = this.regs.cpu.answer(this.index, this.cpuReqSeen, threadCpuMs);
  }

  private publishCpu(): void {
    this.regs.cpu.publish(this.index, threadCpuMs());
    this.lastCpuPublish = performance.now();
  }

  private idleWhileNotEnabled(state: number): void {
    const w = this.w;
    const gen = Atomics.load(w, C_HALT_GEN);
    if (state === DevState.HALTED && this.haltAcked !== gen) {
      // Stopped: nothing of this engine touches memory until the device is enabled again.
      this.haltAcked = gen;
      this.raiseHaltInterrupts();
      Atomics.store(w, C_ENGINE_ACK + this.index, gen);
      Atomics.add(w, C_HALT_ACKS, 1);
      Atomics.notify(w, C_HALT_ACKS);
    }
    // Woken by a state change, a shutdown or a CPU request (all ring the doorbells).
    const seen = Atomics.load(w, C_DOORBELL + this.group);
    if (
      Atomics.load(w, C_STATE) === state &&
      !Atomics.load(w, C_SHUTDOWN) &&
      !this.cpuRequested()
    ) {
      Atomics.wait(w, C_DOORBELL + this.group, seen);
    }
  }

  private raiseHaltInterrupts(): void {
    if (Atomics.compareExchange(this.w, C_HALT_IRQ_DONE, 0, 1) !== 0) return;
    this.as.sync(true);
    for (const h of miscImsHandles(this.w)) this.exec.raise(h);
  }

  /** giveUpStuckHead on every WQ of the group: the ms until one may be given up. */
  private giveUpStuckHeads(): number {
    const now = performance.now();
    let ms = Infinity;
    for (let i = 0; i < this.rings.length; i++)
      ms = Math.min(ms, giveUpStuckHead(this.rings[i], this.heads[i], now));
    return ms;
  }

  /** Smooth weighted round-robin over the ready WQs of the group, by priority. */
  private pick(): number {
    let best = -1;
    let total = 0;
    for (let i = 0; i < this.rings.length; i++) {
      if (!ringReady(this.rings[i])) continue;
      const p = this.wqs[i].priority;
      this.wrr[i] += p;
      total += p;
      if (best < 0 || this.wrr[i] > this.wrr[best]) best = i;
    }
    if (best >= 0) this.wrr[best] -= total;
    return best;
  }

  private runTopLevel(q: number, dispatchNo: number): void {
    const ring = this.rings[q];
    const delay = Atomics.load(this.w, C_ENGINE_DELAY_US);
    if (delay > 0) Atomics.wait(this.w, C_STATE, DevState.ENABLED, delay / 1000);
    if (Atomics.load(this.w, C_STATE) === DevState.ENABLED) {
      this.exec.runTopLevel(this.desc, this.wqs[q], ring, dispatchNo);
    }
    Atomics.add(ring.words, W_COMPLETED, 1);
    if (Atomics.load(ring.words, W_DRAIN_WAITERS) > 0) Atomics.notify(ring.words, W_COMPLETED);
  }
}
