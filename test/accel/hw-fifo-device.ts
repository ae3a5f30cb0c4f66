// A test device behind a FIFO that stands in for /dev/dsa/wqX.Y (not a test file: run as a
// Worker by test/accel/hw-helpers.ts; does nothing on a main thread).
//
// The driver's write() path sends 64-byte idxd descriptors into the FIFO exactly as it would to
// the kernel. This thread reads them and executes them on the real virtual addresses they carry,
// through the addon's test-only peek/poke (process_vm_readv/writev, so an unmapped address is a
// fault, not a crash):
//   - COMPVAL: compare `xfer_size` bytes at src_addr (byte 16) with the 8-byte pattern (byte
//     24); result 0/1, bytes_completed = start of the first mismatching 8-byte word;
//   - a page it cannot read, or one marked faulting by the test, ends the descriptor with
//     PAGE_FAULT_NOBOF, fault_addr and bytes_completed (partial completion);
//   - BATCH: reads the member list at desc_list_addr and runs each member, then writes the
//     batch record (SUCCESS, or BATCH_FAIL with result 1);
//   - NOOP; anything else gets BAD_OPCODE.
// It writes each completion record at completion_addr with the status byte last. The test can
// make it drop descriptors (no record: the driver's deadline) and slow it down, and halt it once
// it has received D_HALT_AFTER descriptors, as a WQ disabled under the driver:
//   - HALT_SWERR: the WQ's sysfs state becomes `disabled`, the node turns readable (two marker
//     descriptors left in the FIFO: the kernel makes a WQ fd readable on a software error) and
//     nothing is read or completed any more;
//   - HALT_SILENT: sysfs `disabled`, and every descriptor is read and dropped, as a disabled
//     dedicated WQ drops MOVDIR64B, with no poll() signal.

import { closeSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { constants } from 'node:fs';
import { isMainThread, workerData } from 'node:worker_threads';
import { peek, poke } from './native-testing.js';
import { Flag, Opcode, Status } from '../../src/accel/dsa/opcodes.js';

/** Control words (Int32) shared with the test. */
export const D_RECEIVED = 0;
export const D_BATCHES = 1;
export const D_COMPVAL = 2;
export const D_FAULTS = 3;
export const D_DROPPED = 4;
/** Drop the next N descriptors (no completion record). */
export const D_DROP_NEXT = 5;
/** Sleep this many microseconds before each descriptor. */
export const D_DELAY_US = 6;
export const D_RUNNING = 7;
export const D_RECORDS = 8;
export const D_BAD = 9;
/** HALT_SWERR or HALT_SILENT, applied once D_RECEIVED reaches D_HALT_AFTER. */
export const D_HALT_MODE = 10;
export const D_HALT_AFTER = 11;
/** 1 once halted. */
export const D_HALTED = 12;
/** Set by stop(): a halted device that no longer reads ends too. */
export const D_STOP = 13;
export const HALT_SWERR = 1;
export const HALT_SILENT = 2;
export const D_FAULT_COUNT = 15;
/** Fault pages: (lo, hi) of 4 KiB-aligned addresses, from word 16. */
export const D_FAULT_WORD = 16;
export const D_MAX_FAULTS = 64;
export const D_WORDS = D_FAULT_WORD + D_MAX_FAULTS * 2;
/** Opcode of the descriptor the test writes to stop the device. */
export const STOP_OPCODE = 0xff;

const TWO_32 = 4294967296;

export interface FifoDeviceData {
  node: string;
  ctrl: SharedArrayBuffer;
  /** The WQ's sysfs `state` file (written `disabled` on a halt). */
  stateFile?: string;
}

function run(d: FifoDeviceData): void {
  const ctrl = new Int32Array(d.ctrl);
  const fd = openSync(d.node, constants.O_RDWR);
  const desc = Buffer.alloc(64);
  const rec = Buffer.alloc(32);
  const sleeper = new Int32Array(new SharedArrayBuffer(4));
  Atomics.store(ctrl, D_RUNNING, 1);

  const u64 = (b: Buffer, at: number) => b.readUInt32LE(at) + b.readUInt32LE(at + 4) * TWO_32;

  /** Bytes readable at [addr, addr+len) before the first fault (real or injected). */
  const readable = (addr: number, len: number): { bytes: Buffer; ok: number } => {
    let limit = len;
    const n = Atomics.load(ctrl, D_FAULT_COUNT);
    for (let i = 0; i < n; i++) {
      const p =
        (Atomics.load(ctrl, D_FAULT_WORD + 2 * i) >>> 0) +
        (Atomics.load(ctrl, D_FAULT_WORD + 2 * i + 1) >>> 0) * TWO_32;
      if (p + 4096 <= addr || p >= addr + limit) continue;
      limit = Math.max(0, p - addr);
    }
    const bytes = peek(addr, limit);
    return { bytes, ok: bytes.length };
  };

  const writeRecord = (
    addr: number,
    status: number,
    result: number,
    completed: number,
    fault: number,
  ) => {
    rec.fill(0);
    rec[0] = status;
    rec[1] = result;
    rec.writeUInt32LE(completed >>> 0, 4);
    rec.writeUInt32LE(fault >>> 0, 8);
    rec.writeUInt32LE(Math.floor(fault / TWO_32), 12);
    poke(addr, rec, true);
    Atomics.add(ctrl, D_RECORDS, 1);
  };

  /** Execute one descriptor; returns its status (for a batch's record). */
  const execute = (b: Buffer, inBatch: boolean): number => {
    const flags = b.readUInt32LE(4) & 0xffffff;
    const opcode = b[7];
    const cra = u64(b, 8);
    const wantsRecord = (flags & Flag.CRAV) !== 0;
    const record = (status: number, result: number, completed: number, fault: number) => {
      if (wantsRecord && ((flags & Flag.RCR) !== 0 || status !== Status.SUCCESS)) {
        writeRecord(cra, status, result, completed, fault);
      }
      return status;
    };
    if (opcode === Opcode.NOOP) return record(Status.SUCCESS, 0, 0, 0);
    if (opcode === Opcode.COMPVAL) {
      Atomics.add(ctrl, D_COMPVAL, 1);
      const src = u64(b, 16);
      const size = b.readUInt32LE(32);
      const pattern = b.subarray(24, 32);
      const { bytes, ok } = readable(src, size);
      for (let i = 0; i < ok; i++) {
        if (bytes[i] !== pattern[i & 7]) return record(Status.SUCCESS, 1, i & ~7, 0);
      }
      if (ok < size) {
        Atomics.add(ctrl, D_FAULTS, 1);
        return record(Status.PAGE_FAULT_NOBOF, 0, ok, src + ok);
      }
      return record(Status.SUCCESS, 0, 0, 0);
    }
    if (opcode === Opcode.BATCH && !inBatch) {
      Atomics.add(ctrl, D_BATCHES, 1);
      const list = u64(b, 16);
      const n = b.readUInt32LE(32);
      const members = peek(list, n * 64);
      let failed = 0;
      for (let i = 0; i < n; i++) {
        const m = Buffer.from(members.subarray(i * 64, i * 64 + 64));
        if (m.length < 64 || execute(m, true) !== Status.SUCCESS) failed++;
      }
      return failed ? record(Status.BATCH_FAIL, 1, n, 0) : record(Status.SUCCESS, 0, n, 0);
    }
    Atomics.add(ctrl, D_BAD, 1);
    return record(Status.BAD_OPCODE, 0, 0, 0);
  };

  /** Halt as the test asked: true when the device reads nothing more. */
  const halt = (mode: number): boolean => {
    if (Atomics.load(ctrl, D_HALTED) === 0) {
      if (d.stateFile) writeFileSync(d.stateFile, 'disabled\n');
      if (mode === HALT_SWERR) {
        // Non-blocking: a FIFO the driver has filled is readable already.
        const marker = Buffer.alloc(128);
        marker[7] = marker[71] = Opcode.NOOP;
        const w = openSync(d.node, constants.O_WRONLY | constants.O_NONBLOCK);
        try {
          writeSync(w, marker);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EAGAIN') throw e;
        } finally {
          closeSync(w);
        }
      }
      Atomics.store(ctrl, D_HALTED, 1);
    }
    return mode === HALT_SWERR;
  };

  for (;;) {
    let got = 0;
    while (got < 64) got += readSync(fd, desc, got, 64 - got, null);
    if (desc[7] === STOP_OPCODE || Atomics.load(ctrl, D_STOP)) break;
    const received = Atomics.add(ctrl, D_RECEIVED, 1) + 1;
    const mode = Atomics.load(ctrl, D_HALT_MODE);
    if (mode && received >= Atomics.load(ctrl, D_HALT_AFTER)) {
      if (halt(mode)) {
        while (!Atomics.load(ctrl, D_STOP)) Atomics.wait(ctrl, D_STOP, 0, 50);
        break;
      }
      Atomics.add(ctrl, D_DROPPED, 1);
      continue;
    }
    const delay = Atomics.load(ctrl, D_DELAY_US);
    if (delay > 0) Atomics.wait(sleeper, 0, 0, delay / 1000);
    const drop = Atomics.load(ctrl, D_DROP_NEXT);
    if (drop > 0 && Atomics.compareExchange(ctrl, D_DROP_NEXT, drop, drop - 1) === drop) {
      Atomics.add(ctrl, D_DROPPED, 1);
      continue;
    }
    execute(desc, false);
  }
  Atomics.store(ctrl, D_RUNNING, 0);
}

if (!isMainThread && (workerData as FifoDeviceData | undefined)?.node) {
  run(workerData as FifoDeviceData);
}
