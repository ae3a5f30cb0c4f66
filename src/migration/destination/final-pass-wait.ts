// The destination's wait for the final pass that Complete announced: every channel must apply
// that pass's SYNC. Its deadline counts only bytes that reach the channels, not heartbeats on
// the main channel, so a source that announces a pass it never sends cannot hold the
// destination.

import type { Incoming } from './incoming.js';

/**
 * Every channel has applied the final pass (their SYNC barrier for it). The source said it
 * was sent: a wait in which no channel receives anything for x-stall-timeout fails, whatever
 * the heartbeats say (a source that announces a pass it never sends). False when the
 * migration failed (`fail` was called) or ended meanwhile (`isCurrent` no longer holds).
 */
export async function awaitFinalPass(
  cur: Incoming,
  pass: number,
  isCurrent: () => boolean,
  fail: (message: string) => void,
): Promise<boolean> {
  const p = cur.progress;
  let bytes = p.total('bytes');
  let movedAt = performance.now();
  for (let c = 0; c < cur.channels; c++) {
    for (;;) {
      if (p.aborted || !isCurrent()) return false;
      const v = p.syncedPass(c);
      if (v >= pass) break;
      const now = performance.now();
      const b = p.total('bytes');
      if (b !== bytes) {
        bytes = b;
        movedAt = now;
      } else if (now - movedAt > cur.stallTimeoutMs) {
        fail(
          `final pass ${pass} announced, but multifd channel ${c} has applied only pass ${v} ` +
            `and no channel received anything for ${cur.stallTimeoutMs} ms (x-stall-timeout)`,
        );
        return false;
      }
      await p.waitSynced(c, v, Math.min(200, cur.stallTimeoutMs / 2));
    }
  }
  return true;
}
