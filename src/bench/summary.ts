// From runs to per-(scenario, peer, mode) summaries: medians with min-max, per-thread medians,
// and the DSA evaluation's CPU sums.

import { median, stat } from './stats.js';
import {
  MODES,
  SCENARIOS,
  EVALUATION_ROLES,
  type GroupSummary,
  type Mode,
  type Peer,
  type RunRecord,
  type Scenario,
  type Stat,
  type ThreadCpu,
  type ThreadRole,
} from './types.js';

const ROLE_ORDER: readonly ThreadRole[] = [
  'migration',
  'channel',
  'accel-completion',
  'emulated-engine',
  'main',
  'vcpu',
  'other',
];

/** Natural order: by role, then by name with numbers compared as numbers. */
export function compareThreads(a: ThreadCpu, b: ThreadCpu): number {
  const r = ROLE_ORDER.indexOf(a.role) - ROLE_ORDER.indexOf(b.role);
  if (r !== 0) return r;
  return a.name.localeCompare(b.name, 'en', { numeric: true });
}

/** The DSA evaluation's total: live_migration + multifdsend_N (+ dsa_completion), source side. */
export function evaluationTotalMs(threads: ThreadCpu[]): number {
  return threads.filter((t) => EVALUATION_ROLES.includes(t.role)).reduce((s, t) => s + t.ms, 0);
}

/** The emulated device's engines (CPU that DSA hardware would not spend). */
export function engineTotalMs(threads: ThreadCpu[]): number {
  return threads.filter((t) => t.role === 'emulated-engine').reduce((s, t) => s + t.ms, 0);
}

export const FLOOR_LABEL = 'Floor (C, bench:floor)';

export function groupLabel(
  peer: Peer,
  mode: Mode,
  accelPath: string[],
  qemuVersion: string | null,
): string {
  if (peer === 'floor') return FLOOR_LABEL;
  if (peer === 'qemu') {
    const v = qemuVersion ? /^QEMU (\S+)/.exec(qemuVersion)?.[1] : undefined;
    const name = `QEMU${v ? ' ' + v : ''}`;
    return mode === 'baseline' ? name : `${name} ${mode}`;
  }
  switch (mode) {
    case 'baseline':
      return 'Baseline';
    case 'offload':
      return accelPath.length > 0 && accelPath.every((p) => p.startsWith('dsa:'))
        ? 'DSA offload'
        : 'DSA offload (emulated)';
    case 'legacy':
      return 'Legacy';
    case 'none':
      return 'None';
  }
}

const PEER_ORDER: Readonly<Record<Peer, number>> = { livemig: 0, qemu: 10, floor: 20 };

/** a / b of two medians, or null where either is unknown. */
function over(a: Stat | null, b: Stat | null): number | null {
  return a && b && Number.isFinite(a.median) && b.median > 0 ? a.median / b.median : null;
}

/** Each group's medians over the floor's of its scenario, where the floor ran. */
function addFloorRatios(groups: GroupSummary[]): GroupSummary[] {
  for (const g of groups) {
    const f = groups.find((x) => x.peer === 'floor' && x.scenario === g.scenario);
    if (!f || g === f) continue;
    g.toFloor = {
      totalTime: over(g.totalTimeMs, f.totalTimeMs),
      endToEnd: over(g.endToEndMs, f.endToEndMs),
      bothCpu: over(g.bothCpuMs, f.bothCpuMs),
    };
  }
  return groups;
}

function req(s: Stat | null): Stat {
  return s ?? { median: NaN, min: NaN, max: NaN };
}

export function summarize(
  runs: RunRecord[],
  accelPath: string[],
  qemuVersion: string | null,
): GroupSummary[] {
  const keys: { scenario: Scenario; peer: Peer; mode: Mode }[] = [];
  for (const r of runs) {
    if (!keys.some((k) => k.scenario === r.scenario && k.peer === r.peer && k.mode === r.mode)) {
      keys.push({ scenario: r.scenario, peer: r.peer, mode: r.mode });
    }
  }
  const out: GroupSummary[] = [];
  for (const k of keys) {
    const all = runs.filter(
      (r) => r.scenario === k.scenario && r.peer === k.peer && r.mode === k.mode,
    );
    const rs = all.filter((r) => r.status === 'completed');
    if (rs.length === 0) continue;
    const names = new Map<string, ThreadCpu>();
    for (const r of rs) for (const t of r.cpu.source.threads) names.set(t.name, { ...t, ms: 0 });
    const threads = [...names.values()]
      .map((t) => ({
        ...t,
        ms: median(rs.map((r) => r.cpu.source.threads.find((x) => x.name === t.name)?.ms ?? 0)),
      }))
      .sort(compareThreads);
    const srcCpu = rs.map((r) => r.cpu.source.processMs);
    const dstCpu = rs.map((r) => r.cpu.destination.processMs);
    const known = (xs: (number | null)[]): number[] | null =>
      xs.every((x) => x !== null) ? (xs as number[]) : null;
    const src = known(srcCpu);
    const dst = known(dstCpu);
    const downs = rs.map((r) => r.downtimeMs);
    const rss = (xs: (number | null)[]): number | null => {
      const k2 = known(xs);
      return k2 ? Math.max(...k2) : null;
    };
    const ok = rs.filter((r) => r.verify.result === 'ok').length;
    const bad = rs.filter((r) => r.verify.result === 'mismatch').length;
    const methods = [...new Set(rs.map((r) => r.verify.method))].join('+');
    const verified =
      bad > 0
        ? `MISMATCH (${bad}/${rs.length}, ${methods})`
        : ok === rs.length
          ? `ok (${ok}/${rs.length}, ${methods})`
          : ok > 0
            ? `ok ${ok}/${rs.length}, rest not checked (${methods})`
            : 'not checked';
    out.push({
      scenario: k.scenario,
      peer: k.peer,
      mode: k.mode,
      label: groupLabel(k.peer, k.mode, accelPath, qemuVersion),
      completedRuns: rs.length,
      threads,
      evaluationTotalMs: req(stat(rs.map((r) => evaluationTotalMs(r.cpu.source.threads)))),
      totalWithEnginesMs: req(
        stat(
          rs.map(
            (r) => evaluationTotalMs(r.cpu.source.threads) + engineTotalMs(r.cpu.source.threads),
          ),
        ),
      ),
      totalTimeMs: req(stat(rs.map((r) => r.totalTimeMs))),
      endToEndMs: req(stat(rs.map((r) => r.endToEndMs))),
      downtimeMs: stat(downs.every((d) => d !== null) ? (downs as number[]) : []),
      throughputMbps: req(stat(rs.map((r) => r.throughputMbps))),
      transferredBytes: req(stat(rs.map((r) => r.transferredBytes))),
      totalRamBytes: rs[0].totalRamBytes,
      sourceCpuMs: src ? stat(src) : null,
      destinationCpuMs: dst ? stat(dst) : null,
      bothCpuMs: src && dst ? stat(src.map((s, i) => s + dst[i])) : null,
      peakRssKiB: {
        source: rss(rs.map((r) => r.peakRssKiB.source)),
        destination: rss(rs.map((r) => r.peakRssKiB.destination)),
      },
      verified,
    });
  }
  const order = (g: GroupSummary): number =>
    SCENARIOS.indexOf(g.scenario) * 100 + PEER_ORDER[g.peer] + MODES.indexOf(g.mode);
  return addFloorRatios(out.sort((a, b) => order(a) - order(b)));
}
