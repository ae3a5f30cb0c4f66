// A micro-benchmark of the driver over the emulated device: where the CPU goes per page.
//
//   npm run bench:driver [-- --seconds 2 --packet 128 --runs 3]
//   or: import { benchDriver } from './bench/accel-driver.js'; await benchDriver({ seconds: 2 });
//
// It classifies a populated RAM block packet by packet (one channel, in the calling thread)
// and reports CPU per page of the calling thread (the driver's submission and completion
// work), of the engines and of dsa_completion, each measured by the thread itself, plus the
// cost of the same compares done on the CPU, so that the driver's overhead — everything but
// the compare — can be read off: overheadUsPerPage.

import { Command } from 'commander';
import { pathToFileURL } from 'node:url';
import { cpuZeroPages } from '../accel/cpu-zero.js';
import { DEFAULT_ACCEL_PATH } from '../accel/accel-path.js';
import { DsaEmu } from '../accel/dsa/emu/device.js';
import { openAccelerator, type CompletionMode } from '../accel/driver.js';
import { threadCpuMs } from '../util/thread-cpu.js';
import { integer } from '../cli/options.js';

export interface BenchDriverOptions {
  /** Measuring time (default 2 s). */
  seconds?: number;
  /** RAM block size in MiB (default 256; it is written once, so the pages are populated). */
  blockMiB?: number;
  /** Pages per request (default 128). */
  packetPages?: number;
  /** Fraction of pages that are zero (default 1). */
  zeroFraction?: number;
  engines?: number;
  completion?: CompletionMode;
  /** Requests kept in flight (default 1; 2 = the channel pipelines). */
  inFlight?: number;
}

export interface BenchDriverResult {
  pages: number;
  wallUsPerPage: number;
  /** The calling thread: filling descriptors, submitting, waking, reading records. */
  channelCpuUsPerPage: number;
  enginesCpuUsPerPage: number;
  completionCpuUsPerPage: number;
  /** The same pages checked with cpuZeroPages in the calling thread. */
  cpuCompareUsPerPage: number;
  /** (channel + engines + completion − compare) per page. */
  overheadUsPerPage: number;
  /** dsa_completion CPU / engines CPU. */
  completionShareOfEngines: number;
  pagesDevice: number;
  pagesCpu: number;
}

export async function benchDriver(o: BenchDriverOptions = {}): Promise<BenchDriverResult> {
  const seconds = o.seconds ?? 2;
  const packet = o.packetPages ?? 128;
  const blockBytes = (o.blockMiB ?? 256) * 1024 * 1024;
  const zeroFraction = o.zeroFraction ?? 1;
  const inFlight = Math.max(1, o.inFlight ?? 1);
  const block = new SharedArrayBuffer(blockBytes);
  const u8 = new Uint8Array(block);
  const pagesInBlock = blockBytes / 4096;
  // Populate every page (never-touched memory reads as the kernel's zero page).
  for (let p = 0; p < pagesInBlock; p++) {
    u8[p * 4096] = 1;
    u8[p * 4096] = 0;
    if ((p * 2654435761) % 1000 >= zeroFraction * 1000) u8[p * 4096 + 2048] = 1;
  }
  const emu = await DsaEmu.start({ engines: o.engines });
  const accel = await openAccelerator([DEFAULT_ACCEL_PATH], {
    devices: emu,
    completion: o.completion,
    maxPages: packet,
  });
  try {
    const task = accel.createBatchTask(0, packet);
    const packets = pagesInBlock / packet;
    // Every packet's page list, made before the clock starts: a channel's lists come ready
    // from live_migration, so writing them is no part of the driver's cost.
    const pageNumbers = Uint32Array.from({ length: packets * packet }, (_, i) => i);
    const lists = Array.from({ length: packets }, (_, n) =>
      pageNumbers.subarray(n * packet, (n + 1) * packet),
    );
    const results = Array.from({ length: inFlight }, () => new Uint8Array(packet));
    const runFor = async (ms: number): Promise<number> => {
      const end = performance.now() + ms;
      let next = 0;
      let done = 0;
      const lane = async (k: number) => {
        while (performance.now() < end) {
          await task.zeroPages(block, lists[next++ % packets], packet, results[k]);
          done += packet;
        }
      };
      await Promise.all(results.map((_, k) => lane(k)));
      return done;
    };
    await runFor(200); // warm up
    const cpu0 = await accel.threadCpu();
    const c0 = accel.counters();
    const t0 = performance.now();
    const m0 = threadCpuMs();
    const pages = await runFor(seconds * 1000);
    const m1 = threadCpuMs();
    const t1 = performance.now();
    const cpu1 = await accel.threadCpu();
    const c1 = accel.counters();
    let engines = 0;
    for (const k of Object.keys(cpu1)) if (k.includes('/engine')) engines += cpu1[k] - cpu0[k];
    const completion = cpu1.dsa_completion - cpu0.dsa_completion;
    // The compare alone, on the CPU, over as many pages.
    const r = new Uint8Array(packet);
    const k0 = threadCpuMs();
    for (let done = 0, n = 0; done < pages; done += packet, n++) {
      cpuZeroPages(block, lists[n % packets], packet, r, 4096);
    }
    const compare = threadCpuMs() - k0;
    const us = (ms: number) => (ms * 1000) / pages;
    const channel = m1 - m0;
    return {
      pages,
      wallUsPerPage: us(t1 - t0),
      channelCpuUsPerPage: us(channel),
      enginesCpuUsPerPage: us(engines),
      completionCpuUsPerPage: us(completion),
      cpuCompareUsPerPage: us(compare),
      overheadUsPerPage: us(channel + engines + completion - compare),
      completionShareOfEngines: engines > 0 ? completion / engines : 0,
      pagesDevice: c1.pagesDevice - c0.pagesDevice,
      pagesCpu: c1.pagesCpu - c0.pagesCpu,
    };
  } finally {
    await accel.close();
    await emu.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const values = new Command('npm run bench:driver --')
    .description(
      'the accelerator driver over the emulated DSA: CPU per page of the channel, the engines and dsa_completion',
    )
    .option('--seconds <s>', 'measuring time per run', integer(1, 3600), 2)
    .option('--packet <pages>', 'pages per request', integer(1, 65536), 128)
    .option('--block-mib <MiB>', 'RAM block to classify (populated once)', integer(1, 65536), 128)
    .option('--runs <n>', 'runs', integer(1, 1000), 3)
    .parse(process.argv)
    .opts<{ seconds: number; packet: number; blockMib: number; runs: number }>();
  for (let r = 0; r < values.runs; r++) {
    const res = await benchDriver({
      seconds: values.seconds,
      packetPages: values.packet,
      blockMiB: values.blockMib,
    });
    const f = (v: number) => v.toFixed(3);
    process.stdout.write(
      `channel ${f(res.channelCpuUsPerPage)} µs/page  engines ${f(res.enginesCpuUsPerPage)}  ` +
        `CPU compare ${f(res.cpuCompareUsPerPage)}  wall ${f(res.wallUsPerPage)}  ` +
        `device/CPU pages ${res.pagesDevice}/${res.pagesCpu}\n`,
    );
  }
}
