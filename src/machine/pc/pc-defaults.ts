// What `--machine pc` uses when its flags leave something out: the guest image that
// `livemig image fetch` put in the cache, and the system's SeaBIOS or else the image's.

import { existsSync } from 'node:fs';
import type { PcDefaults } from './pc-options.js';

const SYSTEM_SEABIOS = '/usr/share/seabios';

export function pcDefaults(): PcDefaults {
  const bios = `${SYSTEM_SEABIOS}/bios.bin`;
  const vga = `${SYSTEM_SEABIOS}/vgabios-stdvga.bin`;
  return {
    image: null,
    firmware: existsSync(bios) ? { bios, vgaBios: existsSync(vga) ? vga : null } : null,
  };
}
