// The benchmark's outputs: the terminal text (the DSA evaluation's ASCII tables), the Markdown
// report (the same tables, the charts, the machine), and one SVG chart per scenario.

import {
  comparisonLines,
  cpuTable,
  latencyTable,
  processTable,
  renderAscii,
  renderMarkdown,
  runningTable,
  type TableModel,
} from './format.js';
import {
  DOWNTIME_DEFINITIONS,
  pcHeadLines,
  pcPeerLine,
  pcScenarioExtras,
  pcSetupLine,
  pcTargetLines,
} from './pc-report.js';
import { engineTotalMs, FLOOR_LABEL, groupLabel } from './summary.js';
import { FLOOR_IDLE_MS } from './floor-run.js';
import { chartBars, stackedBarSvg } from './svg.js';
import {
  isPcScenario,
  SCENARIOS,
  SCENARIO_TITLE,
  type BenchResults,
  type RunRecord,
  type Scenario,
  type Skip,
} from './types.js';

function gib(bytes: number): string {
  return `${(bytes / 1024 ** 3).toFixed(1)} GiB`;
}

function setupLine(r: BenchResults): string {
  const c = r.config;
  const guest =
    c.workload === 'none'
      ? 'source guest stopped (-S) and preallocated (--mem-prealloc)'
      : `source guest running workload ${c.workload}, preallocated`;
  const where = c.to
    ? `destination ${c.to} (remote)`
    : 'source and destination as two local processes';
  const when = c.atOnce
    ? '`migrate` sent as soon as both processes of a run answered (--at-once)'
    : '`migrate` sent once both processes of a run had settled (their start-up CPU done, at most 3 s)';
  return (
    `RAM ${c.ram}, ${c.channels} multifd channels, ${c.runs} run${c.runs === 1 ? '' : 's'} ` +
    `(medians, min–max in parentheses), ${guest}, ${where}, ${when}`
  );
}

function machineLine(r: BenchResults): string {
  const m = r.machine;
  return `${m.cpuModel}, ${m.cores} cores, ${gib(m.memoryBytes)}, Node.js ${m.node}, Linux ${m.kernel}`;
}

interface ScenarioSection {
  scenario: Scenario;
  cpu: TableModel;
  cpuLines: string[];
  latency: TableModel;
  latencyLines: string[];
  processes: TableModel;
  /** --peer floor: every group's medians as multiples of the floor's */
  floorLines: string[];
  notes: string[];
  /** --machine pc: every run, and what goes under that table */
  pcRuns: { table: TableModel; lines: string[] } | null;
}

function runLabel(r: BenchResults): (run: RunRecord) => string {
  return (run) => groupLabel(run.peer, run.mode, r.config.accelPath, r.qemu?.version ?? null);
}

export const ENGINE_NOTE =
  "Rows marked (emulated device) are the emulated DSA's engine threads: CPU this machine spent " +
  'emulating the device, which DSA hardware would not spend.';

export const FLOOR_NOTE =
  `${FLOOR_LABEL}: bench/floor/loopback-floor.c moves the same guest between two processes over ` +
  'the same channels with no copy in user space and no protocol beyond page offsets: what this ' +
  'machine needs at least. floor_send_N and floor_recv_N are its sender and receiver threads ' +
  '(their own CPU clocks); it has no downtime and reports no RSS. It starts sending ' +
  `${FLOOR_IDLE_MS / 1000} s after populating its source, so that its destination, like ` +
  "livemig's, does not fill its RAM from memory the run before it has only just freed " +
  '(docs/benchmarks.md).';

function sections(r: BenchResults): ScenarioSection[] {
  const out: ScenarioSection[] = [];
  for (const scenario of SCENARIOS) {
    const groups = r.summary.filter((g) => g.scenario === scenario);
    const pcRuns = pcScenarioExtras(r, scenario, runLabel(r));
    if (groups.length === 0 && !pcRuns) continue;
    const lines = comparisonLines(groups);
    if (isPcScenario(scenario)) {
      // The PC's target against QEMU is "no worse", not the synthetic guest's 0.5×.
      const base = groups.find((g) => g.peer === 'livemig' && g.mode === 'baseline');
      lines.latency = lines.latency.filter(
        (l) =>
          !groups.some((g) => g.peer === 'qemu' && l.startsWith(`${base?.label} vs ${g.label}:`)),
      );
      for (const q of groups.filter((g) => g.peer === 'qemu')) {
        if (base) lines.latency.push(pcPeerLine(base, q, r.runs));
      }
    }
    const notes = [
      'totaltime: live_migration + multifdsend_N (+ dsa_completion), as the DSA evaluation adds them up.',
    ];
    if (groups.some((g) => engineTotalMs(g.threads) > 0)) notes.push(ENGINE_NOTE);
    if (groups.some((g) => g.peer === 'floor')) notes.push(FLOOR_NOTE);
    if (groups.some((g) => g.peer === 'qemu')) {
      notes.push(
        `QEMU's threads are sampled from /proc every 10 ms (QEMU does not account CPU per thread); ` +
          `its zero pages: ${r.qemu?.zeroPageDetection ?? 'n/a'}. Its "total time" is its source's; ` +
          '"until destination done" waits for the destination to finish loading.',
      );
    }
    out.push({
      scenario,
      cpu: cpuTable(groups),
      cpuLines: lines.cpu,
      latency: latencyTable(groups),
      latencyLines: lines.latency,
      processes: processTable(groups),
      floorLines: lines.floor,
      notes,
      pcRuns,
    });
  }
  return out;
}

function runningLine(r: BenchResults): string {
  const c = r.config;
  return (
    `The source guest (${c.ram}, zero pages except what the workload writes) runs the stress ` +
    `workload at each dirty rate (its 100 MB range, at most), migrated over ${c.channels} multifd ` +
    `channels under max-bandwidth ${c.maxBandwidthBytesPerSec} bytes/s and downtime-limit ` +
    `${c.downtimeLimitMs} ms; a migration still iterating after ${c.convergeTimeoutMs / 1000} s ` +
    'is cancelled. The measured dirty rate counts distinct pages dirtied per second in the last pass.'
  );
}

function skipLine(s: Skip): string {
  const what = `${s.peer}${s.mode ? ` ${s.mode}` : ''}${s.scenario ? ` (${s.scenario})` : ''}`;
  return `${s.severity === 'not-applicable' ? 'Not applicable' : 'Skipped'}: ${what}: ${s.reason}`;
}

function isPc(r: BenchResults): boolean {
  return r.config.machine === 'pc';
}

/** What `livemig bench` prints on stdout. */
export function terminalReport(r: BenchResults): string {
  const out: string[] = [
    `livemig bench: ${isPc(r) ? pcSetupLine(r) : r.config.scenarios.length > 0 ? setupLine(r) : `RAM ${r.config.ram}`}`,
    `Machine: ${machineLine(r)}`,
    '',
  ];
  if (isPc(r)) {
    out.push(...pcHeadLines(r), '', 'What downtime measures:');
    out.push(...DOWNTIME_DEFINITIONS.map((d) => `  ${d}`), '');
  }
  for (const s of sections(r)) {
    out.push(`== ${SCENARIO_TITLE[s.scenario]} ==`, '', 'CPU usage (source, ms)');
    out.push(renderAscii(s.cpu), ...s.cpuLines, '', 'Latency', renderAscii(s.latency));
    out.push(...s.latencyLines, '', 'Both processes', renderAscii(s.processes));
    out.push(...s.floorLines);
    if (s.pcRuns) out.push('', 'Every run', renderAscii(s.pcRuns.table), ...s.pcRuns.lines);
    out.push(...s.notes.map((n) => `Note: ${n}`), '');
  }
  if (isPc(r)) {
    const t = pcTargetLines(r);
    if (t.length) out.push("== livemig against the issue's targets ==", '', ...t, '');
  }
  if (r.running.length > 0) {
    out.push('== Running guest (stress workload, multifd) ==', '');
    out.push(renderAscii(runningTable(r.running)), `Note: ${runningLine(r)}`, '');
  }
  for (const s of r.skipped) out.push(skipLine(s));
  return out.join('\n').trimEnd() + '\n';
}

/** One SVG per scenario that has results. */
export function charts(r: BenchResults): Map<Scenario, string> {
  const out = new Map<Scenario, string>();
  for (const scenario of SCENARIOS) {
    const groups = r.summary.filter((g) => g.scenario === scenario);
    if (groups.length === 0) continue;
    const hasEngines = groups.some((g) => engineTotalMs(g.threads) > 0);
    out.set(
      scenario,
      stackedBarSvg(
        `${SCENARIO_TITLE[scenario]}: CPU per thread (ms, ${r.config.ram}, ${r.config.channels} channels)`,
        chartBars(groups, r.runs),
        hasEngines
          ? 'Hatched: the emulated DSA device engines (CPU that DSA hardware does not spend).'
          : undefined,
      ),
    );
  }
  return out;
}

/** The Markdown report; `chartPaths` maps scenarios to chart paths relative to the report. */
export function markdownReport(r: BenchResults, chartPaths: Map<Scenario, string>): string {
  const m = r.machine;
  const c = r.config;
  const out: string[] = ['# livemig bench', ''];
  out.push(`Run on ${r.createdAt}:`, '', '```sh', r.command, '```', '');
  out.push('## Machine', '');
  out.push(
    renderMarkdown({
      head: ['', ''],
      groups: [
        [
          ['CPU model', m.cpuModel],
          ['Cores', String(m.cores)],
          ['Memory', gib(m.memoryBytes)],
          ['Node.js', m.node],
          ['Kernel', `${m.platform} ${m.kernel}`],
          ['livemig', `${m.livemig}${m.gitCommit ? ` (${m.gitCommit})` : ''}`],
          ['DSA devices', m.dsaDevices.length ? m.dsaDevices.join(', ') : 'none'],
          ['QEMU', r.qemu ? `${r.qemu.version} (${r.qemu.path})` : 'not used'],
          ['Floor', r.runs.find((x) => x.peer === 'floor')?.peerVersion ?? 'not used'],
        ],
      ],
    }),
    '',
  );
  out.push('## Configuration', '');
  if (isPc(r)) {
    out.push(pcSetupLine(r) + '.', '');
    for (const l of pcHeadLines(r)) out.push(`- ${l}`);
    out.push('', '### What downtime measures', '');
    for (const d of DOWNTIME_DEFINITIONS) out.push(`- ${d}`);
    out.push('');
  } else if (c.scenarios.length > 0) out.push(setupLine(r) + '.', '');
  out.push(
    `Modes: ${c.modes.join(', ')}${c.modes.includes('offload') ? `; accel-path ${c.accelPath.join(' ')}` : ''}.`,
    '',
  );
  for (const s of sections(r)) {
    out.push(`## ${SCENARIO_TITLE[s.scenario]}`, '');
    out.push('### CPU usage (source threads, ms)', '', renderMarkdown(s.cpu), '');
    for (const l of s.cpuLines) out.push(`- ${l}`);
    if (s.cpuLines.length) out.push('');
    const chart = chartPaths.get(s.scenario);
    if (chart) out.push(`![${SCENARIO_TITLE[s.scenario]}: CPU per thread](${chart})`, '');
    out.push('### Latency', '', renderMarkdown(s.latency), '');
    for (const l of s.latencyLines) out.push(`- ${l}`);
    if (s.latencyLines.length) out.push('');
    out.push('### Both processes', '', renderMarkdown(s.processes), '');
    for (const l of s.floorLines) out.push(`- ${l}`);
    if (s.floorLines.length) out.push('');
    if (s.pcRuns) {
      out.push('### Every run', '', renderMarkdown(s.pcRuns.table), '');
      for (const l of s.pcRuns.lines) out.push(`- ${l}`);
      if (s.pcRuns.lines.length) out.push('');
    }
    for (const n of s.notes) out.push(`> ${n}`, '>');
    if (s.notes.length) out.pop();
    out.push('');
  }
  if (r.running.length > 0) {
    out.push('## Running guest (stress workload, multifd)', '');
    out.push(runningLine(r), '', renderMarkdown(runningTable(r.running)), '');
  }
  const targets = isPc(r) ? pcTargetLines(r) : [];
  if (targets.length > 0) {
    out.push("## livemig against the issue's targets", '');
    for (const t of targets) out.push(`- ${t}`);
    out.push('');
  }
  if (r.skipped.length > 0) {
    out.push('## Skipped', '');
    for (const s of r.skipped) out.push(`- ${skipLine(s)}`);
    out.push('');
  }
  out.push(
    'How to read these tables, and what the emulated device can and cannot show: ' +
      "docs/benchmarks.md in livemig's source tree.",
    '',
  );
  return out.join('\n');
}
