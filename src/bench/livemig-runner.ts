// One livemig migration for `livemig bench`: source and destination as two local processes
// (LocalPair), or a local source against a remote `livemig run --incoming` (--to, --to-qmp).
// The source guest is stopped (-S) and preallocated (--mem-prealloc) unless a workload runs.

import { setTimeout as sleep } from 'node:timers/promises';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LocalPair, startGuest, stopGuest, type GuestProcess } from '../harness/local-migration.js';
import { QmpClient, QmpCommandError, type QmpEvent } from '../control/qmp-client.js';
import { LIVEMIG_VERSION } from '../control/version.js';
import { processCpuMs, procStatusKiB } from './proc.js';
import {
  MODE_ZERO_PAGE_DETECTION,
  SCENARIO_RATIO,
  threadRole,
  type Mode,
  type RunRecord,
  type SyntheticScenario,
  type SideCpu,
  type ThreadCpu,
  type VerifyMethod,
} from './types.js';

export const TERMINAL = ['completed', 'failed', 'cancelled'];

/** The mode cannot run in this build or with this accel-path (e.g. dsa-accel not supported). */
export class ModeUnavailableError extends Error {
  constructor(
    readonly mode: Mode,
    message: string,
  ) {
    super(message);
    this.name = 'ModeUnavailableError';
  }
}

export interface LivemigRunSpec {
  ram: string;
  scenario: SyntheticScenario;
  mode: Mode;
  run: number;
  channels: number;
  accelPath: string[];
  /** 'none': the source guest is stopped (-S), as in the DSA evaluation. */
  workload: string;
  verify: boolean;
  /** `migrate` as soon as both processes answer, not once their start-up work has settled */
  atOnce?: boolean;
  /** Remote destination: the migration URI, and its QMP address. */
  to?: { uri: string; qmp: string } | null;
  onProgress?: (info: Record<string, unknown>) => void;
}

export type Info = Record<string, unknown> & {
  status?: string;
  ram?: Record<string, number>;
  livemig?: Record<string, unknown>;
};

export function eventTimeMs(e: QmpEvent): number {
  return e.timestamp.seconds * 1000 + e.timestamp.microseconds / 1000;
}

export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

/** Wait until the processes' CPU stops moving (start-up work done), at most `maxMs`. */
export async function settle(pids: number[], maxMs = 3000): Promise<void> {
  const end = Date.now() + maxMs;
  let last = pids.map(processCpuMs);
  while (Date.now() < end) {
    await sleep(150);
    const now = pids.map(processCpuMs);
    if (now.every((v, i) => v - last[i] <= 10)) return;
    last = now;
  }
}

/** Migration threads of a `thread-cpu-ms` map (main and vCPU are counted in the process total). */
export function migrationThreads(cpu: Record<string, number> | undefined): ThreadCpu[] {
  return Object.entries(cpu ?? {})
    .map(([name, ms]) => ({ name, role: threadRole(name), ms }))
    .filter((t) => t.role !== 'main' && t.role !== 'vcpu');
}

/** One side's CPU, as livemig's query-migrate accounts its threads. */
export function livemigSideCpu(info: Info, processMs: number | null): SideCpu {
  const cpu = info.livemig?.['thread-cpu-ms'] as Record<string, number> | undefined;
  return { processMs, threads: migrationThreads(cpu), threadSource: 'query-migrate' };
}

interface Endpoint {
  qmp: QmpClient;
  pid: number | null;
}

async function configure(src: QmpClient, dst: QmpClient, spec: LivemigRunSpec): Promise<void> {
  const inMigrationVerify = spec.verify && spec.workload !== 'none';
  const capabilities = [
    { capability: 'multifd', state: true },
    { capability: 'events', state: true },
    { capability: 'x-verify-ram', state: inMigrationVerify },
  ];
  await src.execute('migrate-set-capabilities', { capabilities });
  await dst.execute('migrate-set-capabilities', { capabilities });
  const params: Record<string, unknown> = {
    'multifd-channels': spec.channels,
    'zero-page-detection': MODE_ZERO_PAGE_DETECTION[spec.mode],
  };
  if (spec.mode === 'offload') params['accel-path'] = spec.accelPath;
  try {
    await src.execute('migrate-set-parameters', params);
  } catch (e) {
    if (e instanceof QmpCommandError) throw new ModeUnavailableError(spec.mode, e.desc);
    throw e;
  }
}

/**
 * Let both processes settle, configure, migrate at once, wait for both ends: parameters set
 * right before `migrate`, as users' scripts do, so whatever `migrate-set-parameters` starts
 * (for offload, the emulated device's engine threads and their warm-up) runs inside the
 * measured window if the migration waits for it. Process CPU counts from `migrate` until the
 * destination is done.
 */
async function measure(
  src: Endpoint,
  dst: Endpoint,
  prepare: () => Promise<string>,
  spec: LivemigRunSpec,
): Promise<RunRecord> {
  const pids = [src.pid, dst.pid].filter((p): p is number => p !== null);
  if (!spec.atOnce) await settle(pids);
  const uri = await prepare();
  const cpu0 = { src: processCpuMs(src.pid!), dst: dst.pid ? processCpuMs(dst.pid) : 0 };
  dst.qmp.clearEvents();
  const t0 = nowMs();
  try {
    await src.qmp.execute('migrate', { uri });
  } catch (e) {
    // Refused before it started (e.g. the accel-path cannot be opened): every run would be.
    if (e instanceof QmpCommandError) throw new ModeUnavailableError(spec.mode, e.desc);
    throw e;
  }
  let info: Info;
  for (;;) {
    info = await src.qmp.execute<Info>('query-migrate');
    spec.onProgress?.(info);
    if (TERMINAL.includes(String(info.status))) break;
    await sleep(50);
  }
  // The destination completes a moment after the source has its acknowledgement. Its MIGRATION
  // event's timestamp is when; a remote destination's clock is not ours, so poll it instead.
  let dinfo: Info = {};
  let tEnd = nowMs();
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    dinfo = await dst.qmp.execute<Info>('query-migrate');
    tEnd = nowMs();
    if (dinfo.status === 'completed' || dinfo.status === 'failed' || info.status !== 'completed')
      break;
    await sleep(10);
  }
  if (dst.pid !== null && dinfo.status === 'completed') {
    const ev = await dst.qmp
      .waitEvent('MIGRATION', (e) => e.data?.status === 'completed', 1000)
      .catch(() => null);
    if (ev) tEnd = Math.min(tEnd, eventTimeMs(ev));
  }
  const cpu1 = { src: processCpuMs(src.pid!), dst: dst.pid ? processCpuMs(dst.pid) : 0 };
  const peak = {
    source: procStatusKiB(src.pid!, 'VmHWM'),
    destination: dst.pid ? procStatusKiB(dst.pid, 'VmHWM') : null,
  };

  let method: VerifyMethod = 'none';
  let result: 'ok' | 'mismatch' | 'not-checked' = 'not-checked';
  if (spec.verify && info.status === 'completed') {
    if (spec.workload !== 'none') {
      method = 'x-verify-ram';
      result = info.livemig?.verify === 'ok' ? 'ok' : 'mismatch';
    } else {
      // Outside the measured window: SHA-256 of both guests' RAM, which neither has changed
      // since (the source stays stopped, the destination's guest runs no workload).
      method = 'digest';
      const [a, b] = await Promise.all([
        src.qmp.execute<{ digest: string }>('x-query-ram-digest'),
        dst.qmp.execute<{ digest: string }>('x-query-ram-digest'),
      ]);
      result = a.digest === b.digest ? 'ok' : 'mismatch';
    }
  }
  const ram = info.ram ?? {};
  const lm = info.livemig ?? {};
  const accel = lm.accelerator;
  return {
    scenario: spec.scenario,
    normalPageRatio: SCENARIO_RATIO[spec.scenario],
    peer: 'livemig',
    peerVersion: `livemig ${LIVEMIG_VERSION}`,
    mode: spec.mode,
    zeroPageDetection: String(lm['zero-page-detection'] ?? MODE_ZERO_PAGE_DETECTION[spec.mode]),
    run: spec.run,
    status: String(info.status),
    error: info['error-desc'] !== undefined ? String(info['error-desc']) : null,
    totalTimeMs: Number(info['total-time'] ?? 0),
    endToEndMs: Math.max(0, tEnd - t0),
    downtimeMs: typeof info.downtime === 'number' ? info.downtime : null,
    setupTimeMs: typeof info['setup-time'] === 'number' ? info['setup-time'] : null,
    throughputMbps: ram.mbps ?? 0,
    transferredBytes: ram.transferred ?? 0,
    totalRamBytes: ram.total ?? 0,
    normalPages: ram.normal ?? 0,
    zeroPages: ram.duplicate ?? 0,
    passes: ram['dirty-sync-count'] ?? 0,
    cpu: {
      source: livemigSideCpu(info, cpu1.src - cpu0.src),
      destination: livemigSideCpu(dinfo, dst.pid ? cpu1.dst - cpu0.dst : null),
    },
    peakRssKiB: peak,
    verify: { method, result },
    accel: accel && typeof accel === 'object' ? (accel as Record<string, unknown>) : null,
    raw: { source: info, destination: dinfo },
  };
}

/** One migration; throws ModeUnavailableError when the mode's parameters are refused. */
export async function runLivemig(spec: LivemigRunSpec): Promise<RunRecord> {
  const paused = spec.workload === 'none';
  if (spec.to) return runRemote(spec, spec.to);
  const pair = await LocalPair.start({
    ram: spec.ram,
    normalPageRatio: SCENARIO_RATIO[spec.scenario],
    workload: spec.workload,
    sourcePaused: paused,
    memPrealloc: true,
  });
  try {
    return await measure(
      { qmp: pair.source.qmp, pid: pair.source.proc.pid! },
      { qmp: pair.dest.qmp, pid: pair.dest.proc.pid! },
      async () => {
        await configure(pair.source.qmp, pair.dest.qmp, spec);
        return pair.incomingUri();
      },
      spec,
    );
  } finally {
    await pair.close();
  }
}

// ---------------------------------------------------------------------------------------------
// Remote destination

interface SourceProcess extends GuestProcess {
  dir: string;
}

async function startSource(args: string[]): Promise<SourceProcess> {
  const dir = mkdtempSync(join(tmpdir(), 'livemig-bench-'));
  try {
    // Preallocating a large guest comes before its QMP socket opens.
    return { ...(await startGuest(dir, 'src', args, { qmpTimeoutMs: 120_000 })), dir };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

async function stopSource(s: SourceProcess): Promise<void> {
  await stopGuest(s);
  await s.qmp.close().catch(() => {});
  rmSync(s.dir, { recursive: true, force: true });
}

/** Ask a remote destination to quit, and wait until its QMP connection closes. */
export async function quitRemote(qmp: QmpClient): Promise<void> {
  if (qmp.closed) return;
  const closed = new Promise<void>((r) => qmp.once('close', () => r()));
  await qmp.execute('quit').catch(() => {});
  await Promise.race([closed, sleep(10_000)]);
  await qmp.close().catch(() => {});
}

async function runRemote(
  spec: LivemigRunSpec,
  to: { uri: string; qmp: string },
): Promise<RunRecord> {
  const args = ['--ram', spec.ram, '--normal-page-ratio', String(SCENARIO_RATIO[spec.scenario])];
  args.push('--workload', spec.workload, '--mem-prealloc');
  if (spec.workload === 'none') args.push('-S');
  const source = await startSource(args);
  let dqmp: QmpClient | null = null;
  try {
    // A destination is used once (its guest runs afterwards); the bench quits it after each
    // migration, and waits here for the next one, which the remote side restarts in a loop.
    dqmp = await QmpClient.connect(to.qmp, { timeoutMs: 120_000 });
    await dqmp.negotiate();
    const state = await dqmp.execute<Info>('query-migrate');
    if (state.status === 'completed') {
      throw new Error(
        `the destination at ${to.qmp} has already received a migration; restart it ` +
          '(run it in a loop, see docs/benchmarks.md)',
      );
    }
    const dst = dqmp;
    return await measure(
      { qmp: source.qmp, pid: source.proc.pid! },
      { qmp: dst, pid: null },
      async () => {
        await configure(source.qmp, dst, spec);
        return to.uri;
      },
      spec,
    );
  } finally {
    if (dqmp) await quitRemote(dqmp);
    await stopSource(source);
  }
}
