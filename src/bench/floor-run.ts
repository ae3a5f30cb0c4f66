// The machine's floor: bench/floor/loopback-floor.c, a minimal C migration with no user-space
// copy (writev from the source's RAM, readv into the destination's fresh RAM), compiled once per
// source version and run as a child process. Used by `npm run bench:floor` and by
// `livemig bench --peer floor`.

import { execFile, execFileSync } from 'node:child_process';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { compileC } from './c-program.js';

export const FLOOR_SOURCE = resolve(
  dirname(fileURLToPath(import.meta.url)),
  '../../../bench/floor/loopback-floor.c',
);

/**
 * How long the floor waits between populating its source and the first send. On a VM whose
 * balloon reports free memory to the host (free page reporting; this machine's), a page freed a
 * moment ago is still backed by the host and cheap to touch, one free for longer is not: 4 KiB
 * first touches cost 2-4 times as much. Run right after livemig (the bench interleaves them),
 * the floor's destination would fill 2 GiB out of the memory livemig had just freed, while a
 * livemig destination, which starts seconds after the run before it, never can. Measured on
 * this machine, 50% normal pages, 4 GiB, interleaved: with 200 ms the floor's destination used
 * 2.0-2.8 s of CPU, with 4 s 4.0-6.2 s, livemig's 4.4-7.8 s (docs/benchmarks.md). On a machine
 * without the balloon the wait changes nothing but the run's length.
 */
export const FLOOR_IDLE_MS = 4000;

/** What one run of the floor printed. */
export interface FloorRun {
  totalMs: number;
  srcCpuMs: number;
  dstCpuMs: number;
  /** Each sender's and each receiver's own CPU (its thread clock), by channel. */
  sendCpuMs: number[];
  recvCpuMs: number[];
  normalPages: number;
  zeroPages: number;
  sentBytes: number;
  /** The destination's RAM equals the source's. */
  verified: boolean;
  /** The line it printed, verbatim. */
  line: string;
}

export interface FloorBinary {
  path: string;
  /** "loopback-floor.c, cc (Debian 12.2.0-14) 12.2.0" */
  version: string;
}

/** The floor's program, built with `cc` once per source version (in the temporary directory). */
export function compileFloor(cc = process.env.CC ?? 'cc'): FloorBinary {
  const path = compileC(FLOOR_SOURCE, cc, ['-O2', '-pthread']);
  let compiler = cc;
  try {
    compiler = execFileSync(cc, ['--version'], { encoding: 'utf8' }).split('\n')[0].trim();
  } catch {
    // built earlier by a compiler no longer there: the name is all we know
  }
  return { path, version: `loopback-floor.c, ${compiler}` };
}

/** The floor needs whole MiB (its argument), as QEMU does. */
export function floorRamMiB(ramBytes: number): number {
  if (ramBytes % 1048576 !== 0) {
    throw new Error(`the floor takes RAM in whole MiB; ${ramBytes} bytes is not`);
  }
  return ramBytes / 1048576;
}

/** Parse the floor's one line of `key=value` fields. */
export function parseFloorLine(out: string): FloorRun {
  const field = (k: string): string => {
    const m = new RegExp(`\\b${k}=(\\S+)`).exec(out);
    if (!m) throw new Error(`loopback-floor printed no ${k}: ${out.trim()}`);
    return m[1];
  };
  const list = (k: string): number[] => field(k).split(',').map(Number);
  return {
    totalMs: Number(field('total_ms')),
    srcCpuMs: Number(field('src_cpu_ms')),
    dstCpuMs: Number(field('dst_cpu_ms')),
    sendCpuMs: list('send_cpu_ms'),
    recvCpuMs: list('recv_cpu_ms'),
    normalPages: Number(field('normal_pages')),
    zeroPages: Number(field('zero_pages')),
    sentBytes: Number(field('sent_bytes')),
    verified: field('verified') === 'ok',
    line: out.trim(),
  };
}

/**
 * One migration of `ramMiB` over `channels`, a share `ratio` of its pages normal, `idleMs`
 * after its source is populated.
 */
export async function runFloor(
  bin: FloorBinary,
  ramMiB: number,
  channels: number,
  ratio: number,
  idleMs = FLOOR_IDLE_MS,
): Promise<FloorRun> {
  let out: string;
  try {
    ({ stdout: out } = await promisify(execFile)(bin.path, [
      String(ramMiB),
      String(channels),
      String(ratio),
      String(idleMs),
    ]));
  } catch (e) {
    // It exits 1 when the RAM differs, after printing its line.
    const err = e as { stdout?: string; stderr?: string; message: string };
    if (!err.stdout?.includes('verified=')) {
      throw new Error(`loopback-floor failed: ${(err.stderr ?? '').trim() || err.message}`);
    }
    out = err.stdout;
  }
  return parseFloorLine(out);
}
