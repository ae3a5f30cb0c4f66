// The benchmark plan: every scenario, every run, every mode, for livemig and (with --peer qemu)
// QEMU, and (with --peer floor) the machine's floor once per run, interleaved (run 1 of every
// mode and peer, then run 2, ...) so that drifting machine load does not favour one of them,
// after unmeasured warm-up runs of each (--warmup-runs): on a VM whose host takes back memory
// that stayed free, the first migration after an idle spell pays for it, and the first peer in
// the order would always be that one; then the running-guest scenario at each dirty rate.

import { LIVEMIG_VERSION } from '../control/version.js';
import { machineInfo } from './machine-info.js';
import { compileFloor, floorRamMiB, type FloorBinary } from './floor-run.js';
import { runFloorPeer } from './floor-peer.js';
import { ModeUnavailableError, runLivemig } from './livemig-runner.js';
import { Progress } from './progress.js';
import {
  findQemu,
  probeQemu,
  QEMU_INSTALL_HINT,
  QemuModeUnavailableError,
  runQemu,
  type QemuInfo,
} from './qemu-peer.js';
import { runRunning } from './running.js';
import { summarize } from './summary.js';
import {
  isPcScenario,
  RESULTS_SCHEMA_ID,
  SCENARIO_RATIO,
  type BenchConfig,
  type BenchResults,
  type Mode,
  type Peer,
  type RunRecord,
  type Scenario,
  type Skip,
  type SyntheticScenario,
} from './types.js';

/** A run that threw before producing query-migrate results (e.g. a process died). */
export function failedRun(
  scenario: Scenario,
  peer: Peer,
  peerVersion: string,
  mode: Mode,
  run: number,
  error: string,
): RunRecord {
  const side = { processMs: null, threads: [], threadSource: 'none' as const };
  return {
    scenario,
    normalPageRatio: scenario === 'A' || scenario === 'B' ? SCENARIO_RATIO[scenario] : null,
    peer,
    peerVersion,
    mode,
    zeroPageDetection: 'n/a',
    run,
    status: 'failed',
    error,
    totalTimeMs: 0,
    endToEndMs: 0,
    downtimeMs: null,
    setupTimeMs: null,
    throughputMbps: 0,
    transferredBytes: 0,
    totalRamBytes: 0,
    normalPages: 0,
    zeroPages: 0,
    passes: 0,
    cpu: { source: side, destination: side },
    peakRssKiB: { source: null, destination: null },
    verify: { method: 'none', result: 'not-checked' },
    accel: null,
    raw: { source: {}, destination: {} },
  };
}

function runLine(r: RunRecord): string {
  const what = r.peer === 'floor' ? 'floor' : `${r.peer === 'qemu' ? 'qemu ' : ''}${r.mode}`;
  const head = `${r.scenario} ${what} run ${r.run}`;
  if (r.status !== 'completed') return `${head}: ${r.status}${r.error ? `: ${r.error}` : ''}`;
  const cpu = (ms: number | null): string => (ms === null ? 'n/a' : (ms / 1000).toFixed(2));
  return (
    `${head}: total ${r.totalTimeMs} ms, downtime ${r.downtimeMs ?? '-'} ms, ` +
    `CPU src ${cpu(r.cpu.source.processMs)} s + dst ${cpu(r.cpu.destination.processMs)} s, ` +
    `RAM ${r.verify.result === 'not-checked' ? 'not checked' : r.verify.result}`
  );
}

export async function runBench(
  config: BenchConfig,
  command: string,
  progress = new Progress(),
): Promise<BenchResults> {
  const runs: RunRecord[] = [];
  const skipped: Skip[] = [];
  const unavailable = new Map<string, string>();
  let qemu: QemuInfo | null = null;
  let qemuZpd = '';
  if (config.peers.includes('qemu')) {
    qemu = await findQemu(config.qemuPath);
    if (qemu?.advice) progress.line(`bench: ${qemu.advice}`);
    if (!qemu) {
      skipped.push({
        severity: 'unavailable',
        peer: 'qemu',
        mode: null,
        scenario: null,
        reason: QEMU_INSTALL_HINT,
      });
      progress.line(`bench: ${QEMU_INSTALL_HINT}`);
    } else {
      qemuZpd = await probeQemu(qemu);
      if (config.to) {
        progress.line('bench: the QEMU peer runs on this machine (loopback), not against --to');
      }
    }
  }
  const scenarios = config.scenarios.filter((s): s is SyntheticScenario => !isPcScenario(s));
  const floor = config.peers.includes('floor') && scenarios.length > 0 ? findFloor(config) : null;
  if (floor && 'reason' in floor) {
    skipped.push({
      severity: 'unavailable',
      peer: 'floor',
      mode: null,
      scenario: null,
      reason: floor.reason,
    });
    progress.line(`bench: the floor is skipped: ${floor.reason}`);
  } else if (floor && config.to) {
    progress.line('bench: the floor runs on this machine (loopback), not against --to');
  }
  const floorBin = floor && !('reason' in floor) ? floor : null;
  const perRun = config.modes.length * (qemu ? 2 : 1) + (floorBin ? 1 : 0);
  const warmup = config.warmupRuns ?? 0;
  progress.begin(
    scenarios.length * (warmup + config.runs) * perRun +
      (config.running ? config.dirtyRatesMBps.length : 0),
  );
  /** Run `run` of `config.runs` for the task line; warm-ups (run ≤ 0) are not counted. */
  const which = (run: number): string =>
    run >= 1 ? `run ${run}/${config.runs}` : `warm-up ${run + warmup}/${warmup}`;
  const keep = (r: RunRecord): void => {
    if (r.run >= 1) runs.push(r);
    progress.line(runLine(r) + (r.run >= 1 ? '' : ' (warm-up, not counted)'));
  };
  for (const scenario of scenarios) {
    for (let run = 1 - warmup; run <= config.runs; run++) {
      for (const mode of config.modes) {
        for (const peer of ['livemig', 'qemu'] as const) {
          if (peer === 'qemu' && !qemu) continue;
          const key = `${peer}:${mode}`;
          progress.task(`${scenario} ${peer === 'qemu' ? 'QEMU ' : ''}${mode} ${which(run)}`);
          if (unavailable.has(key)) continue;
          let r: RunRecord;
          try {
            r =
              peer === 'livemig'
                ? await runLivemig({
                    ram: config.ram,
                    scenario,
                    mode,
                    run,
                    channels: config.channels,
                    accelPath: config.accelPath,
                    workload: config.workload,
                    verify: config.verify,
                    atOnce: config.atOnce,
                    to: config.to && config.toQmp ? { uri: config.to, qmp: config.toQmp } : null,
                    onProgress: (i) => progress.update(i),
                  })
                : await runQemu({
                    qemu: qemu!,
                    ramBytes: config.ramBytes,
                    scenario,
                    mode,
                    run,
                    channels: config.channels,
                    verify: config.verify,
                    atOnce: config.atOnce,
                    onProgress: (i) => progress.update(i),
                  });
          } catch (e) {
            if (e instanceof ModeUnavailableError || e instanceof QemuModeUnavailableError) {
              unavailable.set(key, e.message);
              skipped.push({
                severity: e instanceof QemuModeUnavailableError ? 'not-applicable' : 'unavailable',
                peer,
                mode,
                scenario: null,
                reason: e.message,
              });
              progress.line(`bench: ${peer} mode ${mode} skipped: ${e.message}`);
              continue;
            }
            r = failedRun(
              scenario,
              peer,
              peer === 'qemu' ? qemu!.version : `livemig ${LIVEMIG_VERSION}`,
              mode,
              run,
              (e as Error).message,
            );
          }
          keep(r);
        }
      }
      if (floorBin) {
        progress.task(`${scenario} floor ${which(run)}`);
        const r = await runFloorPeer({
          floor: floorBin,
          ramBytes: config.ramBytes,
          scenario,
          run,
          channels: config.channels,
        }).catch((e: Error) =>
          failedRun(scenario, 'floor', floorBin.version, 'baseline', run, e.message),
        );
        keep(r);
      }
    }
  }
  const running = [];
  if (config.running) {
    for (const rate of config.dirtyRatesMBps) {
      progress.task(`running guest, stress at ${rate} MB/s`);
      try {
        const r = await runRunning({
          ram: config.ram,
          ramBytes: config.ramBytes,
          channels: config.channels,
          dirtyRateMBps: rate,
          maxBandwidthBytesPerSec: config.maxBandwidthBytesPerSec,
          downtimeLimitMs: config.downtimeLimitMs,
          timeCapMs: config.convergeTimeoutMs,
          verify: config.verify,
          onProgress: (i) => progress.update(i),
        });
        running.push(r);
        progress.line(
          `running guest at ${rate} MB/s: ${r.converged ? `converged after ${r.passes} passes, downtime ${r.downtimeMs} ms` : `did not converge (${r.passes} passes, expected downtime ${r.expectedDowntimeMs ?? 'n/a'} ms)`}`,
        );
      } catch (e) {
        skipped.push({
          severity: 'unavailable',
          peer: 'livemig',
          mode: 'baseline',
          scenario: 'running',
          reason: `stress at ${rate} MB/s: ${(e as Error).message}`,
        });
        progress.line(`running guest at ${rate} MB/s failed: ${(e as Error).message}`);
      }
    }
  }
  progress.end();
  return {
    schema: RESULTS_SCHEMA_ID,
    createdAt: new Date().toISOString(),
    command,
    machine: machineInfo(),
    config,
    qemu: qemu ? { path: qemu.path, version: qemu.version, zeroPageDetection: qemuZpd } : null,
    runs,
    summary: summarize(runs, config.accelPath, qemu?.version ?? null),
    running,
    skipped,
  };
}

/** The floor's program, compiled, or why it cannot run here. */
function findFloor(config: BenchConfig): FloorBinary | { reason: string } {
  try {
    floorRamMiB(config.ramBytes);
    return compileFloor();
  } catch (e) {
    return { reason: `${(e as Error).message} (livemig bench: name the compiler with CC)` };
  }
}
