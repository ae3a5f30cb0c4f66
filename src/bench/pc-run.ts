// One PC migration with its checks: write a file in the guest's /tmp, let the guest run (busy:
// count its copies for the rate before), migrate, then on the destination's console check that
// the shell answers, the file has the same sha256, and (busy) the cp loop goes on; the record
// says what the chain does next. A failed check makes a failed run with what the console showed.

import { setTimeout as sleep } from 'node:timers/promises';
import { type RunRecord, type GuestCheck, type Mode, type PcScenario } from './types.js';
import { attempt, checkFileSha, shellAnswers, writeCheckFile } from './pc-guest.js';
import {
  CopyTracker,
  progressAcross,
  progressPrecopy,
  rateWithin,
  waitSteady,
} from './pc-progress.js';
import { type PcMigration, type PcSession } from './pc-session.js';

export interface PcRunSpec {
  session: PcSession;
  scenario: PcScenario;
  mode: Mode;
  run: number;
  /** names the check file, /tmp/lm-check-ID */
  checkId: number;
  channels: number;
  accelPath: string[];
  verify: boolean;
  downtimeLimitMs: number;
  migrationNice: number;
  convergeTimeoutMs: number;
  /** idle: how long the guest runs after the file is written; busy: the window of the rate before */
  beforeMs: number;
  /** busy: the most to wait for a steady copy rate before that window */
  steadyMaxMs: number;
  onProgress?: (info: Record<string, unknown>) => void;
}

/** What the chain does after a run: go on from the destination, retry, or boot again. */
export type After = 'chain' | 'new-destination' | 'reboot';

/** The first line of a guest kernel's oops or panic on the console. */
export const KERNEL_FAULT =
  /(Kernel panic - not syncing|BUG|Oops|general protection fault)\b[^\r\n]*/;

/** How long the destination's cp loop may take to print its first copy. */
const PROGRESS_TIMEOUT_MS = 20_000;

export async function pcRun(spec: PcRunSpec): Promise<{ record: RunRecord; after: After }> {
  const s = spec.session;
  const busy = spec.scenario !== 'idle';
  const sha = await writeCheckFile(s.source.console, spec.checkId);
  const srcTracker = busy ? new CopyTracker(s.source.console) : null;
  const dstTracker = busy ? new CopyTracker(s.dest.console) : null;
  try {
    let steadyNote = '';
    if (srcTracker) {
      const ok = await waitSteady(srcTracker, {
        minMs: 2000,
        maxMs: spec.steadyMaxMs,
        stepMs: 1500,
        tolerance: 0.2,
      });
      if (!ok) steadyNote = ` (its rate was not steady after ${spec.steadyMaxMs} ms)`;
    }
    const windowStart = Date.now();
    await sleep(spec.beforeMs);
    const before = srcTracker ? rateWithin(srcTracker.completions, windowStart, Date.now()) : null;
    if (srcTracker && !before) {
      throw new Error(
        `the guest's cp loop printed fewer than two copies in the ${spec.beforeMs} ms before ` +
          `the migration${steadyNote}; console:\n${tail(s.source.console.lines())}`,
      );
    }
    const mark = s.dest.console.mark();
    const m = await s.migrate({
      mode: spec.mode,
      channels: spec.channels,
      accelPath: spec.accelPath,
      verify: spec.verify,
      downtimeLimitMs: spec.downtimeLimitMs,
      migrationNice: spec.migrationNice,
      convergeTimeoutMs: spec.convergeTimeoutMs,
      onProgress: spec.onProgress,
    });
    const completed = m.info.status === 'completed' && m.dinfo.status === 'completed';
    const problems: string[] = [];
    let shell: GuestCheck = 'not-checked';
    let file: GuestCheck = 'not-checked';
    let progress = null;
    if (completed) {
      const c = s.dest.console;
      // The progress first: the checks below run commands in the guest, beside its cp loop.
      if (srcTracker && dstTracker && before) {
        const runningAt = m.resumeAt ?? m.tEnd;
        const b = await dstTracker.firstAfter(srcTracker.maxN, runningAt, PROGRESS_TIMEOUT_MS);
        if (!b) {
          problems.push(
            `the cp loop printed no copy at the destination within ${PROGRESS_TIMEOUT_MS} ms; ` +
              `console:\n${tail(c.lines())}`,
          );
        }
        progress = progressAcross(
          srcTracker.completions,
          dstTracker.completions,
          before,
          m.t0,
          runningAt,
          m.verifyPauseMs ?? 0,
        );
        const precopy =
          m.stopAt !== null
            ? progressPrecopy(srcTracker.completions, before, m.t0, m.stopAt)
            : null;
        if (progress && precopy) progress = { ...progress, ...precopy };
      }
      const alive = await attempt(shellAnswers(c));
      shell = alive.ok ? 'ok' : 'failed';
      // A kernel that oopsed or panicked says so first: the shell's silence is its consequence.
      const fault = KERNEL_FAULT.exec(c.text(mark));
      if (fault) problems.unshift(`the destination's kernel reported "${fault[0].trim()}"`);
      if (!alive.ok) problems.push(`the destination's shell did not answer: ${alive.error}`);
      const now = alive.ok ? await attempt(checkFileSha(c, spec.checkId)) : null;
      file = now?.ok && now.value === sha ? 'ok' : now ? 'failed' : 'not-checked';
      if (now && !now.ok) problems.push(`no sha256 of the check file: ${now.error}`);
      if (now?.ok && now.value !== sha)
        problems.push(`the check file's sha256 changed: ${sha} before, ${now.value} after`);
    }
    const record = pcRecord(spec, s, m, { shell, file, problems, progress });
    let after: After = 'chain';
    if (!completed) {
      const src = await attempt(shellAnswers(s.source.console));
      after = src.ok ? 'new-destination' : 'reboot';
      if (!src.ok) record.error = `${record.error ?? ''}; and the source's shell: ${src.error}`;
    } else if (problems.length > 0 || record.verify.result === 'mismatch') {
      // A guest that failed a check, or whose RAM differs, is not migrated on.
      after = 'reboot';
    }
    return { record, after };
  } finally {
    await Promise.all([srcTracker?.stop(), dstTracker?.stop()]);
  }
}

function tail(lines: string[]): string {
  return lines
    .slice(-10)
    .map((l) => `  | ${l}`)
    .join('\n');
}

interface Checks {
  shell: GuestCheck;
  file: GuestCheck;
  problems: string[];
  progress: ReturnType<typeof progressAcross>;
}

/** The common fields from the migration, the PC's from the checks. */
export function pcRecord(spec: PcRunSpec, s: PcSession, m: PcMigration, c: Checks): RunRecord {
  const ram = m.info.ram ?? {};
  const lm = m.info.livemig ?? {};
  const ds = lm['dirty-sync'] as Record<string, number> | undefined;
  const zero = ram.duplicate ?? 0;
  const normal = ram.normal ?? 0;
  const completed = m.info.status === 'completed' && m.dinfo.status === 'completed';
  let status = String(m.info.status);
  let error = m.info['error-desc'] !== undefined ? String(m.info['error-desc']) : null;
  if (m.info.status === 'completed' && !completed) {
    status = 'failed';
    error = `the destination ended ${String(m.dinfo.status ?? 'without completing')}`;
  } else if (m.cancelled && !completed) {
    error = `did not converge within ${spec.convergeTimeoutMs / 1000} s; cancelled`;
  } else if (c.problems.length > 0) {
    status = 'failed';
    error = `the migration completed, but ${c.problems.join('; ')}`;
  }
  return {
    scenario: spec.scenario,
    normalPageRatio: null,
    peer: s.peer,
    peerVersion: s.version,
    mode: spec.mode,
    zeroPageDetection: m.zeroPageDetection,
    run: spec.run,
    status,
    error,
    totalTimeMs: Number(m.info['total-time'] ?? 0),
    endToEndMs: Math.max(0, m.tEnd - m.t0),
    downtimeMs: typeof m.info.downtime === 'number' ? m.info.downtime : null,
    setupTimeMs: typeof m.info['setup-time'] === 'number' ? m.info['setup-time'] : null,
    throughputMbps: ram.mbps ?? 0,
    transferredBytes: ram.transferred ?? 0,
    totalRamBytes: ram.total ?? 0,
    normalPages: normal,
    zeroPages: zero,
    passes: ram['dirty-sync-count'] ?? 0,
    cpu: m.cpu,
    peakRssKiB: m.peakRssKiB,
    verify: m.verify,
    accel:
      lm.accelerator && typeof lm.accelerator === 'object'
        ? (lm.accelerator as Record<string, unknown>)
        : null,
    raw: { source: m.info, destination: m.dinfo },
    pc: {
      downtimeLimitMs: spec.downtimeLimitMs,
      dirtySync: ds
        ? {
            count: ds.count ?? 0,
            totalMs: ds['total-ms'] ?? 0,
            meanMs: perSync(ds, 'total-ms'),
            maxMs: ds['max-ms'] ?? 0,
            meanCpuMs: perSync(ds, 'cpu-total-ms'),
            maxCpuMs: ds['cpu-max-ms'] ?? 0,
            pagesFound: ds['pages-found'] ?? 0,
          }
        : null,
      guestPausedMs:
        m.resumeAt !== null && m.stopAt !== null ? Math.round(m.resumeAt - m.stopAt) : null,
      verifyPauseMs: m.verifyPauseMs === null ? null : Math.round(m.verifyPauseMs),
      shell: c.shell,
      file: c.file,
      checkError: c.problems.length > 0 ? c.problems.join('; ') : null,
      progress: c.progress,
      differingPages: m.differingPages,
      zeroShare: zero + normal > 0 ? Math.round((zero / (zero + normal)) * 10000) / 10000 : 0,
    },
  };
}

/** A total of livemig['dirty-sync'] per sync, to 0.01 ms (0 with no sync). */
function perSync(ds: Record<string, number>, total: 'total-ms' | 'cpu-total-ms'): number {
  return ds.count ? Math.round(((ds[total] ?? 0) / ds.count) * 100) / 100 : 0;
}
