// The running-guest scenario: the stress workload dirties its 100 MB range at a capped rate
// while the migration runs under max-bandwidth, so whether it converges within downtime-limit
// is decided by rate against bandwidth, not by the machine's load. A migration still iterating
// after the time cap is cancelled and reported as not converged.

import { setTimeout as sleep } from 'node:timers/promises';
import { LocalPair } from '../harness/local-migration.js';
import { TERMINAL, type Info } from './livemig-runner.js';
import type { RunningRecord } from './types.js';

export interface RunningSpec {
  ram: string;
  ramBytes: number;
  channels: number;
  /** MB/s (10^6 bytes of dirtied pages per second), the stress:MBPS cap. */
  dirtyRateMBps: number;
  maxBandwidthBytesPerSec: number;
  downtimeLimitMs: number;
  timeCapMs: number;
  verify: boolean;
  onProgress?: (info: Record<string, unknown>) => void;
}

export async function runRunning(spec: RunningSpec): Promise<RunningRecord> {
  const pair = await LocalPair.start({
    ram: spec.ram,
    normalPageRatio: 0,
    workload: `stress:${spec.dirtyRateMBps}`,
    sourcePaused: false,
    memPrealloc: true,
  });
  try {
    const capabilities = [
      { capability: 'multifd', state: true },
      { capability: 'events', state: true },
      { capability: 'x-verify-ram', state: spec.verify },
    ];
    await pair.source.qmp.execute('migrate-set-capabilities', { capabilities });
    await pair.dest.qmp.execute('migrate-set-capabilities', { capabilities });
    await pair.source.qmp.execute('migrate-set-parameters', {
      'multifd-channels': spec.channels,
      'zero-page-detection': 'multifd',
      'max-bandwidth': spec.maxBandwidthBytesPerSec,
      'downtime-limit': spec.downtimeLimitMs,
    });
    const uri = await pair.incomingUri();
    const start = Date.now();
    await pair.source.qmp.execute('migrate', { uri });
    let info: Info;
    let expected: number | null = null;
    let dirtyPagesRate = 0;
    let cancelled = false;
    for (;;) {
      info = await pair.source.qmp.execute<Info>('query-migrate');
      spec.onProgress?.(info);
      if (
        typeof info['expected-downtime'] === 'number' &&
        (info.ram?.['dirty-sync-count'] ?? 0) > 0
      )
        expected = info['expected-downtime'];
      const rate = info.ram?.['dirty-pages-rate'] ?? 0;
      if (rate > 0) dirtyPagesRate = rate;
      if (TERMINAL.includes(String(info.status))) break;
      if (!cancelled && info.status === 'active' && Date.now() - start > spec.timeCapMs) {
        cancelled = true;
        await pair.source.qmp.execute('migrate_cancel');
      }
      // Often: a converging pass can be short, and its estimate is gone after the switchover.
      await sleep(10);
    }
    const ram = info.ram ?? {};
    const converged = info.status === 'completed';
    let expectedSource: 'observed' | 'derived' | 'none' = expected === null ? 'none' : 'observed';
    const bw = Number(info.livemig?.['bandwidth-bytes-per-second'] ?? 0);
    if (expected === null && converged && bw > 0 && typeof ram['downtime-bytes'] === 'number') {
      // The last estimate was made and acted on between two polls: it was the final pass's
      // bytes over the bandwidth the estimate used.
      expected = Math.round((ram['downtime-bytes'] / bw) * 1000);
      expectedSource = 'derived';
    }
    return {
      dirtyRateMBps: spec.dirtyRateMBps,
      measuredDirtyRateMBps: Math.round((dirtyPagesRate * 4096) / 1e4) / 100,
      maxBandwidthBytesPerSec: spec.maxBandwidthBytesPerSec,
      downtimeLimitMs: spec.downtimeLimitMs,
      timeCapMs: spec.timeCapMs,
      ramBytes: spec.ramBytes,
      converged,
      status: String(info.status),
      error:
        info['error-desc'] !== undefined
          ? String(info['error-desc'])
          : cancelled && !converged
            ? `did not converge within ${spec.timeCapMs / 1000} s; cancelled`
            : null,
      passes: ram['dirty-sync-count'] ?? 0,
      expectedDowntimeMs: expected,
      expectedDowntimeSource: expectedSource,
      downtimeMs: typeof info.downtime === 'number' ? info.downtime : null,
      totalTimeMs: Number(info['total-time'] ?? 0),
      transferredBytes: ram.transferred ?? 0,
      verify: {
        method: spec.verify ? 'x-verify-ram' : 'none',
        result:
          !spec.verify || !converged
            ? 'not-checked'
            : info.livemig?.verify === 'ok'
              ? 'ok'
              : 'mismatch',
      },
    };
  } finally {
    await pair.close();
  }
}
