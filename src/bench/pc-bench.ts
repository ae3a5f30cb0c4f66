// The PC bench's plan (`livemig bench --machine pc`): per peer, one boot serves every run, each
// migration's destination becoming the next source; runs are interleaved (run 1 of every mode
// and peer, then run 2, ...) as in the synthetic bench. While one peer measures, the other
// peer's guest is stopped, so that the two emulators do not share this machine's cores. A run
// whose guest failed a check ends that chain: the next run boots again.

import { setTimeout as sleep } from 'node:timers/promises';
import { LIVEMIG_VERSION } from '../control/version.js';
import { machineInfo } from './machine-info.js';
import { ModeUnavailableError } from './livemig-runner.js';
import { startCopyLoop } from './pc-guest.js';
import { LivemigPcSession, type PcBootSpec } from './pc-livemig.js';
import { QEMU_PC_BINARY, qemuPcModeRefusal, QemuPcSession } from './pc-qemu.js';
import { pcRun } from './pc-run.js';
import { type PcSession } from './pc-session.js';
import { Progress } from './progress.js';
import {
  findQemu,
  probeQemu,
  qemuInstallHint,
  QemuModeUnavailableError,
  type QemuInfo,
} from './qemu-peer.js';
import { failedRun } from './run-bench.js';
import { summarize } from './summary.js';
import {
  PC_SCENARIOS,
  RESULTS_SCHEMA_ID,
  type BenchConfig,
  type BenchResults,
  type PcResults,
  type PcScenario,
  type Peer,
  type RunRecord,
  type Skip,
} from './types.js';

/** idle: how long a guest runs, nothing else, after the check file is written. */
export const IDLE_BEFORE_MS = 3000;
/** busy: the window over which the rate before the migration is measured. */
export const BUSY_BEFORE_MS = 3000;
/** busy: how long the cp loop runs after it starts before the first run's window. */
export const BUSY_SETTLE_MS = 3000;
/** busy: the most each run waits for the guest's copy rate to be steady before its window. */
export const BUSY_STEADY_MAX_MS = 20_000;
const BOOT_TIMEOUT_MS = 120_000;

export function pcRunLine(r: RunRecord): string {
  const head = `${r.scenario} ${r.peer === 'qemu' ? 'QEMU ' : ''}${r.mode} run ${r.run}`;
  if (r.status !== 'completed') return `${head}: ${r.status}${r.error ? `: ${r.error}` : ''}`;
  const p = r.pc;
  const parts = [
    `total ${r.totalTimeMs} ms`,
    `downtime ${r.downtimeMs ?? '-'} ms`,
    `guest paused ${p?.guestPausedMs ?? '-'} ms (${p?.verifyPauseMs ?? '-'} of it checking RAM)`,
    `passes ${r.passes}`,
  ];
  if (p?.progress) parts.push(`progress ${(p.progress.ratio * 100).toFixed(0)}%`);
  parts.push(
    `RAM ${r.verify.result}${p?.differingPages ? ` (${p.differingPages} pages differ)` : ''}`,
  );
  return `${head}: ${parts.join(', ')}`;
}

export async function runPcBench(
  config: BenchConfig,
  command: string,
  progress = new Progress(),
): Promise<BenchResults> {
  const pc = config.pc!;
  const runs: RunRecord[] = [];
  const skipped: Skip[] = [];
  const out: PcResults = { boots: [], freshZeroShare: [] };
  let qemu: QemuInfo | null = null;
  let qemuZpd = '';
  if (config.peers.includes('qemu')) {
    qemu = await findQemu(config.qemuPath, QEMU_PC_BINARY);
    if (qemu?.advice) progress.line(`bench: ${qemu.advice}`);
    if (!qemu) {
      const reason = qemuInstallHint(QEMU_PC_BINARY);
      skipped.push({ severity: 'unavailable', peer: 'qemu', mode: null, scenario: null, reason });
      progress.line(`bench: ${reason}`);
    } else {
      qemuZpd = await probeQemu(qemu);
    }
  }
  const peers: Peer[] = qemu ? ['livemig', 'qemu'] : ['livemig'];
  const boot: PcBootSpec = {
    ram: config.ram,
    ramBytes: config.ramBytes,
    kernel: pc.kernel,
    initrd: pc.initrd,
    append: pc.append,
    bootTimeoutMs: BOOT_TIMEOUT_MS,
  };
  const sessions = new Map<Peer, PcSession>();
  const state = new Map<Peer, { paused: boolean; loop: boolean; migrations: number }>();
  const unavailable = new Set<string>();
  const zeroShareOf = (peer: Peer) => out.freshZeroShare.find((z) => z.peer === peer);

  const session = async (peer: Peer, scenario: PcScenario): Promise<PcSession> => {
    let s = sessions.get(peer);
    if (!s) {
      progress.line(`bench: booting the ${peer === 'qemu' ? 'QEMU' : 'livemig'} PC`);
      s =
        peer === 'qemu' ? await QemuPcSession.boot(qemu!, boot) : await LivemigPcSession.boot(boot);
      sessions.set(peer, s);
      state.set(peer, { paused: false, loop: false, migrations: 0 });
      out.boots.push({ peer, scenario, ms: Math.round(s.bootMs) });
      progress.line(
        `bench: ${peer} booted to the guest's shell in ${(s.bootMs / 1000).toFixed(1)} s`,
      );
    }
    const st = state.get(peer)!;
    if (st.paused) {
      await s.resume();
      st.paused = false;
    }
    if (scenario !== 'idle' && !st.loop) {
      await startCopyLoop(s.source.console, pc.busyWorkload);
      st.loop = true;
      await sleep(BUSY_SETTLE_MS);
    }
    return s;
  };
  const drop = async (peer: Peer): Promise<void> => {
    const s = sessions.get(peer);
    sessions.delete(peer);
    await s?.close().catch(() => {});
  };

  const scenarios = PC_SCENARIOS.filter((s) => config.scenarios.includes(s));
  progress.begin(scenarios.length * config.runs * config.modes.length * peers.length);
  let checkId = 1;
  try {
    for (const scenario of scenarios) {
      const limit = scenario === 'lossless' ? pc.losslessDowntimeLimitMs : config.downtimeLimitMs;
      for (let run = 1; run <= config.runs; run++) {
        for (const mode of config.modes) {
          for (const peer of peers) {
            progress.task(
              `${scenario} ${peer === 'qemu' ? 'QEMU ' : ''}${mode} run ${run}/${config.runs}`,
            );
            if (unavailable.has(`${peer}:${mode}`)) continue;
            let r: RunRecord;
            try {
              // Known before booting: QEMU 7.2 has only its baseline.
              const refused = peer === 'qemu' ? qemuPcModeRefusal(mode, qemu!.version) : null;
              if (refused) throw new QemuModeUnavailableError(refused);
              const s = await session(peer, scenario);
              const fresh = state.get(peer)!.migrations === 0;
              const { record, after } = await pcRun({
                session: s,
                scenario,
                mode,
                run,
                checkId: checkId++,
                channels: config.channels,
                accelPath: config.accelPath,
                verify: config.verify,
                downtimeLimitMs: limit,
                migrationNice: pc.migrationNice ?? 0,
                convergeTimeoutMs: config.convergeTimeoutMs,
                beforeMs: scenario === 'idle' ? IDLE_BEFORE_MS : BUSY_BEFORE_MS,
                steadyMaxMs: BUSY_STEADY_MAX_MS,
                onProgress: (i) => progress.update(i),
              });
              r = record;
              state.get(peer)!.migrations++;
              if (fresh && scenario === 'idle' && r.status === 'completed' && !zeroShareOf(peer)) {
                out.freshZeroShare.push({
                  peer,
                  zeroPages: r.zeroPages,
                  normalPages: r.normalPages,
                  extraPages: Math.max(0, r.zeroPages + r.normalPages - r.totalRamBytes / 4096),
                  share: r.pc!.zeroShare,
                });
              }
              if (after === 'chain') await s.next();
              else if (after === 'new-destination') await s.newDestination();
              else await drop(peer);
            } catch (e) {
              if (e instanceof ModeUnavailableError || e instanceof QemuModeUnavailableError) {
                unavailable.add(`${peer}:${mode}`);
                const severity =
                  e instanceof QemuModeUnavailableError ? 'not-applicable' : 'unavailable';
                skipped.push({ severity, peer, mode, scenario: null, reason: e.message });
                progress.line(`bench: ${peer} mode ${mode} skipped: ${e.message}`);
                continue;
              }
              const version = peer === 'qemu' ? qemu!.version : `livemig ${LIVEMIG_VERSION}`;
              r = failedRun(scenario, peer, version, mode, run, (e as Error).message);
              await drop(peer);
            }
            // The other peer measures next: this one's guest waits, stopped.
            const s = sessions.get(peer);
            if (s && peers.length > 1) {
              await s.pause().then(
                () => (state.get(peer)!.paused = true),
                () => drop(peer),
              );
            }
            runs.push(r);
            progress.line(pcRunLine(r));
          }
        }
      }
    }
  } finally {
    for (const peer of [...sessions.keys()]) await drop(peer);
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
    running: [],
    skipped,
    pc: out,
  };
}
