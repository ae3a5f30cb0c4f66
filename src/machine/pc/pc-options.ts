// `livemig run --machine pc`'s own flags, checked and resolved: RAM within what v86 can have,
// the firmware (--bios, default: the system's SeaBIOS, else the fetched image's) and what to
// boot (--kernel/--initrd, default: the fetched guest image).

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { formatBytes } from '../../util/size.js';
import {
  DEFAULT_APPEND,
  MAX_PC_RAM,
  MIN_PC_RAM,
  PC_RAM_STEP,
  type PcBoot,
  type PcFirmware,
} from './pc-config.js';

export interface PcFlags {
  kernel?: string;
  initrd?: string;
  append?: string;
  bios?: string;
}

/** Where to look for what the flags leave out. */
export interface PcDefaults {
  /** the fetched guest image, if any */
  image: { kernel: string; initrd: string } | null;
  /** the BIOS and VGA BIOS to use when --bios is not given, if any */
  firmware: PcFirmware | null;
}

export function checkPcRam(ramBytes: number): void {
  if (ramBytes < MIN_PC_RAM || ramBytes > MAX_PC_RAM || ramBytes % PC_RAM_STEP !== 0) {
    throw new Error(
      `invalid --ram ${formatBytes(ramBytes)} for --machine pc: expected ${formatBytes(MIN_PC_RAM)} ` +
        `up to 2 GiB less 128 KiB, in steps of ` +
        `${formatBytes(PC_RAM_STEP)}: v86's limits`,
    );
  }
}

function mustExist(path: string, flag: string): string {
  if (!existsSync(path)) throw new Error(`${flag} '${path}': no such file`);
  return path;
}

/** The firmware: --bios (with the VGA BIOS beside it, if there is one), else the default. */
export function resolveFirmware(flags: PcFlags, defaults: PcDefaults): PcFirmware {
  if (flags.bios) {
    const bios = mustExist(flags.bios, '--bios');
    const vga = join(dirname(bios), 'vgabios-stdvga.bin');
    return { bios, vgaBios: existsSync(vga) ? vga : null };
  }
  if (defaults.firmware) return defaults.firmware;
  throw new Error(
    "no BIOS for --machine pc: pass --bios FILE (SeaBIOS's bios.bin), install Debian's seabios " +
      'package, or run `livemig image fetch`, which fetches it',
  );
}

/** What a source boots: the flags, else the fetched guest image. */
export function resolveBoot(flags: PcFlags, defaults: PcDefaults): PcBoot {
  const append = flags.append ?? DEFAULT_APPEND;
  if (flags.kernel) {
    return {
      kernel: mustExist(flags.kernel, '--kernel'),
      initrd: flags.initrd ? mustExist(flags.initrd, '--initrd') : null,
      append,
    };
  }
  if (flags.initrd) throw new Error('--initrd needs --kernel (or neither: the fetched image)');
  if (defaults.image) return { ...defaults.image, append };
  throw new Error(
    'no kernel for --machine pc: pass --kernel FILE [--initrd FILE], or run ' +
      '`livemig image fetch` once to download a Debian kernel and build an initramfs',
  );
}
