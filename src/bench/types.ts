// The data model of `livemig bench`: what one migration run records, and the whole results
// file that `--json` writes. docs/bench-schema.md documents it field by field, and
// src/bench/schema.ts holds the JSON Schema the file is checked against.

export const RESULTS_SCHEMA_ID = 'livemig-bench/2';

/** A: 50% normal pages; B: 100% zero pages (the DSA evaluation's two scenarios). */
export type SyntheticScenario = 'A' | 'B';
/**
 * --machine pc: idle (a freshly booted Linux guest, nothing running), busy (a cp loop), and
 * lossless (busy under a tiny downtime-limit, many dirty syncs: is anything lost?).
 */
export type PcScenario = 'idle' | 'busy' | 'lossless';
export type Scenario = SyntheticScenario | PcScenario;
export const SCENARIOS: readonly Scenario[] = ['A', 'B', 'idle', 'busy', 'lossless'];
export const PC_SCENARIOS: readonly PcScenario[] = ['idle', 'busy', 'lossless'];
export const SCENARIO_RATIO: Readonly<Record<SyntheticScenario, number>> = { A: 0.5, B: 0 };
export const SCENARIO_TITLE: Readonly<Record<Scenario, string>> = {
  A: 'Scenario A: 50% normal pages',
  B: 'Scenario B: 100% zero pages',
  idle: 'PC idle: a freshly booted Linux guest',
  busy: 'PC busy: the guest copying a file in a loop',
  lossless: 'PC nothing lost: busy guest, tiny downtime-limit',
};

export function isPcScenario(s: Scenario): s is PcScenario {
  return (PC_SCENARIOS as readonly string[]).includes(s);
}

/** baseline: zero-page-detection=multifd; offload: dsa-accel; legacy; none. */
export type Mode = 'baseline' | 'offload' | 'legacy' | 'none';
export const MODES: readonly Mode[] = ['baseline', 'offload', 'legacy', 'none'];
export const MODE_ZERO_PAGE_DETECTION: Readonly<Record<Mode, string>> = {
  baseline: 'multifd',
  offload: 'dsa-accel',
  legacy: 'legacy',
  none: 'none',
};

/** floor: bench:floor's C migration (bench/floor/loopback-floor.c), the machine's yardstick. */
export type Peer = 'livemig' | 'qemu' | 'floor';

/**
 * What a thread does, so that tables and charts can group threads of either peer:
 * migration (live_migration), channel (multifdsend_N / multifdrecv_N), accel-completion
 * (dsa_completion), emulated-engine (dsa0/engine0.N: the emulated device's CPU, which DSA
 * hardware would not spend), main, vcpu, other.
 */
export type ThreadRole =
  'migration' | 'channel' | 'accel-completion' | 'emulated-engine' | 'main' | 'vcpu' | 'other';

export interface ThreadCpu {
  name: string;
  role: ThreadRole;
  ms: number;
}

export interface SideCpu {
  /** CPU ms of the whole process during the migration (null: not measurable, e.g. remote). */
  processMs: number | null;
  /** Per-thread CPU ms, as the threads account for it (livemig) or as sampled (QEMU). */
  threads: ThreadCpu[];
  /** How `threads` was measured (thread-clock: the floor's threads read their own CPU clock). */
  threadSource: 'query-migrate' | 'proc-sampled' | 'thread-clock' | 'none';
}

export type VerifyMethod = 'digest' | 'x-verify-ram' | 'byte-compare' | 'none';

export interface RunRecord {
  scenario: Scenario;
  /** The synthetic guest's share of normal pages; null for a PC (its guest decides). */
  normalPageRatio: number | null;
  peer: Peer;
  /** "livemig 0.1.0", "QEMU 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)" */
  peerVersion: string;
  mode: Mode;
  /** The zero-page-detection in effect, as the source reported it, or how QEMU checks. */
  zeroPageDetection: string;
  /** 1-based run number within (scenario, peer, mode). */
  run: number;
  status: string;
  error: string | null;
  /** The source's query-migrate total-time. */
  totalTimeMs: number;
  /** From the `migrate` command until the destination reported completed (wall clock). */
  endToEndMs: number;
  downtimeMs: number | null;
  setupTimeMs: number | null;
  throughputMbps: number;
  transferredBytes: number;
  totalRamBytes: number;
  normalPages: number;
  zeroPages: number;
  passes: number;
  cpu: { source: SideCpu; destination: SideCpu };
  peakRssKiB: { source: number | null; destination: number | null };
  verify: { method: VerifyMethod; result: 'ok' | 'mismatch' | 'not-checked' };
  /** The accelerator's counters from the source's query-migrate (offload runs), else null. */
  accel: Record<string, unknown> | null;
  /** Both sides' final query-migrate, verbatim. */
  raw: { source: Record<string, unknown>; destination: Record<string, unknown> };
  /** --machine pc only: what the PC bench measures beyond the common fields. */
  pc?: PcRunInfo;
}

/** The guest's progress (completed copies of its cp loop) before and across a migration. */
export interface ProgressInfo {
  /** Copies completed in the window before `migrate`, over that window (between completions). */
  beforeCopies: number;
  beforeMs: number;
  /** copies per second before */
  beforeRate: number;
  /**
   * The window containing the migration: from the last copy completed before `migrate` to the
   * first completed after the guest runs at the destination; minus `excludedMs`, the pause
   * the bench itself added to check RAM (the guest would have run then).
   */
  duringCopies: number;
  windowMs: number;
  excludedMs: number;
  duringRate: number;
  /** duringRate / beforeRate */
  ratio: number;
  /**
   * The guest's own progress while the migration ran on the source (from `migrate` to the vCPU
   * stop, `precopyMs`): `precopyCopies` completed then; `precopyWork` copies (fractional: the
   * copy under way at `migrate` counts the share left of it) from `migrate` to the last copy
   * completed before the stop (`precopyWorkMs`), against what the rate before would have done
   * in that time (`precopyRatio`; whole copies over `precopyMs` when no copy completed inside).
   */
  precopyMs?: number;
  precopyCopies?: number;
  precopyRatio?: number;
  precopyWork?: number;
  precopyWorkMs?: number;
}

export type GuestCheck = 'ok' | 'failed' | 'not-checked';

export interface PcRunInfo {
  downtimeLimitMs: number;
  /**
   * livemig: what finding changed pages took (livemig['dirty-sync']): its time per sync, and
   * the CPU of the threads that compared (not the vCPU's: it pays none). QEMU: null.
   */
  dirtySync: {
    count: number;
    totalMs: number;
    meanMs: number;
    maxMs: number;
    /** CPU per sync; absent in files written before it was reported */
    meanCpuMs?: number;
    maxCpuMs?: number;
    pagesFound: number;
  } | null;
  /** Source STOP event to destination RESUME event (host clock), bench pauses included. */
  guestPausedMs: number | null;
  /** The part of guestPausedMs the bench added: livemig's x-verify-ram digests, QEMU's RAM compare. */
  verifyPauseMs: number | null;
  /** The destination's shell answered a command after the migration. */
  shell: GuestCheck;
  /** A file written in the guest's /tmp before the migration had the same sha256 after. */
  file: GuestCheck;
  /** What a failed check saw (console lines), else null. */
  checkError: string | null;
  /** busy and lossless: the guest's cp-loop progress; idle: null. */
  progress: ProgressInfo | null;
  /** QEMU: guest RAM pages that differ between the two RAM files (destination paused); else null. */
  differingPages: number | null;
  /** zero pages / (zero + normal) that the migration sent. */
  zeroShare: number;
}
export interface RunningRecord {
  /** The workload's configured dirty rate, MB/s (10^6 bytes of dirtied pages per second). */
  dirtyRateMBps: number;
  /** The last dirty-pages-rate the source measured, in MB/s. */
  measuredDirtyRateMBps: number;
  maxBandwidthBytesPerSec: number;
  downtimeLimitMs: number;
  timeCapMs: number;
  ramBytes: number;
  converged: boolean;
  /** completed, or cancelled (by the time cap), or failed. */
  status: string;
  error: string | null;
  passes: number;
  /** The last expected-downtime seen before switchover (or before cancelling). */
  expectedDowntimeMs: number | null;
  /** observed in query-migrate, or derived (final pass bytes / bandwidth) when a poll missed it. */
  expectedDowntimeSource: 'observed' | 'derived' | 'none';
  downtimeMs: number | null;
  totalTimeMs: number;
  transferredBytes: number;
  verify: { method: VerifyMethod; result: 'ok' | 'mismatch' | 'not-checked' };
}

export interface Skip {
  /** not-applicable: the peer has no such mode (QEMU and dsa-accel); unavailable: it should have run. */
  severity: 'not-applicable' | 'unavailable';
  peer: Peer;
  mode: Mode | null;
  scenario: Scenario | 'running' | null;
  reason: string;
}

export interface Stat {
  median: number;
  min: number;
  max: number;
}

export interface GroupSummary {
  scenario: Scenario;
  peer: Peer;
  mode: Mode;
  label: string;
  completedRuns: number;
  /** Median CPU ms per thread over the completed runs. */
  threads: ThreadCpu[];
  /** The DSA evaluation's sum (the name is the results format's): live_migration + multifdsend_N (+ dsa_completion). */
  evaluationTotalMs: Stat;
  /** The same plus the emulated engines. */
  totalWithEnginesMs: Stat;
  totalTimeMs: Stat;
  endToEndMs: Stat;
  downtimeMs: Stat | null;
  throughputMbps: Stat;
  transferredBytes: Stat;
  totalRamBytes: number;
  sourceCpuMs: Stat | null;
  destinationCpuMs: Stat | null;
  bothCpuMs: Stat | null;
  peakRssKiB: { source: number | null; destination: number | null };
  verified: string;
  /**
   * With --peer floor: this group's medians over the floor's in the same scenario (null where
   * either is unknown). Absent for the floor itself and without the floor.
   */
  toFloor?: FloorRatios;
}

export interface FloorRatios {
  totalTime: number | null;
  endToEnd: number | null;
  bothCpu: number | null;
}

export interface MachineInfo {
  cpuModel: string;
  cores: number;
  memoryBytes: number;
  node: string;
  platform: string;
  kernel: string;
  livemig: string;
  gitCommit: string | null;
  dsaDevices: string[];
}

/** --machine pc's own settings. */
export interface PcBenchConfig {
  kernel: string;
  initrd: string;
  /** The kernel command line, the same for both peers. */
  append: string;
  /** busy and lossless: the guest's cp loop, as cp:SIZE (livemig-workload's form). */
  busyWorkload: string;
  /** lossless: the downtime-limit of its runs. */
  losslessDowntimeLimitMs: number;
  /** livemig's x-migration-nice in every run (absent in files before it existed: 0) */
  migrationNice?: number;
}

export interface BenchConfig {
  /** synthetic (RAM and a workload) or pc (Linux in v86); absent in files before the PC bench. */
  machine?: 'synthetic' | 'pc';
  pc?: PcBenchConfig | null;
  ram: string;
  ramBytes: number;
  channels: number;
  runs: number;
  /** unmeasured runs of every peer and mode before the measured ones (absent: none) */
  warmupRuns?: number;
  /**
   * synthetic: `migrate` went out as soon as both processes of a run answered, without waiting
   * for their start-up work to settle (absent: it waited, up to 3 s)
   */
  atOnce?: boolean;
  scenarios: Scenario[];
  running: boolean;
  modes: Mode[];
  workload: string;
  accelPath: string[];
  to: string | null;
  toQmp: string | null;
  peers: Peer[];
  qemuPath: string | null;
  verify: boolean;
  dirtyRatesMBps: number[];
  maxBandwidthBytesPerSec: number;
  downtimeLimitMs: number;
  convergeTimeoutMs: number;
}

export interface BenchResults {
  schema: typeof RESULTS_SCHEMA_ID;
  createdAt: string;
  command: string;
  machine: MachineInfo;
  config: BenchConfig;
  qemu: { path: string; version: string; zeroPageDetection: string } | null;
  runs: RunRecord[];
  summary: GroupSummary[];
  running: RunningRecord[];
  skipped: Skip[];
  /** --machine pc only. */
  pc?: PcResults;
}

export interface PcResults {
  /** Wall time from starting the source to the guest's `livemig-guest: ready`, per boot. */
  boots: { peer: Peer; scenario: PcScenario; ms: number }[];
  /**
   * Each peer's first idle migration of a freshly booted guest: the share of the pages it sent
   * as zero pages. `extraPages`: pages sent beyond one pass over RAM (later passes).
   */
  freshZeroShare: {
    peer: Peer;
    zeroPages: number;
    normalPages: number;
    extraPages: number;
    share: number;
  }[];
}

/** Classify a thread name of either peer (QEMU's old and 9.1+ names included). */
export function threadRole(name: string): ThreadRole {
  // dirty_sync: the PC's dirty sync, on QEMU's migration thread
  if (/^(live_migration|dirty_sync(_1)?|mig\/src\/main)$/.test(name)) return 'migration';
  if (/^(multifdsend_\d+|multifdrecv_\d+|mig\/src\/send_\d+|mig\/dst\/recv_\d+)$/.test(name))
    return 'channel';
  if (name === 'dsa_completion') return 'accel-completion';
  if (/\/engine\d+\.\d+$/.test(name)) return 'emulated-engine';
  if (name === 'main' || name.startsWith('qemu-system')) return 'main';
  if (/^(vcpu_\d+|CPU \d+\/\w+)$/.test(name)) return 'vcpu';
  return 'other';
}

/** The roles that the DSA evaluation's CPU table lists (source side). */
export const EVALUATION_ROLES: readonly ThreadRole[] = ['migration', 'channel', 'accel-completion'];
