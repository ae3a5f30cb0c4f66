// The emulated DSA devices of a process: started on first use and shared by every migration
// in the process, as a real DSA is shared by every process of a host. Reference-counted so
// the engine threads stop when the last user is gone.

import { DsaEmu } from '../accel/dsa/emu/device.js';
import { warmUpEmulatedDevices } from '../accel/warm-up.js';

let emu: Promise<DsaEmu> | null = null;
let users = 0;
/** The devices' warm-up while it runs: stopped by the first migration that uses them. */
let warmUp: { stop: AbortController; done: Promise<void> } | null = null;

export async function acquireSharedEmu(): Promise<DsaEmu> {
  users++;
  // Usable once their engines run. The warm-up (src/accel/warm-up.ts) runs behind: the engines'
  // JIT belongs to starting the device, not to the first migration, unless that migration
  // starts at once, and then it stops the warm-up (endWarmUp) instead of waiting for it.
  emu ??= DsaEmu.start().then((e) => {
    const stop = new AbortController();
    warmUp = { stop, done: warmUpEmulatedDevices(e, undefined, stop.signal).catch(() => {}) };
    return e;
  });
  try {
    return await emu;
  } catch (e) {
    users--;
    emu = null;
    throw e;
  }
}

/** A migration is about to use the devices: the warm-up stops after its current round. */
export function endWarmUp(): void {
  warmUp?.stop.abort();
}

export async function releaseSharedEmu(): Promise<void> {
  if (users === 0 || --users > 0 || !emu) return;
  const e = emu;
  emu = null;
  const w = warmUp;
  warmUp = null;
  w?.stop.abort();
  await w?.done;
  await (await e).close();
}
