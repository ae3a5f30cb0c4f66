// vcpu_0 of a PC machine: the v86 emulator. Guest RAM lives in v86's own WebAssembly memory,
// made shared (shared-wasm-memory.ts) so that other threads can read and write it: the dirty_sync
// thread compares it with the mirror a source sends from, a destination's receive threads write
// arriving pages into it. This thread runs the guest in v86's slices of about 1 ms and, between
// slices, answers the VCPU words (src/ram/vcpu-control.ts): run and stop, and auto-converge's
// throttle. The main thread asks it, by message, to save or restore the device state and to pass
// serial bytes.

import { parentPort, workerData } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { V86 } from 'v86';
import { REQ_QUIT, REQ_RUN, REQ_SWITCHOVER, VCPU, VcpuControl } from '../../ram/vcpu-control.js';
import { publishThreadCpu, resetThreadCpu } from '../../util/cpu-slots.js';
import { nameThread } from '../../util/thread-priority.js';
import { checkInternals, guestRam, type Emulator, type V86Core } from './v86-internals.js';
import {
  VGA_MEMORY_BYTES,
  type GuestRamPlace,
  type PcReply,
  type PcRequest,
  type PcWorkerData,
} from './pc-config.js';
import { zeroRam } from './mirror-sync.js';
import { preallocatePages } from '../../ram/fill.js';
import { rewriteInstantiatedModules, writeLogBase } from './module-rewrite.js';
import { markRange } from './write-log.js';
import { packZeroBlocks, unpackZeroBlocks } from './state-packing.js';
import {
  checkDeviceState,
  describeState,
  restoreDeviceState,
  saveDeviceState,
} from './device-state.js';

const d = workerData as PcWorkerData & { emulatorName: string };
const vcpu = new VcpuControl(d.control);
// Before v86 loads its module: guest RAM in shared memory, and every store marking its page.
rewriteInstantiatedModules((why) => {
  Atomics.store(vcpu.words, VCPU.writeLogLost, 1);
  process.emitWarning(`the PC's write log is lost (dirty syncs compare all of RAM): ${why}`);
});
const port = parentPort!;
const post = (m: PcReply, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);

/** How long a throttled vCPU sleeps at most before looking at its requests again. */
const THROTTLE_SLICE_MS = 5;

let emulator: Emulator;
let core: V86Core;
/** the emulator's RAM or state has been written by a migration (a failed one needs a new one) */
let restored = false;
let running = false;
let workStart = performance.now();
let cpuPublishedAt = 0;

// ---- serial: bytes out in batches of one slice, bytes in as they come ----------------------

const serialOut = new Uint8Array(4096);
let serialLen = 0;

function onSerialByte(byte: number): void {
  serialOut[serialLen++] = byte;
  if (serialLen === serialOut.length) flushSerial();
}

function flushSerial(): void {
  if (serialLen === 0) return;
  post({ type: 'serial-out', data: serialOut.slice(0, serialLen) });
  serialLen = 0;
}

// ---- the emulator ----------------------------------------------------------------------------

/** Where guest RAM is in the emulator's (shared) memory, for the other threads. */
function guestRamPlace(): GuestRamPlace {
  const memory = core.cpu.wasm_memory as WebAssembly.Memory;
  const ram = memory.buffer;
  if (!(ram instanceof SharedArrayBuffer)) {
    throw new Error("the emulator's memory is not shared (shared-wasm-memory.ts did not apply)");
  }
  return { ram, base: core.cpu.mem8.byteOffset, memory, log: writeLogBase() ?? -1 };
}

/** The device state as it travels: described, then packed without its zero blocks. */
function savePackedState(): { json: { pc: ReturnType<typeof describeState> }; blob: Uint8Array } {
  const state = saveDeviceState(core, d.ramBytes);
  return { json: { pc: describeState(state, d.emulatorName) }, blob: packZeroBlocks(state) };
}

/** v86's writes to guest RAM from JavaScript mark the write log as its own code's stores do. */
function markJavaScriptWrites(cpu: V86Core['cpu']): void {
  const log = writeLogBase();
  if (log === null) return;
  const writeBlob = cpu.write_blob.bind(cpu);
  cpu.write_blob = (data, address) => {
    writeBlob(data, address);
    const at = cpu.mem8.byteOffset + address;
    markRange(cpu.wasm_memory.buffer as SharedArrayBuffer, log, at, at + data.length);
  };
}

async function createEmulator(): Promise<number> {
  const file = (path: string): { buffer: ArrayBuffer } => {
    const b = readFileSync(path);
    return { buffer: b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer };
  };
  const boot = d.boot;
  const e = new V86({
    wasm_path: d.wasmPath,
    memory_size: d.ramBytes,
    vga_memory_size: VGA_MEMORY_BYTES,
    bios: file(d.firmware.bios),
    vga_bios: d.firmware.vgaBios ? file(d.firmware.vgaBios) : undefined,
    bzimage: boot ? file(boot.kernel) : undefined,
    initrd: boot?.initrd ? file(boot.initrd) : undefined,
    cmdline: boot?.append,
    autostart: false,
    disable_keyboard: true,
    disable_mouse: true,
    disable_speaker: true,
    acpi: false,
  }) as Emulator;
  await new Promise<void>((resolve) => e.add_listener('emulator-ready', () => resolve()));
  checkInternals(e);
  emulator = e;
  core = e.v86;
  markJavaScriptWrites(core.cpu);
  const slice = core.cpu.main_loop;
  core.cpu.main_loop = () => {
    const t = slice();
    afterSlice();
    return t;
  };
  e.add_listener('serial0-output-byte', onSerialByte);
  restored = false;
  // A destination's RAM must be zero where the migration writes nothing, as the source's is;
  // the BIOS just loaded into low memory is not.
  const zeroed = boot ? 0 : zeroRam(guestRam(core.cpu));
  if (d.prealloc) preallocatePages(guestRam(core.cpu));
  return zeroed;
}

async function replaceEmulator(): Promise<void> {
  running = false;
  await emulator.destroy().catch(() => {});
  await createEmulator();
}

/** After every slice of guest time: requests that came in while it ran. */
function afterSlice(): void {
  flushSerial();
  if (vcpu.requested !== REQ_RUN) {
    applyRequest();
    return;
  }
  const throttle = vcpu.throttle;
  if (throttle > 0) throttleSleep(throttle);
  else workStart = performance.now();
  const now = performance.now();
  if (now - cpuPublishedAt > 100) {
    cpuPublishedAt = now;
    publishThreadCpu(d.cpuSlots, d.cpuSlot);
  }
}

/** Stop the guest: after this no slice runs, so no RAM or device state changes. */
function halt(acknowledge = true): void {
  if (running) {
    core.stop();
    running = false;
  }
  flushSerial();
  publishThreadCpu(d.cpuSlots, d.cpuSlot);
  if (acknowledge) vcpu.acknowledge(0);
}

/** the device state has been saved for this switchover */
let savedForSwitchover = false;

function applyRequest(): void {
  const req = vcpu.requested;
  if (req === REQ_RUN) {
    savedForSwitchover = false;
    if (!running) {
      running = true;
      workStart = performance.now();
      core.run();
    }
    vcpu.acknowledge(1);
    return;
  }
  if (req !== REQ_SWITCHOVER || savedForSwitchover) {
    halt();
  } else {
    // Saved before the stop is acknowledged, which starts the last dirty sync: on two cores
    // that sync's threads would otherwise share them with this save.
    halt(false);
    // First thing once stopped: the destination loads it while the last pages still travel.
    savedForSwitchover = true;
    try {
      const { json, blob } = savePackedState();
      post({ type: 'switchover-state', json, blob: blob.buffer as ArrayBuffer }, [
        blob.buffer as ArrayBuffer,
      ]);
    } finally {
      vcpu.acknowledge(0);
    }
  }
  if (req === REQ_QUIT) void emulator.destroy().catch(() => {});
}

/** auto-converge: take `percent` of the vCPU's time, looking at its requests while it sleeps. */
function throttleSleep(percent: number): void {
  const now = performance.now();
  const worked = now - workStart;
  if (worked < 1) return;
  const until = now + (worked * percent) / (100 - percent);
  for (;;) {
    const left = until - performance.now();
    if (left <= 0 || vcpu.requested !== REQ_RUN) break;
    Atomics.wait(vcpu.words, VCPU.request, REQ_RUN, Math.min(left, THROTTLE_SLICE_MS));
  }
  workStart = performance.now();
}

/**
 * Wake on a change of `index` whenever the emulator is between slices (or stopped). The value
 * each wait compares with is read before `onChange` acts, never after: a request stored while
 * it acts (a failed migration's REQ_RUN right after its REQ_SWITCHOVER) then ends the next
 * wait at once instead of being waited past for good.
 */
function watch(index: number, onChange: () => void): void {
  const changed = (): void => {
    const seen = Atomics.load(vcpu.words, index);
    onChange();
    arm(seen);
  };
  const arm = (seen: number): void => {
    const r = Atomics.waitAsync(vcpu.words, index, seen);
    if (r.async) void r.value.then(changed);
    else setImmediate(changed);
  };
  arm(Atomics.load(vcpu.words, index));
}

// ---- requests from the main thread -------------------------------------------------------------

async function handle(m: PcRequest): Promise<void> {
  switch (m.type) {
    case 'serial-in':
      emulator.serial_send_bytes(0, m.data);
      return;
    case 'save-state': {
      const { json, blob } = savePackedState();
      post({ type: 'done', id: m.id, result: json, blob: blob.buffer as ArrayBuffer }, [
        blob.buffer as ArrayBuffer,
      ]);
      return;
    }
    case 'incoming':
      // From the first page landed, a failed migration needs a fresh emulator.
      restored = true;
      return;
    case 'load-state':
      return loadState(m);
    case 'discard':
      if (restored) await replaceEmulator();
      post({ type: 'done', id: m.id, result: guestRamPlace() });
      return;
  }
}

/** The device state arrived: check it and restore the CPU and devices (RAM keeps coming). */
async function loadState(m: Extract<PcRequest, { type: 'load-state' }>): Promise<void> {
  // The state travels with its zero blocks left out (state-packing.ts); its checks run on the
  // state itself.
  const info = m.json.pc as { bytes?: unknown } | undefined;
  const blob = m.blob ? unpackZeroBlocks(new Uint8Array(m.blob), info?.bytes) : null;
  checkDeviceState(m.json.pc, blob, { emulator: d.emulatorName, ramBytes: d.ramBytes });
  const t0 = performance.now();
  restored = true;
  try {
    restoreDeviceState(core, blob!);
  } catch (e) {
    await replaceEmulator();
    throw new Error(`the emulator refused the state: ${(e as Error).message}`);
  }
  post({ type: 'done', id: m.id, result: { restoreMs: performance.now() - t0 } });
}

port.on('message', (m: PcRequest) => {
  handle(m).catch((e: Error) => {
    if ('id' in m) post({ type: 'failed', id: m.id, message: e.message });
    else post({ type: 'fatal', message: e.message });
  });
});

nameThread('vcpu_0');
resetThreadCpu();
createEmulator().then(
  (zeroedPages) => {
    watch(VCPU.request, applyRequest);
    post({ type: 'ready', zeroedPages, guest: guestRamPlace() });
    applyRequest();
  },
  (e: Error) => post({ type: 'fatal', message: `the PC emulator did not start: ${e.message}` }),
);
