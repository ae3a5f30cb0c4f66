// vcpu_0 of a PC machine: the v86 emulator. Guest RAM lives in v86's own WebAssembly memory, so
// this thread is the only one that can read it. It runs the guest in v86's slices of about 1 ms
// and, between slices, answers the VCPU words (src/ram/vcpu-control.ts): run and stop,
// auto-converge's throttle, and dirty syncs, in which it copies the pages that changed into the
// engine's RAM blocks (the mirror) and sets their dirty bits. The main thread asks it, by
// message, to save or restore the device state, for a RAM digest, and to pass serial bytes.

import { parentPort, workerData } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { V86 } from 'v86';
import { REQ_QUIT, REQ_RUN, REQ_SWITCHOVER, VCPU, VcpuControl } from '../../ram/vcpu-control.js';
import { publishThreadCpu, resetThreadCpu } from '../../util/cpu-slots.js';
import { ramDigest } from '../../ram/digest.js';
import { checkInternals, guestRam, type Emulator, type V86Core } from './v86-internals.js';
import { VGA_MEMORY_BYTES, type PcReply, type PcRequest, type PcWorkerData } from './pc-config.js';
import { SYNC_CHUNK_BYTES, mirrorZeroChunks, syncMirror, zeroRam } from './mirror-sync.js';
import { RECEIVED } from '../../migration/destination/received-map.js';
import { PAGE_SIZE } from '../../migration/protocol.js';
import { preallocatePages } from '../../ram/fill.js';
import { IncomingPages } from './incoming-pages.js';
import {
  checkDeviceState,
  describeState,
  restoreDeviceState,
  saveDeviceState,
} from './device-state.js';

const d = workerData as PcWorkerData & { emulatorName: string };
const vcpu = new VcpuControl(d.control);
const port = parentPort!;
const post = (m: PcReply, transfer: ArrayBuffer[] = []): void => port.postMessage(m, transfer);

/** A sync is due at least this often while the guest runs and no migration asks for one. */
const REFRESH_MS = 1000;
/** How long a throttled vCPU sleeps at most before looking at its requests again. */
const THROTTLE_SLICE_MS = 5;

let emulator: Emulator;
let core: V86Core;
let mirror = mirrorOf(d.block);
let dirty = new Int32Array(d.block.dirty);
/** which 64 KiB chunks of the mirror are known to be zero (mirror-sync.ts) */
let mirrorZero = mirrorZeroChunks(d.ramBytes);
/** the emulator's RAM or state has been written by a migration (a failed one needs a new one) */
let restored = false;
/** a migration arriving: taking its pages into the emulator as they land */
let incoming: IncomingPages | null = null;
let running = false;
let lastSyncAt = 0;
let workStart = performance.now();
let cpuPublishedAt = 0;

function mirrorOf(b: PcWorkerData['block']): Buffer {
  return Buffer.from(b.ram, b.base, b.size);
}

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

/** The mirror's zero chunks after a migration in: those where no page was written. */
function zeroChunksOf(map: Uint8Array): Uint8Array {
  const chunks = mirrorZeroChunks(d.ramBytes);
  const perChunk = SYNC_CHUNK_BYTES / PAGE_SIZE;
  for (let p = 0; p < map.length; p++) {
    if (map[p] >= RECEIVED.data) chunks[Math.floor(p / perChunk)] = 0;
  }
  return chunks;
}

/** Stop taking pages in (the migration ended, whichever way). */
function endIncoming(): void {
  incoming?.stop();
  incoming = null;
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
  if (vcpu.syncPending) dirtySync();
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
function halt(): void {
  if (running) {
    core.stop();
    running = false;
  }
  flushSerial();
  publishThreadCpu(d.cpuSlots, d.cpuSlot);
  vcpu.acknowledge(0);
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
  halt();
  if (req === REQ_SWITCHOVER && !savedForSwitchover) {
    // First thing once stopped: the destination loads it while the last pages still travel.
    savedForSwitchover = true;
    const blob = saveDeviceState(core, d.ramBytes);
    const json = { pc: describeState(blob, d.emulatorName) };
    post({ type: 'switchover-state', json, blob: blob.buffer as ArrayBuffer }, [
      blob.buffer as ArrayBuffer,
    ]);
  }
  if (req === REQ_QUIT) void emulator.destroy().catch(() => {});
}

/** auto-converge: take `percent` of the vCPU's time, serving syncs while it sleeps. */
function throttleSleep(percent: number): void {
  const now = performance.now();
  const worked = now - workStart;
  if (worked < 1) return;
  const until = now + (worked * percent) / (100 - percent);
  for (;;) {
    const left = until - performance.now();
    if (left <= 0 || vcpu.requested !== REQ_RUN) break;
    const ticket = Atomics.load(vcpu.words, VCPU.syncRequest);
    if (vcpu.syncPending) dirtySync();
    else Atomics.wait(vcpu.words, VCPU.syncRequest, ticket, Math.min(left, THROTTLE_SLICE_MS));
  }
  workStart = performance.now();
}

/** Copy what changed since the last sync into the mirror and flag it (vcpu-control.ts). */
function dirtySync(): void {
  const upTo = vcpu.takeSyncTickets();
  const t0 = performance.now();
  const pages = syncMirror(guestRam(core.cpu), mirror, dirty, mirrorZero);
  const t1 = performance.now();
  lastSyncAt = t1;
  vcpu.finishSync(upTo, pages, (t1 - t0) * 1000);
}

/**
 * Keep the mirror warm while no migration asks: a migration's first sync then copies only what
 * changed lately, not every page the guest ever wrote (first writes to fresh memory fault).
 */
function refresh(): void {
  if (running && performance.now() - lastSyncAt > REFRESH_MS) dirtySync();
}

/** Wake on a change of `index` whenever the emulator is between slices (or stopped). */
function watch(index: number, onChange: () => void): void {
  const arm = (): void => {
    const r = Atomics.waitAsync(vcpu.words, index, Atomics.load(vcpu.words, index));
    if (r.async) {
      void r.value.then(() => {
        onChange();
        arm();
      });
    } else {
      onChange();
      setImmediate(arm);
    }
  };
  arm();
}

// ---- requests from the main thread -------------------------------------------------------------

async function handle(m: PcRequest): Promise<void> {
  switch (m.type) {
    case 'serial-in':
      emulator.serial_send_bytes(0, m.data);
      return;
    case 'save-state': {
      const blob = saveDeviceState(core, d.ramBytes);
      const json = { pc: describeState(blob, d.emulatorName) };
      post({ type: 'done', id: m.id, result: json, blob: blob.buffer as ArrayBuffer }, [
        blob.buffer as ArrayBuffer,
      ]);
      return;
    }
    case 'incoming':
      endIncoming();
      // From the first page taken in, a failed migration needs a fresh emulator.
      restored = true;
      incoming = new IncomingPages(
        new Uint8Array(m.received),
        () => guestRam(core.cpu),
        () => mirror,
      );
      incoming.start();
      return;
    case 'load-state':
      return loadState(m);
    case 'finish-incoming':
      return finishIncoming(m.id);
    case 'digest':
      post({
        type: 'done',
        id: m.id,
        result: ramDigest([{ id: d.block.id, segments: [guestRam(core.cpu)] }]),
      });
      return;
    case 'discard':
      endIncoming();
      mirror = mirrorOf(m.block);
      mirrorZero = mirrorZeroChunks(d.ramBytes);
      dirty = new Int32Array(m.block.dirty);
      if (restored) await replaceEmulator();
      post({ type: 'done', id: m.id });
      return;
  }
}

/** The device state arrived: check it and restore the CPU and devices (RAM keeps coming). */
async function loadState(m: Extract<PcRequest, { type: 'load-state' }>): Promise<void> {
  const blob = m.blob ? new Uint8Array(m.blob) : null;
  checkDeviceState(m.json.pc, blob, { emulator: d.emulatorName, ramBytes: d.ramBytes });
  const t0 = performance.now();
  restored = true;
  try {
    restoreDeviceState(core, blob!);
  } catch (e) {
    endIncoming();
    await replaceEmulator();
    throw new Error(`the emulator refused the state: ${(e as Error).message}`);
  }
  post({ type: 'done', id: m.id, result: { restoreMs: performance.now() - t0 } });
}

/** Every page has landed: take the last of them in; the guest may run. */
function finishIncoming(id: number): void {
  const t0 = performance.now();
  const pages = incoming;
  const last = pages?.take() ?? 0;
  if (pages) mirrorZero = zeroChunksOf(pages.map);
  endIncoming();
  // The guest's RAM is what the mirror holds; the next sync starts from there.
  lastSyncAt = performance.now();
  post({
    type: 'done',
    id,
    result: {
      'pages-into-guest': pages?.pages ?? 0,
      'into-guest-ms': Math.round((pages?.ms ?? 0) * 10) / 10,
      'last-pages': last,
      'last-ms': Math.round((lastSyncAt - t0) * 10) / 10,
    },
  });
}

port.on('message', (m: PcRequest) => {
  handle(m).catch((e: Error) => {
    if ('id' in m) post({ type: 'failed', id: m.id, message: e.message });
    else post({ type: 'fatal', message: e.message });
  });
});

resetThreadCpu();
createEmulator().then(
  (zeroedPages) => {
    watch(VCPU.request, applyRequest);
    watch(VCPU.syncRequest, () => {
      if (vcpu.syncPending) dirtySync();
    });
    setInterval(refresh, REFRESH_MS).unref();
    post({ type: 'ready', zeroedPages });
    applyRequest();
  },
  (e: Error) => post({ type: 'fatal', message: `the PC emulator did not start: ${e.message}` }),
);
