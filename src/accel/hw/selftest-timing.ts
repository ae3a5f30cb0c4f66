// The selftest's timed part: latency and throughput per batch size on all-zero touched pages,
// one request at a time, and the CPU dsa_completion used meanwhile.

import { countersSince } from '../counters.js';
import { PS, touchedBlock, type Ctx } from './selftest-checks.js';
import type { SelftestTiming } from './selftest-report.js';

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
  const d = countersSince(before, c.accel.counters());
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

/**
 * Time requests of 1, 128 and 1024 pages (those `maxBatch` allows) into `timings`. Returns what
 * dsa_completion's CPU did meanwhile, in words.
 */
export async function measureTimings(
  c: Ctx,
  maxBatch: number,
  iterations: number,
  timings: SelftestTiming[],
): Promise<string> {
  // All-zero touched pages: the packet sizes migration uses.
  const zeros = touchedBlock(1024);
  const cpu0 = await c.accel.threadCpu();
  const t0 = performance.now();
  for (const n of [1, 128, 1024]) {
    if (n > 1 && n > maxBatch) continue;
    timings.push(await timing(c, zeros, n, iterations));
  }
  const wall = performance.now() - t0;
  const cpu1 = await c.accel.threadCpu();
  const used = cpu1.dsa_completion - cpu0.dsa_completion;
  return Number.isFinite(used)
    ? `${used.toFixed(1)} ms of CPU during ${wall.toFixed(0)} ms of timed requests (${((100 * used) / wall).toFixed(1)}%)`
    : 'not measurable here (no /proc/thread-self/schedstat)';
}
