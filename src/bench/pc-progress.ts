// The PC guest's own progress, seen from the host: its cp loop prints `lm-copy N` on the serial
// console after each completed copy, and the host stamps each line as it arrives. The rate
// before a migration is compared with the rate over the shortest window of whole copies that
// contains the migration (last copy before `migrate` to the first one completed at the
// destination), so a short migration is not diluted by seconds of normal running around it.

import { setTimeout as sleep } from 'node:timers/promises';
import type { ConsoleClient } from '../chardev/console-client.js';
import type { ProgressInfo } from './types.js';

/** The line the bench's cp loop prints after copy N (the typed command shows `$n`, not digits). */
export const COPY_LINE = /lm-copy (\d+)\r?\n/;

export interface Completion {
  /** copy number, as the guest counted it */
  n: number;
  /** host time the line arrived (ms since the epoch) */
  t: number;
}

/** Wall-clock ms, the clock QMP event timestamps use, so that both can be compared. */
export function nowMs(): number {
  return Date.now();
}

/** Collects a console's `lm-copy N` lines with their arrival times, until stop(). */
export class CopyTracker {
  readonly completions: Completion[] = [];
  private stopped = false;
  private readonly done: Promise<void>;

  constructor(
    private readonly console: ConsoleClient,
    from = console.mark(),
  ) {
    this.done = this.loop(from);
  }

  private async loop(from: number): Promise<void> {
    let pos = from;
    while (!this.stopped) {
      try {
        // Short waits, so that stop() takes effect soon; a timeout only means no copy yet.
        const m = await this.console.waitFor(COPY_LINE, 1000, pos);
        this.completions.push({ n: Number(m[1]), t: nowMs() });
        pos = m.end;
      } catch {
        // nothing within the second: look again
      }
    }
  }

  /** The highest copy number seen, or -1. */
  get maxN(): number {
    return this.completions.reduce((m, c) => Math.max(m, c.n), -1);
  }

  /** The first completion with n > `after` that arrived at or after `since`, within `timeoutMs`. */
  async firstAfter(after: number, since: number, timeoutMs: number): Promise<Completion | null> {
    const end = nowMs() + timeoutMs;
    for (;;) {
      const c = this.completions.find((x) => x.n > after && x.t >= since);
      if (c) return c;
      if (nowMs() > end || this.stopped) return null;
      await sleep(20);
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.done;
  }
}

/**
 * Wait until the guest copies at a steady rate: the last `stepMs` within `tolerance` of the
 * `stepMs` before (at least `minMs`, at most `maxMs`). After a migration, or after being stopped
 * while the other peer measured, a guest runs slower for a while (an emulator's code cache
 * starts cold), which must not count as its rate before the next migration.
 */
export async function waitSteady(
  tracker: CopyTracker,
  o: { minMs: number; maxMs: number; stepMs: number; tolerance: number },
): Promise<boolean> {
  const start = nowMs();
  for (;;) {
    await sleep(250);
    const now = nowMs();
    if (now - start >= o.minMs && now - start >= 2 * o.stepMs) {
      const last = rateWithin(tracker.completions, now - o.stepMs, now);
      const prev = rateWithin(tracker.completions, now - 2 * o.stepMs, now - o.stepMs);
      if (last && prev && steady(prev.rate, last.rate, o.tolerance)) return true;
    }
    if (now - start >= o.maxMs) return false;
  }
}

/** Two rates within `tolerance` (a fraction) of the larger. */
export function steady(a: number, b: number, tolerance: number): boolean {
  const hi = Math.max(a, b);
  return hi > 0 && Math.abs(a - b) <= tolerance * hi;
}

/** The rate over the completions that arrived within [from, to]: null with fewer than two. */
export function rateWithin(
  cs: Completion[],
  from: number,
  to: number,
): { copies: number; ms: number; rate: number } | null {
  const w = cs.filter((c) => c.t >= from && c.t <= to);
  if (w.length < 2) return null;
  const first = w[0];
  const last = w[w.length - 1];
  const ms = last.t - first.t;
  if (!(ms > 0)) return null;
  const copies = last.n - first.n;
  return { copies, ms, rate: (copies * 1000) / ms };
}

/**
 * Progress across a migration. `source`: completions seen on the source's console; `dest`: on
 * the destination's. `migrateAt`: when `migrate` was sent; `runningAt`: when the guest ran at
 * the destination; `excludedMs`: the pause the bench added to check RAM. The window runs from
 * the last source completion at or before `migrateAt` to the first destination completion
 * after `runningAt` whose number is above every number the source printed (a line held in the
 * UART across the switchover is not taken for new progress). Null when a side has no such copy.
 */
export function progressAcross(
  source: Completion[],
  dest: Completion[],
  before: { copies: number; ms: number; rate: number },
  migrateAt: number,
  runningAt: number,
  excludedMs: number,
): ProgressInfo | null {
  const a = [...source].reverse().find((c) => c.t <= migrateAt);
  const srcMax = source.reduce((m, c) => Math.max(m, c.n), -1);
  const b = dest.find((c) => c.t >= runningAt && c.n > srcMax);
  if (!a || !b || !(before.rate > 0)) return null;
  const windowMs = b.t - a.t;
  const effective = windowMs - Math.max(0, excludedMs);
  if (!(effective > 0)) return null;
  const duringCopies = b.n - a.n;
  const duringRate = (duringCopies * 1000) / effective;
  return {
    beforeCopies: before.copies,
    beforeMs: round(before.ms),
    beforeRate: round(before.rate, 3),
    duringCopies,
    windowMs: round(windowMs),
    excludedMs: round(Math.max(0, excludedMs)),
    duringRate: round(duringRate, 3),
    ratio: round(duringRate / before.rate, 3),
  };
}

/**
 * The guest's progress on the source while the migration ran there (`migrateAt` to the vCPU
 * stop, `stopAt`), in copies, against what its rate `before` would have done in that time.
 *
 * A window of a few copies makes whole copies coarse (one copy more or less is 25-30% of a busy
 * 256 MiB guest's precopy), so the work is counted in fractions: the window ends at the last copy
 * completed on the source before the stop, and the copy under way at `migrate` counts only the
 * share of it that was left then, at the rate before. With no completion before `migrate`, or
 * none inside the window, it counts whole copies over the whole window.
 */
export function progressPrecopy(
  source: Completion[],
  before: { rate: number },
  migrateAt: number,
  stopAt: number,
): Pick<
  ProgressInfo,
  'precopyMs' | 'precopyCopies' | 'precopyRatio' | 'precopyWork' | 'precopyWorkMs'
> | null {
  const ms = stopAt - migrateAt;
  if (!(ms > 0) || !(before.rate > 0)) return null;
  const inside = source.filter((c) => c.t > migrateAt && c.t <= stopAt);
  const whole = {
    precopyMs: round(ms),
    precopyCopies: inside.length,
    precopyRatio: round(inside.length / ((before.rate * ms) / 1000), 3),
  };
  const start = source.findLast((c) => c.t <= migrateAt);
  const end = inside.at(-1);
  if (!start || !end) return whole;
  const doneBefore = Math.min(1, ((migrateAt - start.t) * before.rate) / 1000);
  const work = end.n - start.n - doneBefore;
  const workMs = end.t - migrateAt;
  return {
    ...whole,
    precopyRatio: round(work / ((before.rate * workMs) / 1000), 3),
    precopyWork: round(work, 3),
    precopyWorkMs: round(workMs),
  };
}

function round(x: number, digits = 1): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}
