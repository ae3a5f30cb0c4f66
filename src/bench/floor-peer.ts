// `--peer floor`: bench:floor's C migration as a peer of `livemig bench`, in the same tables, so
// that every report carries the machine's own yardstick. It moves the same guest (the same RAM,
// share of normal pages and channels) between two processes on loopback with no copy in user
// space; it has no modes, and checks zero pages with memcmp as the baseline does.

import { floorRamMiB, runFloor, type FloorBinary } from './floor-run.js';
import { SCENARIO_RATIO, type RunRecord, type SideCpu, type SyntheticScenario } from './types.js';

export interface FloorRunSpec {
  floor: FloorBinary;
  ramBytes: number;
  scenario: SyntheticScenario;
  /** 1-based run number within the scenario. */
  run: number;
  channels: number;
}

/** The floor's senders and receivers are its channels; each does its side's whole job. */
function side(processMs: number, prefix: string, ms: number[]): SideCpu {
  return {
    processMs,
    threads: ms.map((m, i) => ({ name: `${prefix}_${i}`, role: 'channel' as const, ms: m })),
    threadSource: 'thread-clock',
  };
}

export async function runFloorPeer(spec: FloorRunSpec): Promise<RunRecord> {
  const ratio = SCENARIO_RATIO[spec.scenario];
  const r = await runFloor(spec.floor, floorRamMiB(spec.ramBytes), spec.channels, ratio);
  return {
    scenario: spec.scenario,
    normalPageRatio: ratio,
    peer: 'floor',
    peerVersion: spec.floor.version,
    mode: 'baseline',
    zeroPageDetection: 'memcmp per page (C)',
    run: spec.run,
    status: 'completed',
    error: null,
    // From the first send until every receiver is done: its total is its end-to-end time.
    totalTimeMs: r.totalMs,
    endToEndMs: r.totalMs,
    downtimeMs: null,
    setupTimeMs: null,
    throughputMbps: r.totalMs > 0 ? (r.sentBytes * 8) / (r.totalMs * 1000) : 0,
    transferredBytes: r.sentBytes,
    totalRamBytes: spec.ramBytes,
    normalPages: r.normalPages,
    zeroPages: r.zeroPages,
    passes: 1,
    cpu: {
      source: side(r.srcCpuMs, 'floor_send', r.sendCpuMs),
      destination: side(r.dstCpuMs, 'floor_recv', r.recvCpuMs),
    },
    peakRssKiB: { source: null, destination: null },
    verify: { method: 'byte-compare', result: r.verified ? 'ok' : 'mismatch' },
    accel: null,
    raw: { source: { output: r.line }, destination: {} },
  };
}
