// What `livemig accel selftest` found, and the text it prints: the environment, each check
// against the CPU, latency and throughput per batch size, and what to fix.

import { listLines, tableLines } from '../../util/table.js';

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

export function formatSelftest(r: Omit<SelftestResult, 'text'>): string {
  const { target, environment, checks, timings, advice, ok } = r;
  const lines: string[] = [`livemig accel selftest ${target}`];
  if (environment.length) {
    lines.push('', 'Environment');
    lines.push(...listLines(environment, '  '));
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
    const head = ['pages/request', 'requests', 'median µs', 'p99 µs', 'GB/s', 'by the device'];
    const rows = timings.map((t) => [
      t.pages,
      t.requests,
      t.medianUs.toFixed(1),
      t.p99Us.toFixed(1),
      t.gbps.toFixed(2),
      `${(100 * t.byDevice).toFixed(0)}%`,
    ]);
    lines.push(
      ...tableLines(
        head,
        rows,
        '  ',
        head.map(() => 'right'),
      ),
    );
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
