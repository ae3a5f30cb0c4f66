// What `--machine pc` uses when its flags leave something out: the guest image that
// `livemig image fetch` put in the per-user cache, and the system's SeaBIOS or else the image's;
// and the x-migration-nice a PC starts with.

import { availableParallelism } from 'node:os';
import { defaultBios, findGuestImage } from '../../image/guest-image.js';
import type { PcDefaults } from './pc-options.js';

export function pcDefaults(): PcDefaults {
  const image = findGuestImage();
  return {
    image: image ? { kernel: image.kernel, initrd: image.initrd } : null,
    firmware: defaultBios(image),
  };
}

/**
 * The x-migration-nice a PC starts with: 19 on a host with fewer than three cores, else 0. With
 * two, the guest's vCPU and the migration's threads (both processes' on one host) share the
 * cores, and a busy guest kept about 40% of its pace during precopy; with its vCPU first it kept
 * 87% (median of 9 runs) and the migration took about a quarter longer (docs/benchmarks.md). With
 * a third core the migration has one of its own. `migrate-set-parameters` changes it as any
 * parameter.
 */
export function pcMigrationNice(cores: number = availableParallelism()): number {
  return cores < 3 ? 19 : 0;
}
