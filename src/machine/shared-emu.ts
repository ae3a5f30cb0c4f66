// The emulated DSA devices of a process: started on first use and shared by every migration
// in the process, as a real DSA is shared by every process of a host. Reference-counted so
// the engine threads stop when the last user is gone.

import { DsaEmu } from '../accel/dsa/emu/device.js';
import type { WorkerPool } from '../util/worker-pool.js';

let emu: Promise<DsaEmu> | null = null;
let users = 0;

/**
 * `threads`: where the engine threads are taken from when the devices start: started with the
 * process and warmed up there (src/accel/dsa/emu/engine-warm-up.ts), so that a migration
 * started right after `migrate-set-parameters` neither waits for them nor pays their JIT.
 */
export async function acquireSharedEmu(threads?: WorkerPool): Promise<DsaEmu> {
  users++;
  emu ??= DsaEmu.start({ threads });
  try {
    return await emu;
  } catch (e) {
    users--;
    emu = null;
    throw e;
  }
}

export async function releaseSharedEmu(): Promise<void> {
  if (users === 0 || --users > 0 || !emu) return;
  const e = emu;
  emu = null;
  await (await e).close();
}
