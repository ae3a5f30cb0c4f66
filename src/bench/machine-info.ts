// The machine a benchmark ran on, for the report and the results file.

import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, platform, release, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { LIVEMIG_VERSION } from '../control/version.js';
import type { MachineInfo } from './types.js';

function cpuModel(): string {
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) return m[1].trim();
  } catch {
    // not Linux
  }
  return cpus()[0]?.model ?? 'unknown';
}

function gitCommit(): string | null {
  try {
    const dir = fileURLToPath(new URL('.', import.meta.url));
    const out = execFileSync('git', ['rev-parse', '--short=12', 'HEAD'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'ignore'],
      encoding: 'utf8',
    }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'ignore'],
      encoding: 'utf8',
    }).trim();
    return out + (dirty ? '+dirty' : '');
  } catch {
    return null;
  }
}

/** DSA devices the kernel's idxd driver exposes (empty on machines without DSA). */
function dsaDevices(): string[] {
  try {
    return readdirSync('/sys/bus/dsa/devices')
      .filter((d) => /^dsa\d+$/.test(d))
      .sort();
  } catch {
    return [];
  }
}

export function machineInfo(): MachineInfo {
  return {
    cpuModel: cpuModel(),
    cores: cpus().length,
    memoryBytes: totalmem(),
    node: process.version,
    platform: platform(),
    kernel: release(),
    livemig: LIVEMIG_VERSION,
    gitCommit: gitCommit(),
    dsaDevices: dsaDevices(),
  };
}
