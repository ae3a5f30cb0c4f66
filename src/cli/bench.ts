// `livemig bench`: the DSA evaluation's scenarios (A and B, baseline against DSA offload, CPU per
// thread and latency) with one command, beside QEMU (--peer qemu) and the machine's floor
// (--peer floor: bench:floor's C migration) when asked, plus a running-guest convergence
// scenario. Tables on stdout, progress on stderr, and optionally a results file (--json), a
// Markdown report (--report) and one SVG chart per scenario.
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, dirname, extname, join, relative } from 'node:path';
import { DEFAULT_ACCEL_PATH, splitAccelPath } from '../accel/accel-path.js';
import { MAX_MULTIFD_CHANNELS } from '../migration/parameters.js';
import { parseSize } from '../util/size.js';
import { checked, integer } from './options.js';
import { Progress } from '../bench/progress.js';
import { charts, markdownReport, terminalReport } from '../bench/report.js';
import { runBench } from '../bench/run-bench.js';
import { runPcBench } from '../bench/pc-bench.js';
import { pcBenchConfig } from '../bench/pc-config.js';
import { validate } from '../bench/schema.js';
import {
  MODES,
  type BenchConfig,
  type BenchResults,
  type Mode,
  type Peer,
  type Scenario,
} from '../bench/types.js';

export interface BenchOptions {
  machine?: string;
  /** default: 4G (synthetic), 256M (pc) */
  ram?: string;
  channels: string;
  runs: string;
  /** synthetic: unmeasured runs first (default 1) */
  warmupRuns?: string;
  /** synthetic: `migrate` as soon as both processes answer */
  atOnce?: boolean;
  /** default: all (synthetic), idle,busy (pc) */
  scenario?: string;
  modes: string;
  workload: string;
  accelPath: string[];
  to?: string;
  toQmp?: string;
  json?: string;
  report?: string;
  charts?: string;
  peer?: string;
  qemu?: string;
  verify: boolean;
  dirtyRates: string;
  maxBandwidth: string;
  downtimeLimit: string;
  convergeTimeout: string;
  /** --machine pc */
  kernel?: string;
  initrd?: string;
  append?: string;
  busyWorkload?: string;
  losslessDowntimeLimit?: string;
  migrationNice?: string;
}

function int(flag: string, text: string, min: number, max: number): number {
  return checked(flag, integer(min, max), text);
}

function list(text: string): string[] {
  return text
    .split(/[\s,]+/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

export function parseScenarios(text: string): { scenarios: Scenario[]; running: boolean } {
  const scenarios: Scenario[] = [];
  let running = false;
  for (const s of list(text)) {
    const u = s.toUpperCase();
    if (u === 'ALL') {
      scenarios.push('A', 'B');
      running = true;
    } else if (u === 'A' || u === 'B') scenarios.push(u);
    else if (u === 'RUNNING') running = true;
    else {
      throw new Error(`invalid --scenario '${s}': expected A, B, running or all (or a list: A,B)`);
    }
  }
  if (scenarios.length === 0 && !running) throw new Error('--scenario names no scenario');
  return { scenarios: [...new Set(scenarios)], running };
}

/** --peer: qemu, floor, or both (a list, or the flag given twice); livemig always runs. */
export function parsePeers(text: string | undefined): Peer[] {
  const peers: Peer[] = ['livemig'];
  for (const p of list(text ?? '')) {
    if (p !== 'qemu' && p !== 'floor') {
      throw new Error(`invalid --peer '${p}': expected qemu or floor (or both: qemu,floor)`);
    }
    if (!peers.includes(p)) peers.push(p);
  }
  return peers;
}

export function parseModes(text: string): Mode[] {
  const out: Mode[] = [];
  for (const m of list(text)) {
    if (m === 'all') out.push(...MODES);
    else if ((MODES as readonly string[]).includes(m)) out.push(m as Mode);
    else {
      throw new Error(
        `invalid --modes entry '${m}': expected ${MODES.join(', ')} (baseline = zero-page-detection=multifd, offload = dsa-accel)`,
      );
    }
  }
  if (out.length === 0) throw new Error('--modes names no mode');
  return [...new Set(out)];
}

/**
 * --warmup-runs: 1 unless given; 0 with --to, whose destination is another machine's (the bench
 * quits it after each migration, and its memory is not this machine's to warm).
 */
function warmupRuns(o: BenchOptions): number {
  if (o.to === undefined) return int('--warmup-runs', o.warmupRuns ?? '1', 0, 100);
  const n = int('--warmup-runs', o.warmupRuns ?? '0', 0, 100);
  if (n > 0) throw new Error('--warmup-runs is for a local destination, not --to');
  return 0;
}

export function benchConfig(o: BenchOptions): BenchConfig {
  const machine = o.machine ?? 'synthetic';
  if (machine === 'pc') {
    if (o.warmupRuns !== undefined || o.atOnce) {
      const flag = o.atOnce ? '--at-once' : '--warmup-runs';
      throw new Error(`${flag} is for --machine synthetic: a PC bench runs after its boots`);
    }
    return pcBenchConfig(o, common(o, '256M'));
  }
  if (machine !== 'synthetic') {
    throw new Error(`invalid --machine '${machine}': expected synthetic or pc`);
  }
  for (const [flag, v] of PC_ONLY.map(([f, k]) => [f, o[k]] as const)) {
    if (v !== undefined) throw new Error(`${flag} is for --machine pc`);
  }
  const ram = o.ram ?? '4G';
  const ramBytes = parseSize(ram, 'M');
  if (ramBytes % 4096 !== 0) throw new Error(`invalid --ram '${ram}': must be a multiple of 4 KiB`);
  const { scenarios, running } = parseScenarios(o.scenario ?? 'all');
  const peers = parsePeers(o.peer);
  if (o.to !== undefined) {
    if (!/^tcp:.+:\d+$/.test(o.to))
      throw new Error(`invalid --to '${o.to}': expected tcp:HOST:PORT`);
    if (!o.toQmp) {
      throw new Error(
        '--to needs --to-qmp ADDR: the QMP address of the remote destination (tcp:HOST:PORT), ' +
          'to read its CPU, compare its RAM and restart it between runs',
      );
    }
  }
  const rates = list(o.dirtyRates).map((r) => {
    const n = Number(r);
    if (!(n > 0)) throw new Error(`invalid --dirty-rates entry '${r}': expected MB/s > 0`);
    return n;
  });
  return {
    ...common(o, ram),
    machine: 'synthetic',
    warmupRuns: warmupRuns(o),
    atOnce: o.atOnce === true,
    pc: null,
    ramBytes,
    scenarios,
    running,
    workload: o.workload,
    to: o.to ?? null,
    toQmp: o.toQmp ?? null,
    peers,
    dirtyRatesMBps: rates,
  };
}

const PC_ONLY: [string, keyof BenchOptions][] = [
  ['--kernel', 'kernel'],
  ['--initrd', 'initrd'],
  ['--append', 'append'],
  ['--busy-workload', 'busyWorkload'],
  ['--lossless-downtime-limit', 'losslessDowntimeLimit'],
  ['--migration-nice', 'migrationNice'],
];

/** What both machines parse alike. */
function common(o: BenchOptions, defaultRam: string) {
  const accelPath = o.accelPath.flatMap(splitAccelPath);
  return {
    ram: o.ram ?? defaultRam,
    channels: int('--channels', o.channels, 1, MAX_MULTIFD_CHANNELS),
    runs: int('--runs', o.runs, 1, 1000),
    modes: parseModes(o.modes),
    accelPath: accelPath.length ? accelPath : [DEFAULT_ACCEL_PATH],
    qemuPath: o.qemu ?? null,
    verify: o.verify,
    maxBandwidthBytesPerSec: parseSize(o.maxBandwidth, 'B'),
    downtimeLimitMs: int('--downtime-limit', o.downtimeLimit, 0, 2_000_000),
    convergeTimeoutMs: int('--converge-timeout', o.convergeTimeout, 1, 86_400) * 1000,
  };
}

function shellQuote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`;
}

/** Why the bench did not fully succeed, or [] when every requested run completed and verified. */
export function problems(r: BenchResults): string[] {
  const out: string[] = [];
  for (const run of r.runs) {
    if (run.status !== 'completed') {
      out.push(
        `${run.scenario} ${run.peer} ${run.mode} run ${run.run}: ${run.status}: ${run.error}`,
      );
    } else if (run.verify.result === 'mismatch') {
      out.push(`${run.scenario} ${run.peer} ${run.mode} run ${run.run}: RAM differs`);
    }
  }
  for (const s of r.skipped.filter((x) => x.severity === 'unavailable')) {
    out.push(`skipped ${s.peer}${s.mode ? ` ${s.mode}` : ''}: ${s.reason}`);
  }
  for (const g of r.running) {
    if (g.verify.result === 'mismatch')
      out.push(`running guest at ${g.dirtyRateMBps} MB/s: RAM differs`);
  }
  return out;
}

export async function benchCommand(o: BenchOptions): Promise<number> {
  const config = benchConfig(o);
  const command = ['livemig', 'bench', ...process.argv.slice(3)].map(shellQuote).join(' ');
  const results =
    config.machine === 'pc'
      ? await runPcBench(config, command, new Progress())
      : await runBench(config, command, new Progress());

  const errs = validate(JSON.parse(JSON.stringify(results)));
  if (errs.length > 0) {
    process.stderr.write(
      `bench: internal error, results do not follow the schema:\n  ${errs.join('\n  ')}\n`,
    );
  }
  process.stdout.write(terminalReport(results));
  if (o.json) {
    writeFileSync(o.json, JSON.stringify(results, null, 2) + '\n');
    process.stderr.write(`bench: results written to ${o.json}\n`);
  }
  const chartDir = o.charts ?? (o.report ? dirname(o.report) : o.json ? dirname(o.json) : null);
  const chartPaths = new Map<Scenario, string>();
  if (chartDir !== null) {
    const prefix = o.report ? basename(o.report, extname(o.report)) : 'bench';
    mkdirSync(chartDir, { recursive: true });
    for (const [scenario, svg] of charts(results)) {
      const file = join(chartDir, `${prefix}-${scenario}.svg`);
      writeFileSync(file, svg);
      chartPaths.set(scenario, o.report ? relative(dirname(o.report), file) : file);
      process.stderr.write(`bench: chart written to ${file}\n`);
    }
  }
  if (o.report) {
    writeFileSync(o.report, markdownReport(results, chartPaths));
    process.stderr.write(`bench: report written to ${o.report}\n`);
  }
  const bad = problems(results);
  if (bad.length > 0) {
    process.stderr.write(`bench: not everything ran:\n  ${bad.join('\n  ')}\n`);
    return 1;
  }
  return 0;
}
