// A work queue's submission portal for tests that build their own descriptors: what mmapping
// /dev/dsa/wqX.Y gives a program on real hardware. The driver and the selftest use the same
// ring functions directly.

import { DESCRIPTOR_WORDS } from '../../src/accel/dsa/descriptor.js';
import { DESCRIPTOR_SIZE } from '../../src/accel/dsa/opcodes.js';
import type { EmuDeviceHandle, EmuWqHandle } from '../../src/accel/dsa/emu/handles.js';
import { openRegisters, ringDoorbell } from '../../src/accel/dsa/emu/registers.js';
import { enqcmd, movdir64b, openRing, type WqRing } from '../../src/accel/dsa/emu/wq.js';

export class WqPortal {
  readonly wq: EmuWqHandle;
  private readonly ring: WqRing;
  private readonly regs: Int32Array;
  private readonly scratch = new Int32Array(DESCRIPTOR_WORDS);

  constructor(device: EmuDeviceHandle, wq: string) {
    const q = device.wqs.find((x) => x.name === wq);
    if (!q) throw new Error(`${device.name} has no work queue '${wq}'`);
    this.wq = q;
    this.ring = openRing(q.ring, device.registers);
    this.regs = openRegisters(device.registers).words;
  }

  private load(desc: Uint8Array, offset: number): Int32Array {
    if (offset < 0 || offset + DESCRIPTOR_SIZE > desc.byteLength) {
      throw new RangeError('a descriptor is 64 bytes');
    }
    const s = this.scratch;
    const v = new DataView(desc.buffer, desc.byteOffset + offset, DESCRIPTOR_SIZE);
    for (let i = 0; i < DESCRIPTOR_WORDS; i++) s[i] = v.getInt32(i * 4, true);
    return s;
  }

  /** ENQCMD: true when the WQ accepted the descriptor, false for "retry". */
  enqcmd(desc: Uint8Array, offset = 0): boolean {
    const ok = enqcmd(this.ring, this.load(desc, offset), 0);
    if (ok) ringDoorbell(this.regs, this.wq.group);
    return ok;
  }

  /** MOVDIR64B: posted; returns false when the device dropped it (a real CPU cannot tell). */
  movdir64b(desc: Uint8Array, offset = 0): boolean {
    const ok = movdir64b(this.ring, this.load(desc, offset), 0);
    if (ok) ringDoorbell(this.regs, this.wq.group);
    return ok;
  }

  /** Submit the way the WQ's mode requires. */
  submit(desc: Uint8Array, offset = 0): boolean {
    return this.wq.mode === 'shared' ? this.enqcmd(desc, offset) : this.movdir64b(desc, offset);
  }
}
