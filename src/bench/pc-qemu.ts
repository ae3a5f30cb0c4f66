// The PC bench's QEMU peer: qemu-system-i386 -M pc -accel tcg booting the same kernel,
// initramfs and command line, driven over QMP as a QEMU user does (multifd with the same
// channels, max-bandwidth set very high on both sides, downtime-limit, migrate-incoming,
// migrate). Guest RAM is a memory-backend-file (share=on) on both sides, and the destination
// starts with -S, so that at completion it stays paused while both RAM files are compared page
// by page; then `cont`. The destination becomes the next source (ping-pong), like livemig's.

import { setTimeout as sleep } from 'node:timers/promises';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { ConsoleClient } from '../chardev/console-client.js';
import type { Info } from './livemig-runner.js';
import { waitForShell } from './pc-guest.js';
import type { PcBootSpec } from './pc-livemig.js';
import {
  DEST_TIMEOUT_MS,
  EventLog,
  followSource,
  QMP_TIMEOUT_MS,
  within,
  type PcMigrateSpec,
  type PcMigration,
  type PcSession,
  type PcSide,
} from './pc-session.js';
import { processCpuMs, procStatusKiB, ThreadSampler } from './proc.js';
import {
  QEMU_NO_ZPD,
  QemuModeUnavailableError,
  ramDir,
  sampledThreads,
  startIncoming,
  startQemu,
  stopQemu,
  type QemuInfo,
  type QemuProcess,
} from './qemu-peer.js';
import { differingPages } from './ram-compare.js';
import type { Mode } from './types.js';

export const QEMU_PC_BINARY = 'qemu-system-i386';
/** QEMU 7.2 throttles to 32 MiB/s by default; livemig does not throttle. */
export const QEMU_MAX_BANDWIDTH = 100 * 1024 ** 3;

export interface QemuPcArgs {
  name: string;
  ramBytes: number;
  ramFile: string;
  kernel: string;
  initrd: string;
  append: string;
  serialPath: string;
  /** a destination: -incoming defer, and -S so that it stays paused at completion */
  incoming: boolean;
}

/** The command line (without -qmp, which startQemu adds). */
export function qemuPcArgs(a: QemuPcArgs): string[] {
  if (a.ramBytes % (1024 * 1024) !== 0) {
    throw new Error(`the QEMU peer needs --ram in whole MiB, got ${a.ramBytes} bytes`);
  }
  const mib = a.ramBytes / 1024 / 1024;
  const args = [
    '-name',
    `${a.name},debug-threads=on`,
    '-M',
    'pc,memory-backend=ram0',
    '-accel',
    'tcg',
    '-m',
    String(mib),
    '-object',
    `memory-backend-file,id=ram0,size=${mib}M,mem-path=${a.ramFile},share=on`,
    // The destination needs the same option ROMs (-kernel adds linuxboot's) to take the stream.
    '-kernel',
    a.kernel,
    '-initrd',
    a.initrd,
    '-append',
    a.append,
    '-serial',
    `unix:${a.serialPath},server=on,wait=off`,
    '-display',
    'none',
  ];
  if (a.incoming) args.push('-incoming', 'defer', '-S');
  return args;
}

/** Why QEMU cannot run `mode` on the PC (7.2 has no zero-page-detection), or null. */
export function qemuPcModeRefusal(mode: Mode, version: string): string | null {
  if (mode === 'baseline') return null;
  return mode === 'offload'
    ? 'QEMU has no dsa-accel zero-page detection upstream (the DSA series was not merged)'
    : `${version} has no zero-page-detection parameter, so mode ${mode} is the same as its baseline`;
}

interface Side {
  q: QemuProcess;
  ramFile: string;
  console: ConsoleClient;
}

export class QemuPcSession implements PcSession {
  readonly peer = 'qemu' as const;
  private started = 0;

  private constructor(
    private readonly qemu: QemuInfo,
    private readonly spec: PcBootSpec,
    private readonly dir: string,
    private src: Side,
    private dst: Side,
    readonly bootMs: number,
  ) {}

  get version(): string {
    return this.qemu.version;
  }

  private static async side(
    qemu: QemuInfo,
    spec: PcBootSpec,
    dir: string,
    name: string,
    incoming: boolean,
  ): Promise<Side> {
    const ramFile = join(dir, `${name}.ram`);
    const serialPath = join(dir, `${name}.serial`);
    const args = qemuPcArgs({ ...spec, name, ramFile, serialPath, incoming });
    const q = await startQemu(qemu.path, args, join(dir, `${name}.qmp`));
    try {
      const console = await ConsoleClient.connect(`unix:${serialPath}`, { retryForMs: 10_000 });
      return { q, ramFile, console };
    } catch (e) {
      await stopQemu(q);
      throw e;
    }
  }

  static async boot(qemu: QemuInfo, spec: PcBootSpec): Promise<QemuPcSession> {
    const dir = ramDir();
    let src: Side | null = null;
    try {
      const t0 = Date.now();
      src = await QemuPcSession.side(qemu, spec, dir, 'q0', false);
      const ready = await waitForShell(src.console, spec.bootTimeoutMs);
      const dst = await QemuPcSession.side(qemu, spec, dir, 'q1', true);
      const s = new QemuPcSession(qemu, spec, dir, src, dst, ready - t0);
      s.started = 2;
      return s;
    } catch (e) {
      if (src) await closeSide(src);
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  get source(): PcSide {
    return { qmp: this.src.q.qmp, pid: this.src.q.proc.pid!, console: this.src.console };
  }

  get dest(): PcSide {
    return { qmp: this.dst.q.qmp, pid: this.dst.q.proc.pid!, console: this.dst.console };
  }

  async migrate(spec: PcMigrateSpec): Promise<PcMigration> {
    const refused = qemuPcModeRefusal(spec.mode, this.qemu.version);
    if (refused) throw new QemuModeUnavailableError(refused);
    const src = this.src.q;
    const dst = this.dst.q;
    const capabilities = [
      { capability: 'multifd', state: true },
      { capability: 'events', state: true },
    ];
    const params = {
      'multifd-channels': spec.channels,
      'max-bandwidth': QEMU_MAX_BANDWIDTH,
      'downtime-limit': spec.downtimeLimitMs,
    };
    for (const q of [src, dst]) {
      await q.qmp.execute('migrate-set-capabilities', { capabilities });
      await q.qmp.execute('migrate-set-parameters', params);
    }
    const uri = await startIncoming(dst.qmp);
    const pids = [src.proc.pid!, dst.proc.pid!];
    const srcLog = new EventLog(src.qmp);
    const dstLog = new EventLog(dst.qmp);
    const samplers = pids.map((p) => new ThreadSampler(p));
    try {
      const cpu0 = pids.map(processCpuMs);
      const t0 = Date.now();
      await src.qmp.execute('migrate', { uri });
      const followed = await followSource(src.qmp, t0, spec);
      const cancelled = followed.cancelled;
      let info = followed.info;
      let dinfo: Info = {};
      let doneAt: number | null = null;
      if (info.status === 'completed') {
        for (let i = 0; doneAt === null && i < DEST_TIMEOUT_MS / 20; i++) {
          doneAt = dstLog.first('MIGRATION', t0, (d) => d?.status === 'completed');
          if (doneAt === null && dstLog.first('MIGRATION', t0, (d) => d?.status === 'failed'))
            break;
          if (doneAt === null) await sleep(20);
        }
        dinfo = await within(dst.qmp.execute<Info>('query-migrate'), QMP_TIMEOUT_MS, 'dest');
        // QEMU sets 'completed' before it computes total-time and downtime (7.2 reports 0 in
        // between): read the source's final figures again.
        for (let i = 0; i < 50 && !(Number(info['total-time'] ?? 0) > 0); i++) {
          await sleep(20);
          info = await src.qmp.execute<Info>('query-migrate');
        }
      }
      const threads = samplers.map((s) => sampledThreads(s.stop()));
      const cpu1 = pids.map(processCpuMs);
      const peak = pids.map((p) => procStatusKiB(p, 'VmHWM'));
      const completed = info.status === 'completed' && dinfo.status === 'completed';
      let differing: number | null = null;
      let resumeAt: number | null = null;
      if (completed) {
        // The destination waits under -S: its RAM is what it received.
        if (spec.verify) {
          differing = differingPages(this.src.ramFile, this.dst.ramFile, this.spec.ramBytes).length;
        }
        await within(dst.qmp.execute('cont'), QMP_TIMEOUT_MS, 'QEMU destination cont');
        for (let i = 0; resumeAt === null && i < 500; i++) {
          resumeAt = dstLog.first('RESUME', t0);
          if (resumeAt === null) await sleep(10);
        }
      }
      return {
        info,
        dinfo,
        t0,
        tEnd: doneAt ?? Date.now(),
        stopAt: srcLog.first('STOP', t0),
        resumeAt,
        verifyPauseMs: resumeAt !== null && doneAt !== null ? resumeAt - doneAt : null,
        zeroPageDetection: QEMU_NO_ZPD,
        cpu: {
          source: {
            processMs: cpu1[0] - cpu0[0],
            threads: threads[0],
            threadSource: 'proc-sampled',
          },
          destination: {
            processMs: cpu1[1] - cpu0[1],
            threads: threads[1],
            threadSource: 'proc-sampled',
          },
        },
        peakRssKiB: { source: peak[0], destination: peak[1] },
        verify: {
          method: spec.verify ? 'byte-compare' : 'none',
          result: differing === null ? 'not-checked' : differing === 0 ? 'ok' : 'mismatch',
        },
        differingPages: differing,
        cancelled,
      };
    } finally {
      for (const s of samplers) s.stop();
      srcLog.stop();
      dstLog.stop();
    }
  }

  private freshDest(): Promise<Side> {
    return QemuPcSession.side(this.qemu, this.spec, this.dir, `q${this.started++}`, true);
  }

  async next(): Promise<void> {
    const old = this.src;
    this.src = this.dst;
    this.dst = await this.freshDest();
    await closeSide(old);
  }

  async newDestination(): Promise<void> {
    const old = this.dst;
    this.dst = await this.freshDest();
    await closeSide(old);
  }

  async pause(): Promise<void> {
    await within(this.src.q.qmp.execute('stop'), QMP_TIMEOUT_MS, 'QEMU stop');
  }

  async resume(): Promise<void> {
    await within(this.src.q.qmp.execute('cont'), QMP_TIMEOUT_MS, 'QEMU cont');
  }

  async close(): Promise<void> {
    await Promise.all([closeSide(this.src), closeSide(this.dst)]);
    rmSync(this.dir, { recursive: true, force: true });
  }
}

async function closeSide(s: Side): Promise<void> {
  await s.console.close();
  await stopQemu(s.q);
  rmSync(s.ramFile, { force: true });
}
