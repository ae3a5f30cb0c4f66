// The emulated DSA devices of a process: started on first use and shared by every migration
// in the process, as a real DSA is shared by every process of a host. Reference-counted so
// the engine threads stop when the last user is gone.

import { DsaEmu } from '../accel/dsa/emu/device.js';
import { warmUpEmulatedDevices } from '../accel/warm-up.js';

let emu: Promise<DsaEmu> | null = null;
let users = 0;

export async function acquireSharedEmu(): Promise<DsaEmu> {
  users++;
  // Warmed up before anyone uses them (src/accel/warm-up.ts): the engines' JIT belongs to
  // starting the device, not to the first migration.
  emu ??= DsaEmu.start().then(async (e) => {
    await warmUpEmulatedDevices(e).catch(() => {});
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

export async function releaseSharedEmu(): Promise<void> {
  if (users === 0 || --users > 0 || !emu) return;
  const e = emu;
  emu = null;
  await (await e).close();
}
