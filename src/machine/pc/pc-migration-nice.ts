// The x-migration-nice a PC starts with. A module of its own: the VM reads it for every PC,
// and pc-defaults.ts would bring the guest-image code with it.

import { availableParallelism } from 'node:os';

/**
 * 19 on a host with fewer than three cores, else 0. With two, the guest's vCPU and the
 * migration's threads (both processes' on one host) share the cores, and a busy guest kept
 * about 40% of its pace during precopy; with its vCPU first it kept 87% (median of 9 runs) and
 * the migration took about a quarter longer (docs/benchmarks.md). With a third core the
 * migration has one of its own. `migrate-set-parameters` changes it as any parameter.
 */
export function pcMigrationNice(cores: number = availableParallelism()): number {
  return cores < 3 ? 19 : 0;
}
