// `livemig accel selftest TARGET`: run a work queue through its paces on the user's own host and
// say in plain words what is wrong when something is.
//
//   TARGET = dsa:/dev/dsa/wqX.Y (a kernel idxd WQ) or dsa-emu:DEVICE/WQ (the emulated device)
//
// 1. Environment (dsa:): the native addon, CPU instructions, kernel, IOMMU parameters,
//    CAP_SYS_RAWIO, the WQ's sysfs attributes, how descriptors will be submitted.
// 2. Checks, each compared with the CPU: COMPVAL on a zero page and on a non-zero page, a
//    128-page batch, a 1024-page batch where the WQ allows it, and a descriptor on a
//    deliberately faulting address (PAGE_FAULT_NOBOF expected), through the same driver
//    migration uses (and the raw descriptor codec for the faulting one).
// 3. Latency and throughput per batch size, and the CPU dsa_completion used meanwhile.

import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { parseAccelPath, type AccelTarget, type DsaTarget } from '../accel-path.js';
import { cpuZeroPages } from '../cpu-zero.js';
import { compval, encodeDescriptor } from '../dsa/descriptor.js';
import { decodeCompletionRecord } from '../dsa/completion.js';
import { DsaEmu } from '../dsa/emu/device.js';
import { WqPortal } from '../dsa/emu/portal.js';
import { Flag, Status } from '../dsa/opcodes.js';
import { openAccelerator, type Accelerator, type BatchTask } from '../driver.js';
import type { AccelCounters } from '../counters.js';
import { checkDsaTarget, type SysfsOptions } from '../sysfs.js';
import { formatBytes } from '../../util/size.js';
import { addonStatus, loadAddon } from './addon.js';
import { cpuSupport, describeCpu } from './cpu.js';
import { explainWriteError, hwStateWords, writeWq, type HwOpenOptions } from './wq.js';
import { H_ERRNO } from './wq-state.js';
import { constants as osConstants } from 'node:os';

export interface SelftestOptions {
  /** dsa-emu: accel-config JSON (parsed) for the emulated devices; default: built in. */
  emuConfig?: unknown;
  sysfs?: SysfsOptions;
  hw?: HwOpenOptions;
  /** Timed requests per batch size (default 200; each size stops after ~0.3 s anyway). */
  iterations?: number;
  /** Per-request deadline (default 1000 ms). */
  deadlineMs?: number;
}

export interface SelftestCheck {
  name: string;
  /** true: passed; false: failed; undefined: not run (see detail). */
  ok: boolean | undefined;
  detail: string;
}

export interface SelftestTiming {
  pages: number;
  requests: number;
  medianUs: number;
  p99Us: number;
  /** GB/s of guest memory checked. */
  gbps: number;
  /** Fraction of the pages the device decided (the rest: CPU fallback). */
  byDevice: number;
}

export interface SelftestResult {
  ok: boolean;
  target: string;
  environment: [string, string][];
  checks: SelftestCheck[];
  timings: SelftestTiming[];
  /** CPU dsa_completion used during the timed requests. */
  completionCpu?: string;
  /** What to fix, in plain words ("note: ..." entries are informational). */
  advice: string[];
  text: string;
}

const PS = 4096;

function delta(a: AccelCounters, b: AccelCounters): AccelCounters {
  const d = JSON.parse(JSON.stringify(b)) as AccelCounters;
  for (const k of Object.keys(d) as (keyof AccelCounters)[]) {
    if (typeof d[k] === 'number') (d as unknown as Record<string, number>)[k] -= a[k] as number;
  }
  for (const r of Object.keys(d.cpuFallback) as (keyof AccelCounters['cpuFallback'])[]) {
    d.cpuFallback[r] -= a.cpuFallback[r];
  }
  return d;
}

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

function readCapSysRawio(): boolean | undefined {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)/m.exec(readFileSync('/proc/self/status', 'utf8'));
    return m ? (BigInt(`0x${m[1]}`) & (1n << 17n)) !== 0n : undefined;
  } catch {
    return undefined;
  }
}

function iommuParams(): { text: string; ok: boolean | undefined } {
  let cmdline: string;
  try {
    cmdline = readFileSync('/proc/cmdline', 'utf8');
  } catch {
    return { text: 'unknown (/proc/cmdline unreadable)', ok: undefined };
  }
  const vals = [...cmdline.matchAll(/(?:^|\s)intel_iommu=(\S+)/g)].flatMap((m) => m[1].split(','));
  const on = vals.includes('on');
  const sm = vals.includes('sm_on');
  if (on && sm) return { text: 'intel_iommu=on,sm_on on the kernel command line', ok: true };
  return {
    text: `intel_iommu=${vals.join(',') || '(not set)'} — shared WQs need the IOMMU on in scalable mode (intel_iommu=on,sm_on), unless the kernel enables it by default (then the device's pasid_enabled is 1)`,
    ok: false,
  };
}

/** Pages of a block made present (touched), as guest RAM with --mem-prealloc is. */
function touchedBlock(pages: number): SharedArrayBuffer {
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

interface Ctx {
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
  const d = delta(before, c.accel.counters());
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
  encodeDescriptor(
    u8,
    off,
    compval({ src: fault, size: PS, flags: Flag.CRAV | Flag.RCR, completionAddr: base + rec }),
  );
  const submit = (): boolean => {
    if (emu && target.type === 'dsa-emu') {
      return new WqPortal(emu.device(target.device).handle, target.wq).submit(u8, off);
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
    if (!accepted) await new Promise((r) => setTimeout(r, 1));
  }
  if (!accepted) {
    c.checks.push({ name, ok: false, detail: 'the work queue did not accept the descriptor' });
    return;
  }
  // A diagnostic waits here, on the main thread, by polling every millisecond (the driver's
  // requests are waited for by dsa_completion).
  const status = new Int32Array(sab, rec, 1);
  const end = Date.now() + 2000;
  while ((Atomics.load(status, 0) & 0xff) === 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 1));
  }
  const r = decodeCompletionRecord(u8, rec);
  const fa = Number(r.faultAddr);
  if (r.status === 0) {
    c.checks.push({ name, ok: false, detail: 'no completion record within 2 s' });
    c.advice.push(
      c.hw
        ? `the device wrote no completion record for a single descriptor within 2 s: check the device state (cat /sys/bus/dsa/devices/${c.wqName}/state; accel-config list) and dmesg | grep -i idxd`
        : 'the emulated device wrote no completion record within 2 s: the machine is overloaded',
    );
  } else if (r.code === Status.PAGE_FAULT_NOBOF || r.code === Status.PAGE_FAULT_IR) {
    const which = r.code === Status.PAGE_FAULT_NOBOF ? 'PAGE_FAULT_NOBOF' : 'PAGE_FAULT_IR';
    c.checks.push({
      name,
      ok: fa >= fault && fa < fault + PS,
      detail: `${which} at 0x${fa.toString(16)} (address 0x${fault.toString(16)}), bytes_completed ${r.bytesCompleted}: the driver finishes such pages on the CPU`,
    });
  } else {
    c.checks.push({
      name,
      ok: false,
      detail: `status 0x${r.status.toString(16)} instead of a page fault (0x03)`,
    });
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
}

async function timing(
  c: Ctx,
  block: SharedArrayBuffer,
  pages: number,
  iterations: number,
): Promise<SelftestTiming> {
  const list = Uint32Array.from({ length: pages }, (_, i) => i);
  const results = new Uint8Array(pages);
  for (let i = 0; i < 3; i++) await c.task.zeroPages(block, list, pages, results);
  const before = c.accel.counters();
  const lat: number[] = [];
  const t0 = performance.now();
  while (lat.length < iterations && performance.now() - t0 < 300) {
    const t = performance.now();
    await c.task.zeroPages(block, list, pages, results);
    lat.push((performance.now() - t) * 1000);
  }
  const total = (performance.now() - t0) / 1000;
  const d = delta(before, c.accel.counters());
  lat.sort((a, b) => a - b);
  return {
    pages,
    requests: lat.length,
    medianUs: percentile(lat, 0.5),
    p99Us: percentile(lat, 0.99),
    gbps: (lat.length * pages * PS) / total / 1e9,
    byDevice: d.pages ? d.pagesDevice / d.pages : 0,
  };
}

/** Run the selftest; never throws for a misconfiguration (it is reported). */
export async function accelSelftest(
  target: string,
  o: SelftestOptions = {},
): Promise<SelftestResult> {
  const environment: [string, string][] = [];
  const checks: SelftestCheck[] = [];
  const timings: SelftestTiming[] = [];
  const advice: string[] = [];
  let completionCpu: string | undefined;
  const result = (): SelftestResult => {
    const ok =
      checks.length > 0 &&
      checks.every((c) => c.ok !== false) &&
      advice.every((a) => a.startsWith('note: '));
    const r = { ok, target, environment, checks, timings, completionCpu, advice, text: '' };
    r.text = formatSelftest(r);
    return r;
  };
  let t: AccelTarget;
  try {
    const list = parseAccelPath([target]);
    t = list[0];
  } catch (e) {
    advice.push((e as Error).message);
    return result();
  }
  const hw = t.type === 'dsa';
  if (hw) {
    const a = addonStatus();
    environment.push([
      'native addon',
      a.available ? `loaded (${a.path})` : `unavailable: ${a.reason}`,
    ]);
    const cpu = cpuSupport();
    environment.push(['CPU', describeCpu(cpu)]);
    environment.push(['kernel', `${release()} (write() submission from 6.10 and backports)`]);
    const iommu = iommuParams();
    environment.push(['IOMMU', iommu.text]);
    const rawio = readCapSysRawio();
    environment.push([
      'CAP_SYS_RAWIO',
      rawio === undefined
        ? 'unknown'
        : rawio
          ? 'yes (the portal may be mapped)'
          : 'no (kernels from 6.10 then refuse to map a Sapphire/Emerald Rapids portal: write() is used)',
    ]);
    const check = await checkDsaTarget(t as DsaTarget, o.sysfs);
    if (check.wq) {
      const w = check.wq;
      environment.push([
        'work queue',
        `${t.device}/${t.wq}: ${w.state ?? '?'}, ${w.mode ?? '?'}, type ${w.type ?? '?'}, driver ${w.driver_name ?? '?'}, size ${w.size ?? '?'}${w.mode === 'shared' ? `, threshold ${w.threshold ?? '?'}` : ''}, max_batch_size ${w.max_batch_size ?? '?'}, max_transfer_size ${w.max_transfer_size !== undefined ? formatBytes(w.max_transfer_size) : '?'}, block_on_fault ${w.block_on_fault ?? '?'}`,
      ]);
    }
    for (const wn of check.warnings) advice.push(`note: ${wn}`);
    if (!check.ok) {
      advice.push(...check.errors);
      if (iommu.ok === false && check.errors.some((e) => /PASID|idxd driver/.test(e)))
        advice.push(`the kernel command line has ${iommu.text}`);
      return result();
    }
    if (!a.available) {
      advice.push(
        `the hardware path is unavailable: ${a.reason}. livemig needs its native addon for real DSA: build it with npm run build:addon (x86-64 Linux, g++ and Node's headers)`,
      );
      return result();
    }
  }
  let emu: DsaEmu | undefined;
  let accel: Accelerator | undefined;
  try {
    if (!hw) emu = await DsaEmu.start({ config: o.emuConfig });
    accel = await openAccelerator([target], {
      devices: emu,
      sysfs: o.sysfs,
      hw: o.hw,
      maxPages: 1024,
      slots: 4,
      deadlineMs: o.deadlineMs ?? 1000,
    });
  } catch (e) {
    advice.push((e as Error).message.replace(/^accel-path \S+ cannot be used: /, ''));
    await emu?.close();
    return result();
  }
  try {
    const h = accel.handle.hw[0];
    let maxBatch: number;
    if (h) {
      environment.push([
        'submission',
        `${h.submit === 'write' ? 'write()' : h.submit.toUpperCase()}: ${h.why}`,
      ]);
      environment.push([
        'completion wait',
        accel.handle.hwWait === 'umwait'
          ? 'UMONITOR/UMWAIT in dsa_completion'
          : 'pause loop with backoff in dsa_completion (no WAITPKG)',
      ]);
      maxBatch = h.submit === 'write' ? Infinity : h.maxBatchSize;
    } else {
      const dev = emu!.device((t as { device: string }).device);
      const q = dev.wq(t.wq);
      environment.push([
        'emulated device',
        `${dev.name}: ${dev.handle.engines.length} engine(s) (worker threads)`,
      ]);
      environment.push([
        'work queue',
        `${t.device}/${t.wq}: ${q.mode}, size ${q.size}, max_batch_size ${q.maxBatchSize}, max_transfer_size ${formatBytes(q.maxTransferSize)}`,
      ]);
      maxBatch = q.maxBatchSize;
    }
    const task = accel.createBatchTask(0, 1024);
    const c: Ctx = { accel, task, hw, wqName: t.wq, checks, advice };
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
    await checkPages(
      c,
      'COMPVAL, a non-zero page (one byte set)',
      block,
      Uint32Array.of(oneByte),
      1,
    );
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
        detail: `not run: the WQ's max_batch_size is ${maxBatch} (accel-config config-wq ${t.device}/${t.wq} -c 1024 allows it)`,
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
    if (h && errno) {
      const code = Object.entries(osConstants.errno).find(([, v]) => v === errno)?.[0];
      advice.push(explainWriteError(code, h));
    }
    // Latency and throughput, all-zero touched pages (the packet sizes migration uses).
    const zeros = touchedBlock(1024);
    const cpu0 = await accel.threadCpu();
    const t0 = performance.now();
    for (const n of [1, 128, 1024]) {
      if (n > 1 && n > maxBatch) continue;
      timings.push(await timing(c, zeros, n, o.iterations ?? 200));
    }
    const wall = performance.now() - t0;
    const cpu1 = await accel.threadCpu();
    const used = cpu1.dsa_completion - cpu0.dsa_completion;
    completionCpu = Number.isFinite(used)
      ? `${used.toFixed(1)} ms of CPU during ${wall.toFixed(0)} ms of timed requests (${((100 * used) / wall).toFixed(1)}%)`
      : 'not measurable here (no /proc/thread-self/schedstat)';
    task.close();
  } finally {
    await accel.close();
    await emu?.close();
  }
  return result();
}

export function formatSelftest(r: Omit<SelftestResult, 'text'>): string {
  const { target, environment, checks, timings, advice, ok } = r;
  const lines: string[] = [`livemig accel selftest ${target}`];
  if (environment.length) {
    lines.push('', 'Environment');
    const w = Math.max(...environment.map(([k]) => k.length));
    for (const [k, v] of environment) lines.push(`  ${k.padEnd(w)}  ${v}`);
  }
  if (checks.length) {
    lines.push('', 'Checks (each result compared with the CPU)');
    for (const c of checks) {
      lines.push(
        `  ${c.ok === undefined ? 'SKIP' : c.ok ? 'PASS' : 'FAIL'}  ${c.name}: ${c.detail}`,
      );
    }
  }
  if (timings.length) {
    lines.push('', 'Latency and throughput (all-zero pages, one channel, one request at a time)');
    lines.push('  pages/request  requests  median µs   p99 µs     GB/s  by the device');
    for (const t of timings) {
      lines.push(
        `  ${String(t.pages).padStart(13)}  ${String(t.requests).padStart(8)}  ${t.medianUs.toFixed(1).padStart(9)}  ${t.p99Us.toFixed(1).padStart(7)}  ${t.gbps.toFixed(2).padStart(7)}  ${(100 * t.byDevice).toFixed(0).padStart(12)}%`,
      );
    }
    if (r.completionCpu) lines.push(`  dsa_completion: ${r.completionCpu}`);
  }
  const fixes = advice.filter((a) => !a.startsWith('note: '));
  const notes = advice.filter((a) => a.startsWith('note: '));
  if (notes.length) {
    lines.push('', 'Notes');
    for (const n of notes) lines.push(`  - ${n.slice(6)}`);
  }
  if (fixes.length) {
    lines.push('', 'What is wrong, and how to fix it');
    for (const a of fixes) lines.push(`  - ${a}`);
  }
  lines.push('', ok ? 'Result: every check passed' : 'Result: FAILED');
  return lines.join('\n');
}
