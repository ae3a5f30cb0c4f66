// The driver's counters: where each page's zero/normal decision came from, and what the
// device interaction cost. Each batch task keeps its own block of Float64 counters in shared
// memory, written only by the thread that owns the task (no atomics on the hot path); a
// snapshot sums every block, so any thread holding the accelerator handle can read them.

export const FALLBACK_REASONS = [
  'pageFault',
  'batchFailure',
  'deadline',
  'deviceHalted',
  'submitFailed',
  'noSlot',
] as const;
export type FallbackReason = (typeof FALLBACK_REASONS)[number];

/** Field indices in a counter block. */
export const K = {
  requests: 0,
  pages: 1,
  pagesDevice: 2,
  pagesCpu: 3,
  zeroPages: 4,
  submissions: 5,
  submitRetries: 6,
  batches: 7,
  singleDescriptors: 8,
  completionWaitMs: 9,
  deadlinesMissed: 10,
  cpuFallbackMs: 11,
  /** pageFault..noSlot follow, in FALLBACK_REASONS order. */
  fallback: 16,
} as const;
export const COUNTER_FIELDS = 32;

export interface AccelCounters {
  /** zeroPages calls. */
  requests: number;
  /** Pages checked. */
  pages: number;
  /** Pages whose result came from a completion record. */
  pagesDevice: number;
  /** Pages decided by the CPU fallback (sum of `cpuFallback`). */
  pagesCpu: number;
  /** Pages found zero (by either). */
  zeroPages: number;
  /** Pages decided by CPU fallback, by reason. */
  cpuFallback: Record<FallbackReason, number>;
  /** Descriptors accepted by a WQ (BATCH or single). */
  submissions: number;
  /** Submissions the WQ refused (ENQCMD retry) or that waited for a DWQ credit. */
  submitRetries: number;
  /** BATCH descriptors submitted. */
  batches: number;
  /** Single descriptors submitted (a one-page request, or a one-page tail). */
  singleDescriptors: number;
  /** Time from submission until the completion was observed (or given up), summed. */
  completionWaitMs: number;
  /** Requests whose deadline passed before the device finished. */
  deadlinesMissed: number;
  /** Time spent checking pages on the CPU in fallback. */
  cpuFallbackMs: number;
}

/** The counters that are one number each (all but cpuFallback). */
type Scalar = Exclude<keyof typeof K, 'fallback'>;
const SCALARS = Object.keys(K).filter((k) => k !== 'fallback') as Scalar[];

export function emptyCounters(): AccelCounters {
  const zero = (keys: readonly string[]) => Object.fromEntries(keys.map((k) => [k, 0]));
  // In this order: query-migrate and `info migrate` show the fields as they come.
  return {
    ...zero(SCALARS.slice(0, K.zeroPages + 1)),
    cpuFallback: zero(FALLBACK_REASONS),
    ...zero(SCALARS.slice(K.zeroPages + 1)),
  } as unknown as AccelCounters;
}

/** Add the counter block at `f[at..]` to `c`. */
export function addBlock(c: AccelCounters, f: Float64Array, at: number): void {
  for (const k of SCALARS) c[k] += f[at + K[k]];
  FALLBACK_REASONS.forEach((r, i) => (c.cpuFallback[r] += f[at + K.fallback + i]));
}

/** What the counters moved by from `before` to `after`. */
export function countersSince(before: AccelCounters, after: AccelCounters): AccelCounters {
  const d = emptyCounters();
  for (const k of SCALARS) d[k] = after[k] - before[k];
  for (const r of FALLBACK_REASONS) d.cpuFallback[r] = after.cpuFallback[r] - before.cpuFallback[r];
  return d;
}

/**
 * One task's counter block, written only by the thread that owns the task. The block may hold
 * the counts of closed tasks that had the entry before (they stay in the totals): this task's
 * own counts are those above `base`.
 */
export class TaskCounters {
  private readonly base: Float64Array;

  constructor(
    private readonly f: Float64Array,
    /** Float64 index of the block */
    readonly at: number,
    /** pages each checked unit counts as (BatchTaskOptions.pagesPerUnit) */
    private readonly unit: number,
  ) {
    this.base = f.slice(at, at + COUNTER_FIELDS);
  }

  add(field: number, v: number): void {
    this.f[this.at + field] += v;
  }

  /** A page counter: in pages, whatever the task's unit. */
  addPages(field: number, units: number): void {
    this.f[this.at + field] += units * this.unit;
  }

  /** `units` decided on the CPU for `reason`. */
  fallback(reason: FallbackReason, units: number): void {
    this.addPages(K.fallback + FALLBACK_REASONS.indexOf(reason), units);
  }

  /** This task's own counts. */
  snapshot(): AccelCounters {
    const own = this.f.slice(this.at, this.at + COUNTER_FIELDS);
    for (let i = 0; i < COUNTER_FIELDS; i++) own[i] -= this.base[i];
    const c = emptyCounters();
    addBlock(c, own, 0);
    return c;
  }
}
