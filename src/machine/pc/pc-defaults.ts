// What `--machine pc` uses when its flags leave something out: the guest image that
// `livemig image fetch` put in the per-user cache, and the system's SeaBIOS or else the image's.
// (The x-migration-nice a PC starts with: pc-migration-nice.ts.)

import { defaultBios, findGuestImage } from '../../image/guest-image.js';
import type { PcDefaults } from './pc-options.js';

export function pcDefaults(): PcDefaults {
  const image = findGuestImage();
  return {
    image: image ? { kernel: image.kernel, initrd: image.initrd } : null,
    firmware: defaultBios(image),
  };
}
