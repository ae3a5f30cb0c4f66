// The selftest's checks: each runs pages through the same driver migration uses and compares
// the answers with the CPU's; one sends a raw descriptor at a faulting address. A failed check
// adds plain words on what to fix to the advice.

import { setTimeout as sleep } from 'node:timers/promises';
import type { AccelTarget } from '../accel-path.js';
import { cpuZeroPages } from '../cpu-zero.js';
import { hiWord, joinAddrNumber } from '../dsa/address.js';
import { writeDescriptorWords } from '../dsa/descriptor.js';
import { RecWord } from '../dsa/completion.js';
import type { DsaEmu } from '../dsa/emu/device.js';
import { ringDoorbell } from '../dsa/emu/registers.js';
import { enqcmd, movdir64b, openRing } from '../dsa/emu/wq.js';
import { Flag, Opcode, STATUS_MASK, Status, statusName } from '../dsa/opcodes.js';
import type { Accelerator, BatchTask } from '../driver.js';
import { countersSince, type AccelCounters } from '../counters.js';
import { loadAddon } from './addon.js';
import { explainWriteError, hwStateWords, writeWq } from './wq.js';
import { H_ERRNO } from './wq-state.js';
import { errnoName } from '../../util/errors.js';
import type { SelftestCheck } from './selftest-report.js';

export const PS = 4096;

function fallbackText(c: AccelCounters): string {
  const parts = Object.entries(c.cpuFallback)
    .filter(([, n]) => n > 0)
    .map(([r, n]) => `${n} ${r}`);
  return parts.length ? `CPU fallback: ${parts.join(', ')}` : 'no CPU fallback';
}

/** Plain words for a fallback reason seen in a check. */
function fallbackAdvice(c: AccelCounters, hw: boolean, wq: string): string[] {
  const out: string[] = [];
  const f = c.cpuFallback;
  if (f.deadline) {
    out.push(
      hw
        ? `the device took descriptors but wrote no completion record before the deadline: check that the device is enabled and not halted (cat /sys/bus/dsa/devices/${wq}/state; accel-config list), and dmesg | grep -i idxd for errors`
        : 'the emulated engines did not complete in time: the machine is overloaded',
    );
  }
  if (f.submitFailed) {
    out.push(
      'the work queue refused every submission: it is full (other users) or disabled; check its occupancy and state (accel-config list)',
    );
  }
  if (f.batchFailure) {
    out.push(
      "the device reported errors on descriptors: run with dmesg open, and check the WQ's max_transfer_size (≥ 4096) and max_batch_size",
    );
  }
  if (f.noSlot) out.push('no descriptor slot was free: earlier requests never completed');
  return out;
}

/** Pages of a block made present (touched), as guest RAM with --mem-prealloc is. */
export function touchedBlock(pages: number): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(pages * PS);
  const u8 = new Uint8Array(sab);
  for (let i = 0; i < sab.byteLength; i += PS) {
    u8[i] = 1;
    u8[i] = 0;
  }
  return sab;
}

/** Zero, one-byte and full pages in a fixed pattern. */
function mixed(sab: SharedArrayBuffer): void {
  const u8 = new Uint8Array(sab);
  const n = sab.byteLength / PS;
  for (let p = 0; p < n; p++) {
    const k = (p * 7) % 5;
    if (k === 1) u8[p * PS + ((p * 131) % PS)] = 1 + (p % 255);
    else if (k === 3) for (let i = 0; i < PS; i += 61) u8[p * PS + i] = (i + p) & 0xff || 1;
    else if (k === 4 && p % 2) u8[p * PS + PS - 1] = 0x80;
  }
}

/** What every check needs: the driver, its batch task, and where results and advice go. */
export interface Ctx {
  accel: Accelerator;
  task: BatchTask;
  hw: boolean;
  wqName: string;
  checks: SelftestCheck[];
  advice: string[];
}

async function checkPages(
  c: Ctx,
  name: string,
  block: SharedArrayBuffer,
  pages: Uint32Array,
  count: number,
  expectDevice = true,
): Promise<AccelCounters> {
  const before = c.accel.counters();
  const results = new Uint8Array(count);
  await c.task.zeroPages(block, pages, count, results);
  const cpu = new Uint8Array(count);
  cpuZeroPages(block, pages, count, cpu, PS);
  const d = countersSince(before, c.accel.counters());
  let wrong = 0;
  for (let i = 0; i < count; i++) if (results[i] !== cpu[i]) wrong++;
  const zeros = cpu.reduce((s, v) => s + v, 0);
  const how = `${d.pagesDevice}/${count} decided by the device, ${fallbackText(d)}`;
  if (wrong) {
    c.checks.push({
      name,
      ok: false,
      detail: `${wrong} of ${count} pages disagree with the CPU (${how})`,
    });
    c.advice.push(
      `${name}: the results disagree with the CPU's — livemig would send wrong pages; please report this with the output of this command`,
    );
  } else if (expectDevice && d.pagesDevice < count) {
    c.checks.push({
      name,
      ok: false,
      detail: `right (${zeros} zero, ${count - zeros} normal), but only ${how}`,
    });
    c.advice.push(...fallbackAdvice(d, c.hw, c.wqName));
  } else {
    c.checks.push({
      name,
      ok: true,
      detail: `${count - zeros} normal, ${zeros} zero, as the CPU says; ${how}`,
    });
  }
  return d;
}

/** One COMPVAL on an address nothing maps: the device must report PAGE_FAULT_NOBOF. */
async function faultCheck(c: Ctx, emu: DsaEmu | undefined, target: AccelTarget): Promise<void> {
  const name = 'COMPVAL on a deliberately faulting address';
  const sab = new SharedArrayBuffer(256);
  const u8 = new Uint8Array(sab);
  const w = new Int32Array(sab);
  const native = loadAddon();
  const h = c.accel.handle.hw[0];
  let base: number;
  let fault: number;
  if (emu && target.type === 'dsa-emu') {
    base = emu.register(sab).base;
    fault = 0x1000; // outside every registered region
  } else if (native && h) {
    base = native.address(u8);
    fault = native.faultAddress(); // a reserved PROT_NONE page
  } else return;
  const off = (64 - (base % 64)) % 64;
  const rec = off + 64;
  const flags = Flag.CRAV | Flag.RCR;
  const recAddr = base + rec;
  writeDescriptorWords(
    w,
    off / 4,
    Opcode.COMPVAL,
    flags,
    recAddr,
    hiWord(recAddr),
    fault,
    hiWord(fault),
    PS,
    0,
  );
  const submit = (): boolean => {
    if (emu && target.type === 'dsa-emu') {
      const dev = emu.device(target.device);
      const q = dev.wq(target.wq);
      const ok = (q.mode === 'shared' ? enqcmd : movdir64b)(
        openRing(q.ring, dev.handle.registers),
        w,
        off / 4,
      );
      if (ok) ringDoorbell(dev.regs.words, q.group);
      return ok;
    }
    if (h.submit === 'write') {
      try {
        return writeWq(h, u8, off, 64) === 64;
      } catch {
        return false;
      }
    }
    const op = h.submit === 'enqcmd' ? 0 : 1;
    return native!.submit(h.portal, op, new Uint8Array(sab, off, 64), 16) > 0;
  };
  let accepted = false;
  for (let i = 0; i < 100 && !accepted; i++) {
    accepted = submit();
    if (!accepted) await sleep(1);
  }
  if (!accepted) {
    c.checks.push({ name, ok: false, detail: 'the work queue did not accept the descriptor' });
    return;
  }
  // A diagnostic waits here, on the main thread, by polling every millisecond (the driver's
  // requests are waited for by dsa_completion).
  const r = rec / 4;
  const end = Date.now() + 2000;
  while ((Atomics.load(w, r + RecWord.STATUS_RESULT) & 0xff) === 0 && Date.now() < end) {
    await sleep(1);
  }
  const status = w[r + RecWord.STATUS_RESULT] & 0xff;
  const code = status & STATUS_MASK;
  const fa = joinAddrNumber(w[r + RecWord.FAULT_LO], w[r + RecWord.FAULT_HI]);
  if (status === 0) {
    c.checks.push({ name, ok: false, detail: 'no completion record within 2 s' });
    c.advice.push(
      c.hw
        ? `the device wrote no completion record for a single descriptor within 2 s: check the device state (cat /sys/bus/dsa/devices/${c.wqName}/state; accel-config list) and dmesg | grep -i idxd`
        : 'the emulated device wrote no completion record within 2 s: the machine is overloaded',
    );
  } else if (code === Status.PAGE_FAULT_NOBOF || code === Status.PAGE_FAULT_IR) {
    c.checks.push({
      name,
      ok: fa >= fault && fa < fault + PS,
      detail: `${statusName(code)} at 0x${fa.toString(16)} (address 0x${fault.toString(16)}), bytes_completed ${w[r + RecWord.BYTES_COMPLETED] >>> 0}: the driver finishes such pages on the CPU`,
    });
  } else {
    c.checks.push({
      name,
      ok: false,
      detail: `status ${statusName(status)} instead of a page fault (PAGE_FAULT_NOBOF)`,
    });
  }
}

/**
 * Every check, in order, on the WQ `c` submits to; `maxBatch` is the most pages one request may
 * carry there (Infinity through write()).
 */
export async function runChecks(
  c: Ctx,
  emu: DsaEmu | undefined,
  t: AccelTarget,
  maxBatch: number,
): Promise<void> {
  const { checks, advice } = c;
  const h = c.accel.handle.hw[0];
  const block = touchedBlock(2048);
  mixed(block);
  // Page 4 is all zero, page 1 has one byte set (see mixed()).
  const zeroPage = [...Array(64).keys()].find((p) =>
    new Uint8Array(block, p * PS, PS).every((b) => b === 0),
  )!;
  const oneByte = [...Array(64).keys()].find((p) => (p * 7) % 5 === 1)!;
  await checkPages(c, 'COMPVAL, a zero page', block, Uint32Array.of(zeroPage), 1);
  const last = touchedBlock(1);
  new Uint8Array(last)[PS - 1] = 1;
  await checkPages(c, 'COMPVAL, a non-zero page (last byte set)', last, Uint32Array.of(0), 1);
  await checkPages(c, 'COMPVAL, a non-zero page (one byte set)', block, Uint32Array.of(oneByte), 1);
  await checkPages(
    c,
    'a batch of 128 pages (zero and non-zero)',
    block,
    Uint32Array.from({ length: 128 }, (_, i) => i),
    128,
  );
  if (maxBatch >= 1024) {
    await checkPages(
      c,
      h?.submit === 'write'
        ? '1024 pages (1024 descriptors, one write())'
        : 'a batch of 1024 pages',
      block,
      Uint32Array.from({ length: 1024 }, (_, i) => 1024 + i),
      1024,
    );
  } else {
    checks.push({
      name: 'a batch of 1024 pages',
      ok: undefined,
      detail: `not run: the WQ's max_batch_size is ${maxBatch}; accel-config config-wq ${t.device}/${t.wq} -c N raises it, up to ${t.device}'s own max_batch_size`,
    });
  }
  await faultCheck(c, emu, t);
  // Through the driver: pages the device cannot touch are finished on the CPU.
  if (emu) {
    const fb = touchedBlock(8);
    mixed(fb);
    emu.injectPageFault(fb, 2 * PS + 100);
    emu.injectPageFault(fb, 5 * PS);
    const d = await checkPages(
      c,
      'page faults inside a batch (injected), finished on the CPU',
      fb,
      Uint32Array.from({ length: 8 }, (_, i) => i),
      8,
      false,
    );
    const last = checks[checks.length - 1];
    if (last.ok && d.cpuFallback.pageFault !== 2) {
      last.ok = false;
      last.detail += ` — expected 2 page faults, saw ${d.cpuFallback.pageFault}`;
    }
    emu.clearPageFaults();
  } else {
    // Memory never touched is not in the page tables: without block-on-fault the device
    // cannot fault it in, and the driver finishes those pages on the CPU.
    const fresh = new SharedArrayBuffer(64 * PS);
    const d = await checkPages(
      c,
      'pages never touched (not yet in the page tables)',
      fresh,
      Uint32Array.from({ length: 64 }, (_, i) => i),
      64,
      false,
    );
    checks[checks.length - 1].detail += d.cpuFallback.pageFault
      ? ` — on this host untouched guest RAM faults on the device: prefault it (livemig run --mem-prealloc); the driver does not set block-on-fault, so the device reports such pages instead of faulting them in`
      : '';
  }
  const errno = h ? Atomics.load(hwStateWords(h), H_ERRNO) : 0;
  if (h && errno) advice.push(explainWriteError(errnoName(errno), h));
}
