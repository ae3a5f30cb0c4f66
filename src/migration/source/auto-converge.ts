// QEMU's auto-converge arithmetic: when a pass dirtied more than throttle-trigger-threshold %
// of what it sent, twice, take more of the vCPU's time: cpu-throttle-initial, then
// + cpu-throttle-increment each time, up to max-cpu-throttle; with cpu-throttle-tailslow, only
// as much as should bring the dirty rate down to the link's. Pure: live_migration applies it.

import { LIVE } from './channel-slots.js';

export interface AutoConvergeParams {
  enabled: boolean;
  /** % */
  initial: number;
  increment: number;
  max: number;
  tailslow: boolean;
  /** throttle-trigger-threshold, % of the bytes a pass sent */
  trigger: number;
}

/** The parameters as the LIVE words hold them now (they may change during a migration). */
export function autoConvergeParams(live: Float64Array): AutoConvergeParams {
  return {
    enabled: live[LIVE.autoConverge] === 1,
    initial: live[LIVE.throttleInitial],
    increment: live[LIVE.throttleIncrement],
    max: live[LIVE.throttleMax],
    tailslow: live[LIVE.throttleTailslow] === 1,
    trigger: live[LIVE.throttleTrigger],
  };
}

export class AutoConverge {
  /** passes in a row that dirtied more than the trigger */
  private high = 0;

  /**
   * The throttle (%) after a pass that left `dirtied` bytes dirty while sending `sent`, given
   * the throttle `now`.
   */
  next(p: AutoConvergeParams, now: number, dirtied: number, sent: number): number {
    if (!p.enabled) return now;
    const threshold = (sent * p.trigger) / 100;
    if (dirtied <= threshold || ++this.high < 2) return now;
    this.high = 0;
    if (now === 0) return Math.min(p.max, p.initial);
    let inc = p.increment;
    if (p.tailslow) {
      const cpuNow = 100 - now;
      const cpuIdeal = (cpuNow * threshold) / Math.max(dirtied, 1);
      inc = Math.max(1, Math.min(Math.round(cpuNow - cpuIdeal), inc));
    }
    return Math.min(p.max, now + inc);
  }
}
