// The destination tells the source each pass it has applied (PassApplied): every channel has
// applied that pass's SYNC, so its pages are in guest RAM. The source stops its guest only once
// what it sent is applied (live-migration.ts, awaitDestination), so that the downtime does not
// include the destination catching up.

import { FrameType } from '../protocol.js';
import type { Incoming } from './incoming.js';

/** How long one wait for a channel's next SYNC lasts before the loop looks again. */
const LOOK_MS = 1000;

/**
 * Send PassApplied for every pass all channels have applied, until the migration leaves the
 * streaming and completing phases or `isCurrent` no longer holds. Passes applied together are
 * reported once, by the highest.
 */
export async function reportAppliedPasses(cur: Incoming, isCurrent: () => boolean): Promise<void> {
  const p = cur.progress;
  let reported = 0;
  while (isCurrent() && !p.aborted && (cur.phase === 'streaming' || cur.phase === 'completing')) {
    let applied = Infinity;
    let slowest = 0;
    for (let c = 0; c < cur.channels; c++) {
      const v = p.syncedPass(c);
      if (v < applied) {
        applied = v;
        slowest = c;
      }
    }
    if (applied > reported) {
      reported = applied;
      cur.control.send(FrameType.PassApplied, { pass: applied });
    }
    await p.waitSynced(slowest, applied, LOOK_MS);
  }
}
