// The machine a `livemig run` hosts, from its options (QEMU's -M): the synthetic guest (RAM and
// a workload) or the PC (Linux in v86), with the PC's serial console wired to its chardev.

import { SyntheticMachine } from './synthetic-machine.js';
import { PcMachine } from './pc/pc-machine.js';
import type { GuestMachine } from './guest-machine.js';
import type { CpuRegistry } from '../util/cpu-slots.js';
import type { VmOptions } from './vm.js';

/** `onFatal`: the PC's emulator failed; the guest cannot run on. */
export function createMachine(
  o: VmOptions,
  cpu: CpuRegistry,
  onFatal: (message: string) => void,
): GuestMachine {
  if ((o.machine ?? 'synthetic') === 'synthetic') {
    return new SyntheticMachine({
      ramBytes: o.ramBytes,
      blockSize: o.blockSize,
      workload: o.workload,
      cpu,
    });
  }
  if (!o.pc) throw new Error('a pc machine needs its firmware (PcOptions)');
  const serial = o.pc.serial;
  const pc: PcMachine = new PcMachine({
    ramBytes: o.ramBytes,
    firmware: o.pc.firmware,
    boot: o.incoming === undefined ? o.pc.boot : null,
    prealloc: o.memPrealloc,
    cpu,
    onSerialOutput: (data) => serial?.write(data),
    onFatal,
  });
  serial?.onInput((data) => pc.serialInput(data));
  return pc;
}
