// `livemig bench --machine pc`'s options: the PC's scenarios, its RAM (v86's limits, 256M by
// default), the kernel and initramfs both peers boot (default: the fetched guest image), the
// busy scenario's cp loop and the nothing-lost series' downtime-limit.

import { existsSync } from 'node:fs';
import type { BenchOptions } from '../cli/bench.js';
import { findGuestImage } from '../image/guest-image.js';
import { DEFAULT_APPEND } from '../machine/pc/pc-config.js';
import { checkPcRam } from '../machine/pc/pc-options.js';
import { parseSize } from '../util/size.js';
import { parseCpWorkload } from './pc-guest.js';
import { PC_SCENARIOS, type BenchConfig, type PcScenario, type Peer } from './types.js';
import { pcMigrationNice } from '../machine/pc/pc-migration-nice.js';

export const DEFAULT_PC_SCENARIOS = 'idle,busy';
export const DEFAULT_BUSY_WORKLOAD = 'cp:8M';
export const DEFAULT_LOSSLESS_DOWNTIME_LIMIT = '10';

/** The options both machines parse alike (src/cli/bench.ts). */
export type CommonConfig = Pick<
  BenchConfig,
  | 'ram'
  | 'channels'
  | 'runs'
  | 'modes'
  | 'accelPath'
  | 'qemuPath'
  | 'verify'
  | 'maxBandwidthBytesPerSec'
  | 'downtimeLimitMs'
  | 'convergeTimeoutMs'
>;

export function parsePcScenarios(text: string): PcScenario[] {
  const out: PcScenario[] = [];
  for (const s of text.split(/[\s,]+/).filter((x) => x.length > 0)) {
    const l = s.toLowerCase();
    if (l === 'all') out.push('idle', 'busy');
    else if ((PC_SCENARIOS as readonly string[]).includes(l)) out.push(l as PcScenario);
    else {
      throw new Error(
        `invalid --scenario '${s}' for --machine pc: expected idle, busy, lossless or all (= idle,busy)`,
      );
    }
  }
  if (out.length === 0) throw new Error('--scenario names no scenario');
  return PC_SCENARIOS.filter((s) => out.includes(s));
}

function mustExist(path: string, flag: string): string {
  if (!existsSync(path)) throw new Error(`${flag} '${path}': no such file`);
  return path;
}

/** The kernel and initramfs: both flags, or neither (the fetched image). */
function bootFiles(
  o: BenchOptions,
  image: () => { kernel: string; initrd: string } | null,
): { kernel: string; initrd: string } {
  if (o.kernel || o.initrd) {
    if (!o.kernel || !o.initrd) {
      throw new Error(
        '--kernel and --initrd go together for the PC bench (its checks need the initramfs of ' +
          '`livemig image fetch`, or one like it)',
      );
    }
    return { kernel: mustExist(o.kernel, '--kernel'), initrd: mustExist(o.initrd, '--initrd') };
  }
  const img = image();
  if (!img) {
    throw new Error(
      'no guest image for --machine pc: run `livemig image fetch` once (or pass --kernel and --initrd)',
    );
  }
  return { kernel: img.kernel, initrd: img.initrd };
}

export function pcBenchConfig(
  o: BenchOptions,
  c: CommonConfig,
  image: () => { kernel: string; initrd: string } | null = findGuestImage,
): BenchConfig {
  const ramBytes = parseSize(c.ram, 'M');
  checkPcRam(ramBytes);
  if (o.to !== undefined || o.toQmp !== undefined) {
    throw new Error('--to and --to-qmp are for the synthetic machine; the PC bench is local');
  }
  if (o.workload !== 'none') {
    throw new Error(
      `--workload is for the synthetic machine; with --machine pc use --busy-workload`,
    );
  }
  let peers: Peer[] = ['livemig'];
  if (o.peer !== undefined) {
    if (o.peer !== 'qemu') {
      throw new Error(
        `invalid --peer '${o.peer}' with --machine pc: expected qemu ` +
          '(the floor moves the synthetic guest)',
      );
    }
    if (ramBytes % (1024 * 1024) !== 0) {
      throw new Error(`invalid --ram '${c.ram}' with --peer qemu: QEMU's -m needs whole MiB`);
    }
    peers = ['livemig', 'qemu'];
  }
  const busyWorkload = o.busyWorkload ?? DEFAULT_BUSY_WORKLOAD;
  parseCpWorkload(busyWorkload);
  const lossless = o.losslessDowntimeLimit ?? DEFAULT_LOSSLESS_DOWNTIME_LIMIT;
  const losslessMs = Number(lossless);
  if (!/^\d+$/.test(lossless.trim()) || losslessMs > 2_000_000) {
    throw new Error(
      `invalid --lossless-downtime-limit '${lossless}': expected an integer from 0 to 2000000 (ms)`,
    );
  }
  // Unless given: the value a PC process starts with on this host (pc-migration-nice.ts).
  const nice = o.migrationNice ?? String(pcMigrationNice());
  if (!/^\d+$/.test(nice.trim()) || Number(nice) > 19) {
    throw new Error(`invalid --migration-nice '${nice}': expected an integer from 0 to 19`);
  }
  return {
    ...c,
    machine: 'pc',
    pc: {
      ...bootFiles(o, image),
      append: o.append ?? DEFAULT_APPEND,
      busyWorkload,
      losslessDowntimeLimitMs: losslessMs,
      migrationNice: Number(nice),
    },
    ramBytes,
    scenarios: parsePcScenarios(o.scenario ?? DEFAULT_PC_SCENARIOS),
    running: false,
    workload: 'none',
    to: null,
    toQmp: null,
    peers,
    dirtyRatesMBps: [],
  };
}
