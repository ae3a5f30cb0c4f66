// Helpers for the hardware-path tests: a fake idxd sysfs tree whose device node is a FIFO (or
// whatever a test needs), and the FIFO test device thread (hw-fifo-device.ts).

import { setTimeout as sleep } from 'node:timers/promises';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  constants,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  symlinkSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { addonStatus } from '../../src/accel/hw/addon.js';
import type { SysfsOptions } from '../../src/accel/sysfs.js';
import {
  D_FAULT_COUNT,
  D_FAULT_WORD,
  D_MAX_FAULTS,
  D_HALT_AFTER,
  D_HALT_MODE,
  D_RUNNING,
  D_STOP,
  D_WORDS,
  STOP_OPCODE,
  type FifoDeviceData,
} from './hw-fifo-device.js';

/** Why hardware-path tests cannot run here (undefined when they can). */
export function addonSkip(): string | undefined {
  const s = addonStatus();
  return s.available ? undefined : `native addon unavailable: ${s.reason}`;
}

export interface FakeIdxdOptions {
  wq?: Record<string, string | number>;
  device?: Record<string, string | number>;
  /** The node: a FIFO (default), none, a regular file, or a symlink to a path. */
  node?: 'fifo' | 'none' | 'file' | { symlink: string };
}

export interface FakeIdxd {
  dir: string;
  sysfs: SysfsOptions;
  node: string;
  /** The WQ's sysfs state file. */
  wqState: string;
  cleanup(): void;
}

/** /sys/bus/dsa/devices with dsa0 and a usable shared wq0.0, and /dev/dsa/wq0.0. */
export function fakeIdxd(o: FakeIdxdOptions = {}): FakeIdxd {
  const dir = mkdtempSync(join(tmpdir(), 'livemig-idxd-'));
  const devices = join(dir, 'devices');
  const dev = join(dir, 'dev');
  const attrs = (d: string, a: Record<string, string | number>) => {
    mkdirSync(d, { recursive: true });
    for (const [k, v] of Object.entries(a)) writeFileSync(join(d, k), `${v}\n`);
  };
  attrs(join(devices, 'dsa0'), {
    state: 'enabled',
    max_batch_size: 1024,
    max_transfer_size: 2147483648,
    pasid_enabled: 1,
    ...o.device,
  });
  attrs(join(devices, 'wq0.0'), {
    state: 'enabled',
    mode: 'shared',
    type: 'user',
    driver_name: 'user',
    name: 'livemig',
    size: 128,
    threshold: 128,
    priority: 10,
    group_id: 0,
    max_batch_size: 1024,
    max_transfer_size: 2097152,
    block_on_fault: 0,
    ...o.wq,
  });
  mkdirSync(dev, { recursive: true });
  const node = join(dev, 'wq0.0');
  const kind = o.node ?? 'fifo';
  if (kind === 'fifo') execFileSync('mkfifo', [node]);
  else if (kind === 'file') writeFileSync(node, '');
  else if (typeof kind === 'object') symlinkSync(kind.symlink, node);
  return {
    dir,
    sysfs: { sysfsRoot: devices, devRoot: dev },
    node,
    wqState: join(devices, 'wq0.0', 'state'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** The test device thread behind a FIFO node. */
export class FifoDevice {
  readonly ctrl: Int32Array;
  private readonly worker: Worker;
  private faults = 0;

  private constructor(
    readonly node: string,
    sab: SharedArrayBuffer,
    stateFile?: string,
  ) {
    this.ctrl = new Int32Array(sab);
    const data: FifoDeviceData = { node, ctrl: sab, stateFile };
    this.worker = new Worker(new URL('./hw-fifo-device.js', import.meta.url), {
      workerData: data,
      name: 'fifo-dsa',
    });
    this.worker.on('error', (e) => console.error(`fifo device: ${e.message}`));
  }

  /** The device behind `node`; `stateFile`: the WQ's sysfs state, written on a halt. */
  static async start(node: string, stateFile?: string): Promise<FifoDevice> {
    const d = new FifoDevice(node, new SharedArrayBuffer(D_WORDS * 4), stateFile);
    const end = Date.now() + 10_000;
    while (Atomics.load(d.ctrl, D_RUNNING) !== 1) {
      if (Date.now() > end) throw new Error('the FIFO device did not start');
      await sleep(2);
    }
    return d;
  }

  get(word: number): number {
    return Atomics.load(this.ctrl, word);
  }

  set(word: number, v: number): void {
    Atomics.store(this.ctrl, word, v);
  }

  /** Make the 4 KiB page at `address` (aligned) fault until cleared. */
  injectFault(address: number): void {
    if (this.faults >= D_MAX_FAULTS) throw new Error('too many faults');
    const i = this.faults++;
    Atomics.store(this.ctrl, D_FAULT_WORD + 2 * i, (address % 4294967296) | 0);
    Atomics.store(this.ctrl, D_FAULT_WORD + 2 * i + 1, Math.floor(address / 4294967296));
    Atomics.store(this.ctrl, D_FAULT_COUNT, this.faults);
  }

  clearFaults(): void {
    this.faults = 0;
    Atomics.store(this.ctrl, D_FAULT_COUNT, 0);
  }

  /** Halt (HALT_SWERR or HALT_SILENT) once `after` descriptors in all were received. */
  haltAfter(mode: number, after: number): void {
    Atomics.store(this.ctrl, D_HALT_AFTER, after);
    Atomics.store(this.ctrl, D_HALT_MODE, mode);
  }

  /** Write the stop descriptor into the FIFO and wait for the thread to end. */
  async stop(): Promise<void> {
    Atomics.store(this.ctrl, D_STOP, 1);
    Atomics.notify(this.ctrl, D_STOP);
    const fd = openSync(this.node, constants.O_RDWR | constants.O_NONBLOCK);
    const stop = Buffer.alloc(64);
    stop[7] = STOP_OPCODE;
    try {
      writeSync(fd, stop);
    } catch (e) {
      // A halted device left the FIFO full; it ends on D_STOP.
      if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
    } finally {
      closeSync(fd);
    }
    await new Promise<void>((resolve) => this.worker.once('exit', () => resolve()));
  }
}

/** Collect what this process writes to stderr until restore() (write callbacks still run). */
export function captureStderr(): { text(): string; restore(): void } {
  const original = process.stderr.write.bind(process.stderr);
  const said: string[] = [];
  process.stderr.write = ((chunk: unknown, enc?: unknown, cb?: unknown) => {
    said.push(String(chunk));
    const done = typeof enc === 'function' ? enc : cb;
    if (typeof done === 'function') queueMicrotask(() => (done as () => void)());
    return true;
  }) as typeof process.stderr.write;
  return { text: () => said.join(''), restore: () => (process.stderr.write = original) };
}
