// The PC bench's livemig peer: two `livemig run --machine pc` processes (LocalPair), the guest
// booted once and chained from run to run (pair.next()), each side's serial console attached
// before the migration starts. Driven over QMP as a QEMU user would: capabilities (multifd,
// events, x-verify-ram), parameters (channels, zero-page-detection, downtime-limit), migrate.

import { setTimeout as sleep } from 'node:timers/promises';
import { ConsoleClient } from '../chardev/console-client.js';
import { LocalPair } from '../harness/local-migration.js';
import { QmpCommandError } from '../control/qmp-client.js';
import { LIVEMIG_VERSION } from '../control/version.js';
import { livemigSideCpu, ModeUnavailableError, type Info } from './livemig-runner.js';
import { waitForShell } from './pc-guest.js';
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
import { processCpuMs, procStatusKiB } from './proc.js';
import { MODE_ZERO_PAGE_DETECTION } from './types.js';

export interface PcBootSpec {
  ram: string;
  ramBytes: number;
  kernel: string;
  initrd: string;
  append: string;
  bootTimeoutMs: number;
}

export class LivemigPcSession implements PcSession {
  readonly peer = 'livemig' as const;
  readonly version = `livemig ${LIVEMIG_VERSION}`;

  private constructor(
    private readonly pair: LocalPair,
    private srcConsole: ConsoleClient,
    private dstConsole: ConsoleClient,
    readonly bootMs: number,
  ) {}

  static async boot(spec: PcBootSpec): Promise<LivemigPcSession> {
    const t0 = Date.now();
    const pair = await LocalPair.start({
      machine: 'pc',
      ram: spec.ram,
      pc: { kernel: spec.kernel, initrd: spec.initrd, append: spec.append },
    });
    try {
      const src = await ConsoleClient.connect(pair.source.console!, { retryForMs: 10_000 });
      const ready = await waitForShell(src, spec.bootTimeoutMs);
      const dst = await ConsoleClient.connect(pair.dest.console!, { retryForMs: 10_000 });
      return new LivemigPcSession(pair, src, dst, ready - t0);
    } catch (e) {
      await pair.close();
      throw e;
    }
  }

  get source(): PcSide {
    const g = this.pair.source;
    return { qmp: g.qmp, pid: g.proc.pid!, console: this.srcConsole };
  }

  get dest(): PcSide {
    const g = this.pair.dest;
    return { qmp: g.qmp, pid: g.proc.pid!, console: this.dstConsole };
  }

  async migrate(spec: PcMigrateSpec): Promise<PcMigration> {
    const src = this.source;
    const dst = this.dest;
    const capabilities = [
      { capability: 'multifd', state: true },
      { capability: 'events', state: true },
      // RAM identical at switchover; its digests pause the guest after `downtime` (measured).
      { capability: 'x-verify-ram', state: spec.verify },
    ];
    await src.qmp.execute('migrate-set-capabilities', { capabilities });
    await dst.qmp.execute('migrate-set-capabilities', { capabilities });
    const params: Record<string, unknown> = {
      'multifd-channels': spec.channels,
      'zero-page-detection': MODE_ZERO_PAGE_DETECTION[spec.mode],
      'downtime-limit': spec.downtimeLimitMs,
    };
    if (spec.mode === 'offload') params['accel-path'] = spec.accelPath;
    params['x-migration-nice'] = spec.migrationNice;
    try {
      await src.qmp.execute('migrate-set-parameters', params);
    } catch (e) {
      if (e instanceof QmpCommandError) throw new ModeUnavailableError(spec.mode, e.desc);
      throw e;
    }
    const uri = await this.pair.incomingUri();
    const srcLog = new EventLog(src.qmp);
    const dstLog = new EventLog(dst.qmp);
    try {
      const cpu0 = { src: processCpuMs(src.pid), dst: processCpuMs(dst.pid) };
      const t0 = Date.now();
      try {
        await src.qmp.execute('migrate', { uri });
      } catch (e) {
        if (e instanceof QmpCommandError) throw new ModeUnavailableError(spec.mode, e.desc);
        throw e;
      }
      const { info, cancelled } = await followSource(src.qmp, t0, spec);
      let dinfo: Info = {};
      const deadline = Date.now() + DEST_TIMEOUT_MS;
      while (Date.now() < deadline) {
        dinfo = await within(dst.qmp.execute<Info>('query-migrate'), QMP_TIMEOUT_MS, 'dest');
        if (
          dinfo.status === 'completed' ||
          dinfo.status === 'failed' ||
          info.status !== 'completed'
        )
          break;
        await sleep(10);
      }
      const completed = info.status === 'completed' && dinfo.status === 'completed';
      let resumeAt: number | null = null;
      for (let i = 0; completed && resumeAt === null && i < 500; i++) {
        resumeAt = dstLog.first('RESUME', t0);
        if (resumeAt === null) await sleep(20);
      }
      const tEnd = dstLog.first('MIGRATION', t0, (d) => d?.status === 'completed') ?? Date.now();
      const cpu1 = { src: processCpuMs(src.pid), dst: processCpuMs(dst.pid) };
      const stopAt = srcLog.first('STOP', t0);
      const lm = info.livemig ?? {};
      const precise = Number(lm['downtime-precise'] ?? info.downtime);
      const verifyPauseMs =
        resumeAt !== null && stopAt !== null && Number.isFinite(precise)
          ? Math.max(0, resumeAt - (stopAt + precise))
          : null;
      return {
        info,
        dinfo,
        t0,
        tEnd,
        stopAt,
        resumeAt,
        verifyPauseMs,
        zeroPageDetection: String(lm['zero-page-detection'] ?? MODE_ZERO_PAGE_DETECTION[spec.mode]),
        cpu: {
          source: livemigSideCpu(info, cpu1.src - cpu0.src),
          destination: livemigSideCpu(dinfo, cpu1.dst - cpu0.dst),
        },
        peakRssKiB: {
          source: procStatusKiB(src.pid, 'VmHWM'),
          destination: procStatusKiB(dst.pid, 'VmHWM'),
        },
        verify: {
          method: spec.verify ? 'x-verify-ram' : 'none',
          result: lm.verify === 'ok' ? 'ok' : lm.verify === 'mismatch' ? 'mismatch' : 'not-checked',
        },
        differingPages: null,
        cancelled,
      };
    } finally {
      srcLog.stop();
      dstLog.stop();
    }
  }

  async next(): Promise<void> {
    await this.pair.next();
    await this.srcConsole.close();
    this.srcConsole = this.dstConsole;
    this.dstConsole = await ConsoleClient.connect(this.pair.dest.console!, { retryForMs: 10_000 });
  }

  async newDestination(): Promise<void> {
    await this.pair.newDestination();
    await this.dstConsole.close();
    this.dstConsole = await ConsoleClient.connect(this.pair.dest.console!, { retryForMs: 10_000 });
  }

  async pause(): Promise<void> {
    await within(this.pair.source.qmp.execute('stop'), QMP_TIMEOUT_MS, 'livemig stop');
  }

  async resume(): Promise<void> {
    await within(this.pair.source.qmp.execute('cont'), QMP_TIMEOUT_MS, 'livemig cont');
  }

  async close(): Promise<void> {
    await Promise.all([this.srcConsole.close(), this.dstConsole.close()]);
    await this.pair.close();
  }
}
