// Thread priority on Linux. A thread is a task with its own id there, and setpriority() on that
// id changes the nice value of that thread alone: how migration threads yield the CPU to the
// guest's vCPU when the host has no core to spare. Its name, too: what ps and top show for it.

import { readlinkSync, writeFileSync } from 'node:fs';
import { setPriority } from 'node:os';

/** The calling thread's kernel id (Linux), or null where /proc/thread-self does not exist. */
export function kernelThreadId(): number | null {
  try {
    // "PID/task/TID"
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    return Number.isInteger(tid) && tid > 0 ? tid : null;
  } catch {
    return null;
  }
}

/**
 * Give the calling thread nice value `nice` (0..19). Returns false where the system does not
 * allow it (not Linux; or lowering a value without CAP_SYS_NICE): the thread then runs as it
 * was, which is only slower for the guest, never wrong.
 */
export function setThreadNice(nice: number): boolean {
  const tid = kernelThreadId();
  if (tid === null) return false;
  try {
    setPriority(tid, nice);
    return true;
  } catch {
    return false;
  }
}

/**
 * Name the calling thread as `ps -L`, `top -H` and `perf` show it (Linux: 15 bytes at most), as
 * QEMU names its migration threads. Elsewhere, or if /proc says no, the thread keeps its name.
 */
export function nameThread(name: string): void {
  try {
    writeFileSync('/proc/thread-self/comm', name.slice(0, 15));
  } catch {
    // Not Linux: nothing shows thread names there the same way.
  }
}
