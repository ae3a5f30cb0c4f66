// The emulated DSA devices of a process: started on first use and shared by every migration
// in the process, as a real DSA is shared by every process of a host. Reference-counted so
// the engine threads stop when the last user is gone.

import { DsaEmu } from '../accel/dsa/emu/device.js';

let emu: Promise<DsaEmu> | null = null;
let users = 0;

export async function acquireSharedEmu(): Promise<DsaEmu> {
  users++;
  emu ??= DsaEmu.start();
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
