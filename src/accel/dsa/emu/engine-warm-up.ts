// The warm-up of an engine thread started ahead (a WorkerPool's), before it is bound to a device.
//
// V8 compiles an engine's hot path (the batch and COMPVAL code, address translation, records,
// interrupts) only after it has run a while: ~25 ms of TurboFan per engine (--trace-opt), and
// slower interpreted descriptors before that. DSA hardware is as fast on its first descriptor as
// on its millionth, and a script that sets dsa-accel right before `migrate` gives the device no
// time: so a pooled engine runs its executor here, in its own thread, on a device of its own,
// when the process starts. The shapes are the driver's (batch-task.ts): BATCHes of page
// COMPVALs, BATCHes of two whole-packet COMPVALs, and a whole packet alone, each with a record
// and an interrupt, over memory with zero and non-zero pages; code compiled for other
// descriptors would be thrown away at the first real one.

import { hiWord } from '../address.js';
import { DESCRIPTOR_WORDS, DescWord, setSourceWords, writeDescriptorWords } from '../descriptor.js';
import { Flag, Opcode } from '../opcodes.js';
import { AddressSpace } from './address-space.js';
import { Executor } from './executor.js';
import type { EmuWqHandle } from './handles.js';
import {
  C_STATE,
  DevState,
  allocIms,
  createRegisterFile,
  engineCounts,
  openRegisters,
} from './registers.js';
import { createRingBuffer, openRing } from './wq.js';
import { warmUpsPaused } from '../../../util/warm-up-gate.js';
import { registerWasmRam } from '../../../zero/wasm-zero.js';

const PAGE = 4096;
/** Pages per request: the default multifd packet (512 KiB). */
const PACKET = 128;
/** Rounds of the three requests: enough for V8 to optimize the executor (measured). */
const ROUNDS = 300;

/** Run the warm-up; returns what the engine counted (descriptors, batches, errors...). */
export function warmUpEngine(rounds = ROUNDS): ReturnType<typeof engineCounts> {
  const registers = createRegisterFile();
  const regs = openRegisters(registers);
  Atomics.store(regs.words, C_STATE, DevState.ENABLED);
  const as = AddressSpace.create();
  as.enableTranslation();
  // Two packets, the first all zero, the second every other page normal (scenario A's guest),
  // in a WebAssembly memory as guest RAM is: its zero checks run in wasm (wasm-zero.ts).
  const wasmPages = (2 * PACKET * PAGE) / 65536;
  const memory = new WebAssembly.Memory({ initial: wasmPages, maximum: wasmPages, shared: true });
  const data = memory.buffer as SharedArrayBuffer;
  registerWasmRam(data, memory);
  for (let p = PACKET; p < 2 * PACKET; p += 2) new Uint8Array(data)[p * PAGE + 8] = 1;
  // PACKET descriptors, PACKET + 1 records (the last the BATCH's), the interrupt word.
  const rec = PACKET * 64;
  const irq = rec + (PACKET + 1) * 32;
  const w = new Int32Array(new SharedArrayBuffer(irq + 64));
  const dataBase = as.register(data).base;
  const base = as.register(w.buffer as SharedArrayBuffer).base;
  const ims = allocIms(regs.words, base + irq, hiWord(base + irq), 0);
  const wq: EmuWqHandle = {
    ...{ name: 'wq0.0', id: 0, index: 0, group: 0, mode: 'shared', type: 'user', size: 128 },
    ...{ threshold: 128, priority: 10, maxBatchSize: 1024, maxTransferSize: 2 * 1024 * 1024 },
    ...{ blockOnFault: false, clientName: 'livemig', driverName: 'user', enabled: true },
    ring: createRingBuffer(128, 128, 0),
  };
  const ring = openRing(wq.ring, registers);
  const exec = new Executor(regs, as, 0);
  const top = new Int32Array(DESCRIPTOR_WORDS);
  const flags = Flag.CRAV | Flag.RCR;
  /** `n` COMPVALs of `bytes` each from byte `first` of `data`: a BATCH, or one alone. */
  const request = (n: number, bytes: number, first: number): void => {
    for (let i = 0; i < n; i++) {
      const r = base + rec + i * 32;
      writeDescriptorWords(
        w,
        i * DESCRIPTOR_WORDS,
        Opcode.COMPVAL,
        flags,
        r,
        hiWord(r),
        0,
        0,
        bytes,
        0,
      );
      setSourceWords(w, i * DESCRIPTOR_WORDS, dataBase + first + i * bytes, hiWord(dataBase));
    }
    if (n > 1) {
      const r = base + rec + PACKET * 32;
      const f = flags | Flag.RCI;
      writeDescriptorWords(top, 0, Opcode.BATCH, f, r, hiWord(r), base, hiWord(base), n, ims);
    } else {
      top.set(w.subarray(0, DESCRIPTOR_WORDS));
      top[DescWord.FLAGS_OPCODE] |= Flag.RCI;
      top[DescWord.INT_HANDLE] = ims;
    }
    exec.runTopLevel(top, wq, ring, 0);
  };
  // A migration that starts meanwhile has the cores (warm-up-gate.ts).
  for (let round = 0; round < rounds && !warmUpsPaused(); round++) {
    const first = (round & 1) * PACKET * PAGE;
    request(PACKET, PAGE, first);
    request(2, PACKET * PAGE, 0);
    request(1, PACKET * PAGE, first);
  }
  as.unregisterOwner(0);
  as.close();
  return engineCounts(regs, 0);
}
