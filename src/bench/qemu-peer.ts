// `--peer qemu`: the same scenario QEMU to QEMU, driven over QMP, for the same tables.
//
// Source: stopped (-S), TCG, its RAM a memory-backend-file (share=on, prealloc=on) that we fill
// beforehand with livemig's page pattern (isNormalPage + random pages), every page written, so
// it is fully allocated like a guest that touched its memory. Destination: also a
// memory-backend-file with share=on (not preallocated, like livemig's destination), so that
// afterwards both RAM files can be compared byte for byte. Multifd with the same channel count.
// QEMU does not account CPU per thread: its threads are sampled from /proc (see ThreadSampler),
// with -name debug-threads=on so that they carry their names (live_migration, multifdsend_N).

import { setTimeout as sleep } from 'node:timers/promises';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { createServer } from 'node:net';
import { homedir, tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { promisify } from 'node:util';
import { QmpClient, QmpCommandError } from '../control/qmp-client.js';
import { isNormalPage } from '../ram/fill.js';
import { PAGE_SIZE } from '../migration/protocol.js';
import { eventTimeMs, nowMs, settle, TERMINAL, type Info } from './livemig-runner.js';
import { processCpuMs, procStatusKiB, ThreadSampler } from './proc.js';
import { firstDifference } from './ram-compare.js';

export { firstDifference } from './ram-compare.js';
import {
  SCENARIO_RATIO,
  threadRole,
  type Mode,
  type RunRecord,
  type SyntheticScenario,
  type ThreadCpu,
} from './types.js';

export const QEMU_BINARY = 'qemu-system-x86_64';

/** Why the peer is skipped, and how to install it (the binary differs per machine). */
export function qemuInstallHint(binary: string): string {
  return (
    `${binary} was not found, so the QEMU peer cannot run. Install QEMU ` +
    '(Debian/Ubuntu: sudo apt-get install qemu-system-x86; Fedora: sudo dnf install ' +
    'qemu-system-x86-core; Arch: sudo pacman -S qemu-system-x86), or point --qemu at a ' +
    `${binary} binary (e.g. a newer build from source).`
  );
}

export const QEMU_INSTALL_HINT = qemuInstallHint(QEMU_BINARY);

export interface QemuInfo {
  path: string;
  /** First line of `--version`, e.g. "QEMU emulator version 7.2.22 (Debian ...)" shortened. */
  version: string;
  /** Set when the peer is older than upstream's 10.2: what that means, and how to get 10.2. */
  advice?: string;
}

/** The version scripts/build-qemu-peer.sh builds, and where it installs it. */
export const MODERN_QEMU_VERSION = '10.2.2';
export function modernQemuDir(): string {
  const cache = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(cache, 'livemig', `qemu-${MODERN_QEMU_VERSION}`, 'bin');
}

/**
 * Find QEMU: `--qemu PATH`; else upstream 10.2 as scripts/build-qemu-peer.sh leaves it in the
 * cache; else `binary` (qemu-system-x86_64) on PATH. Null when absent.
 */
export async function findQemu(
  path?: string | null,
  binary = QEMU_BINARY,
): Promise<QemuInfo | null> {
  let bin = path ?? null;
  if (!bin) {
    const modern = join(modernQemuDir(), binary);
    try {
      accessSync(modern, constants.X_OK);
      bin = modern;
    } catch {
      // not built here
    }
  }
  if (!bin) {
    for (const dir of (process.env.PATH ?? '').split(delimiter)) {
      const p = join(dir, binary);
      try {
        accessSync(p, constants.X_OK);
        bin = p;
        break;
      } catch {
        // not here
      }
    }
  }
  if (!bin) return null;
  try {
    const { stdout } = await promisify(execFile)(bin, ['--version'], { timeout: 10_000 });
    const first = stdout.split('\n')[0] ?? '';
    const m = /version\s+(\S+)(.*)$/.exec(first);
    const major = m ? Number(m[1].split('.')[0]) : NaN;
    const advice =
      major < 10
        ? `QEMU ${m![1]} is older than upstream's ${MODERN_QEMU_VERSION} (7.2 has no multifd ` +
          'zero-page detection, and its TCG dirty log loses pages with many syncs); build the ' +
          'modern peer with scripts/build-qemu-peer.sh (~10 min), which the bench then uses'
        : undefined;
    return { path: bin, version: m ? `QEMU ${m[1]}${m[2]}`.trim() : first.trim(), advice };
  } catch (e) {
    if (path) throw new Error(`--qemu ${path}: cannot run it: ${(e as Error).message}`);
    return null;
  }
}

/** Where RAM files go: /dev/shm (tmpfs) when usable, else the temp directory. */
export function ramDir(): string {
  for (const base of ['/dev/shm', tmpdir()]) {
    try {
      accessSync(base, constants.W_OK);
      return mkdtempSync(join(base, 'livemig-bench-qemu-'));
    } catch {
      // try the next
    }
  }
  throw new Error('no writable directory for the QEMU RAM files');
}

const FILL_CHUNK = 16 * 1024 * 1024;
const POOL = 4 * 1024 * 1024;

/**
 * Write `bytes` of guest RAM to `path` with livemig's pattern: page i is normal (random bytes,
 * stamped with its number so no two are equal and none is zero) when isNormalPage(i, ratio),
 * else zero. Every page is written, zero pages too, so the file is fully allocated.
 */
export function fillRamFile(path: string, bytes: number, ratio: number): void {
  const pool = randomFillSync(Buffer.alloc(POOL + PAGE_SIZE));
  const poolPages = POOL / PAGE_SIZE;
  const fd = openSync(path, 'w');
  try {
    const chunk = Buffer.alloc(FILL_CHUNK);
    for (let off = 0; off < bytes; off += FILL_CHUNK) {
      const len = Math.min(FILL_CHUNK, bytes - off);
      chunk.fill(0, 0, len);
      for (let p = 0; p < len / PAGE_SIZE; p++) {
        const global = off / PAGE_SIZE + p;
        if (!isNormalPage(global, ratio)) continue;
        const src = ((global * 7919) % poolPages) * PAGE_SIZE + (global % 61) * 8;
        pool.copy(chunk, p * PAGE_SIZE, src, src + PAGE_SIZE);
        chunk.writeUInt32LE(global + 1, p * PAGE_SIZE + 8);
      }
      let done = 0;
      while (done < len) done += writeSync(fd, chunk, done, len - done, off + done);
    }
  } finally {
    closeSync(fd);
  }
}

export interface QemuProcess {
  proc: ChildProcess;
  qmp: QmpClient;
  stderr: string[];
}

export async function startQemu(bin: string, args: string[], sock: string): Promise<QemuProcess> {
  const proc = spawn(bin, [...args, '-qmp', `unix:${sock},server=on,wait=off`], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr: string[] = [];
  proc.stderr!.setEncoding('utf8');
  proc.stderr!.on('data', (s: string) => stderr.push(s));
  const exited = new Promise<never>((_, reject) => {
    proc.once('error', (e) => reject(new Error(`cannot start ${bin}: ${e.message}`)));
    proc.once('exit', (code) =>
      reject(new Error(`${bin} exited with code ${code}: ${stderr.join('').trim()}`)),
    );
  });
  exited.catch(() => {});
  try {
    const qmp = await Promise.race([
      QmpClient.connect(`unix:${sock}`, { timeoutMs: 120_000 }),
      exited,
    ]);
    await qmp.negotiate();
    return { proc, qmp, stderr };
  } catch (e) {
    proc.kill('SIGKILL');
    throw e;
  }
}

export async function stopQemu(q: QemuProcess): Promise<void> {
  if (q.proc.exitCode === null && q.proc.signalCode === null) {
    const exited = new Promise<void>((r) => q.proc.once('exit', () => r()));
    await q.qmp.execute('quit').catch(() => {});
    const timer = setTimeout(() => q.proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  }
  await q.qmp.close().catch(() => {});
}

/** migrate-incoming on loopback (port 0 where QEMU reports the port, else a free one). */
export async function startIncoming(qmp: QmpClient): Promise<string> {
  try {
    await qmp.execute('migrate-incoming', { uri: 'tcp:127.0.0.1:0' });
    const din = await qmp.execute<{ 'socket-address'?: { port: string }[] }>('query-migrate');
    const port = din['socket-address']?.[0]?.port;
    if (!port) throw new Error('no port');
    return `tcp:127.0.0.1:${port}`;
  } catch (e) {
    if (!(e instanceof QmpCommandError) && (e as Error).message !== 'no port') throw e;
    const uri = `tcp:127.0.0.1:${await freePort()}`;
    await qmp.execute('migrate-incoming', { uri });
    return uri;
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export function sampledThreads(names: Map<string, number>): ThreadCpu[] {
  return [...names.entries()]
    .map(([name, ms]) => ({ name, role: threadRole(name), ms: Math.round(ms * 10) / 10 }))
    .filter((t) => t.role !== 'main' && t.role !== 'vcpu' && t.role !== 'other');
}

/** zero-page-detection per mode, for a QEMU that has the parameter (9.0 and later). */
const QEMU_ZPD: Partial<Record<Mode, string>> = {
  baseline: 'multifd',
  legacy: 'legacy',
  none: 'none',
};

export class QemuModeUnavailableError extends Error {}

export interface QemuRunSpec {
  qemu: QemuInfo;
  ramBytes: number;
  scenario: SyntheticScenario;
  mode: Mode;
  run: number;
  channels: number;
  verify: boolean;
  /** as LivemigRunSpec.atOnce */
  atOnce?: boolean;
  onProgress?: (info: Record<string, unknown>) => void;
}

/** What the QEMU in use does with zero pages, for the report. */
export async function qemuZeroPageDetection(q: QemuProcess): Promise<string | null> {
  const p = await q.qmp.execute<Record<string, unknown>>('query-migrate-parameters');
  return typeof p['zero-page-detection'] === 'string' ? p['zero-page-detection'] : null;
}

export const QEMU_NO_ZPD =
  'migration thread (this QEMU predates zero-page-detection: the migration thread checks every page)';

export async function runQemu(spec: QemuRunSpec): Promise<RunRecord> {
  if (spec.mode === 'offload') {
    throw new QemuModeUnavailableError(
      'QEMU has no dsa-accel zero-page detection upstream (the DSA series was not merged)',
    );
  }
  const dir = ramDir();
  const srcRam = join(dir, 'src.ram');
  const dstRam = join(dir, 'dst.ram');
  if (spec.ramBytes % (1024 * 1024) !== 0) {
    throw new Error(`the QEMU peer needs --ram in whole MiB, got ${spec.ramBytes} bytes`);
  }
  const size = `${spec.ramBytes / 1024 / 1024}M`;
  const common = (id: string, file: string, prealloc: boolean): string[] => [
    '-name',
    `${id},debug-threads=on`,
    '-accel',
    'tcg',
    '-machine',
    'pc,memory-backend=mem0',
    '-m',
    size,
    '-object',
    `memory-backend-file,id=mem0,size=${size},mem-path=${file},share=on,prealloc=${prealloc ? 'on' : 'off'}`,
    '-nodefaults',
    '-display',
    'none',
    '-serial',
    'none',
    '-monitor',
    'none',
    '-S',
  ];
  let src: QemuProcess | null = null;
  let dst: QemuProcess | null = null;
  try {
    fillRamFile(srcRam, spec.ramBytes, SCENARIO_RATIO[spec.scenario]);
    [src, dst] = await Promise.all([
      startQemu(spec.qemu.path, common('src', srcRam, true), join(dir, 'src.qmp')),
      startQemu(
        spec.qemu.path,
        [...common('dst', dstRam, false), '-incoming', 'defer'],
        join(dir, 'dst.qmp'),
      ),
    ]);
    const zpd = await qemuZeroPageDetection(src);
    if (zpd === null && spec.mode !== 'baseline') {
      throw new QemuModeUnavailableError(
        `${spec.qemu.version} has no zero-page-detection parameter, so mode ${spec.mode} is the same as its baseline`,
      );
    }
    const pids = [src.proc.pid!, dst.proc.pid!];
    if (!spec.atOnce) await settle(pids);
    const cpu0 = pids.map(processCpuMs);
    const samplers = pids.map((p) => new ThreadSampler(p));
    const capabilities = [
      { capability: 'multifd', state: true },
      { capability: 'events', state: true },
    ];
    const params: Record<string, unknown> = {
      'multifd-channels': spec.channels,
      // QEMU's default max-bandwidth throttles; livemig's is unlimited.
      'max-bandwidth': 100 * 1024 ** 3,
    };
    if (zpd !== null) params['zero-page-detection'] = QEMU_ZPD[spec.mode]!;
    for (const q of [src, dst]) {
      await q.qmp.execute('migrate-set-capabilities', { capabilities });
      await q.qmp.execute('migrate-set-parameters', params);
    }
    const uri = await startIncoming(dst.qmp);
    dst.qmp.clearEvents();
    const t0 = nowMs();
    await src.qmp.execute('migrate', { uri });
    let info: Info;
    for (;;) {
      info = await src.qmp.execute<Info>('query-migrate');
      spec.onProgress?.(info);
      if (TERMINAL.includes(String(info.status))) break;
      await sleep(50);
    }
    // QEMU's source completes when it has sent everything; its destination may still be
    // loading. The end-to-end time runs until the destination's MIGRATION completed event.
    let tEnd = nowMs();
    let dinfo: Info = {};
    if (info.status === 'completed') {
      const ev = await dst.qmp
        .waitEvent(
          'MIGRATION',
          (e) => ['completed', 'failed'].includes(String(e.data?.status)),
          600_000,
        )
        .catch(() => null);
      tEnd = ev ? eventTimeMs(ev) : nowMs();
      dinfo = await dst.qmp.execute<Info>('query-migrate');
      // QEMU sets 'completed' before it computes total-time and downtime (7.2 reports 0 in
      // between), so read the source's final figures again now that both ends are done.
      for (let i = 0; i < 50; i++) {
        info = await src.qmp.execute<Info>('query-migrate');
        if (Number(info['total-time'] ?? 0) > 0) break;
        await sleep(20);
      }
    }
    const threads = samplers.map((s) => sampledThreads(s.stop()));
    const cpu1 = pids.map(processCpuMs);
    const peak = pids.map((p) => procStatusKiB(p, 'VmHWM'));
    let result: 'ok' | 'mismatch' | 'not-checked' = 'not-checked';
    if (spec.verify && info.status === 'completed' && dinfo.status === 'completed') {
      result = firstDifference(srcRam, dstRam, spec.ramBytes) < 0 ? 'ok' : 'mismatch';
    }
    const ram = info.ram ?? {};
    const failed = info.status === 'completed' && dinfo.status !== 'completed';
    return {
      scenario: spec.scenario,
      normalPageRatio: SCENARIO_RATIO[spec.scenario],
      peer: 'qemu',
      peerVersion: spec.qemu.version,
      mode: spec.mode,
      zeroPageDetection: zpd === null ? QEMU_NO_ZPD : String(QEMU_ZPD[spec.mode]),
      run: spec.run,
      status: failed ? 'failed' : String(info.status),
      error: failed
        ? `destination ended ${String(dinfo.status)}`
        : info['error-desc'] !== undefined
          ? String(info['error-desc'])
          : null,
      totalTimeMs: Number(info['total-time'] ?? 0),
      endToEndMs: Math.max(0, tEnd - t0),
      downtimeMs: typeof info.downtime === 'number' ? info.downtime : null,
      setupTimeMs: typeof info['setup-time'] === 'number' ? info['setup-time'] : null,
      throughputMbps: ram.mbps ?? 0,
      transferredBytes: ram.transferred ?? 0,
      totalRamBytes: ram.total ?? 0,
      normalPages: ram.normal ?? 0,
      zeroPages: ram.duplicate ?? 0,
      passes: ram['dirty-sync-count'] ?? 0,
      cpu: {
        source: { processMs: cpu1[0] - cpu0[0], threads: threads[0], threadSource: 'proc-sampled' },
        destination: {
          processMs: cpu1[1] - cpu0[1],
          threads: threads[1],
          threadSource: 'proc-sampled',
        },
      },
      peakRssKiB: { source: peak[0], destination: peak[1] },
      verify: { method: spec.verify ? 'byte-compare' : 'none', result },
      accel: null,
      raw: { source: info, destination: dinfo },
    };
  } finally {
    await Promise.all([src && stopQemu(src), dst && stopQemu(dst)]);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The QEMU binary's zero-page handling, from a short-lived stopped instance. */
export async function probeQemu(qemu: QemuInfo): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'livemig-bench-qemu-probe-'));
  let q: QemuProcess | null = null;
  try {
    q = await startQemu(
      qemu.path,
      ['-accel', 'tcg', '-machine', 'pc', '-m', '16M', '-nodefaults', '-display', 'none', '-S'],
      join(dir, 'probe.qmp'),
    );
    return (await qemuZeroPageDetection(q)) ?? QEMU_NO_ZPD;
  } finally {
    if (q) await stopQemu(q);
    rmSync(dir, { recursive: true, force: true });
  }
}

export function qemuAvailable(): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((d) => existsSync(join(d, QEMU_BINARY)));
}
