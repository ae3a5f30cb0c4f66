// The outgoing side of one migration, driven from the main thread: connects the main channel,
// starts live_migration and the multifdsend_N threads, follows their progress, switches over,
// and completes, fails or cancels. Whatever happens, the guest's RAM is only ever read, and a
// migration that does not complete leaves the guest running as it was.

import { connectChannel, readyEvent, type TransportOptions } from '../transport.js';
import { randomBytes } from 'node:crypto';
import type { Worker } from 'node:worker_threads';
import type { WorkerPool } from '../../util/worker-pool.js';
import type { Accelerator } from '../../accel/driver.js';
import { ControlChannel, type Frame } from '../control-channel.js';
import {
  FrameType,
  HANDSHAKE_SIZE,
  MAIN_MAGIC,
  PAGE_SIZE,
  PROTOCOL_VERSION,
  encodeDeviceState,
  encodeHandshake,
  sessionHex,
} from '../protocol.js';
import type { GuestMachine } from '../../machine/guest-machine.js';
import type { MigrationCapabilities, MigrationParameters } from '../parameters.js';
import type { CpuRegistry } from '../../util/cpu-slots.js';
import { CHAN_STAT, LIVE, MIG, createSlots } from './channel-slots.js';
import { CHAN_WORD } from './channel-slots.js';
import type {
  LiveMigrationCommand,
  LiveMigrationWorkerData,
  SendWorkerData,
  SourceWorkerMessage,
} from './worker-data.js';
import { pagesOf } from '../../ram/layout.js';
import { genericError } from '../../util/errors.js';
import type { MigrationStatus } from '../status.js';
import { parseTcpUri } from '../uri.js';
import { haltedWorkQueues } from '../../accel/hw/wq-state.js';

export interface SourceEvents {
  status(s: MigrationStatus): void;
  pass(pass: number): void;
  /** the guest was stopped (true) or resumed (false) by the migration */
  runState(running: boolean): void;
}

const SETUP_TIMEOUT_MS = 10_000;
export const SEND_WORKER = new URL('./multifd-send-worker.js', import.meta.url);
export const LM_WORKER = new URL('./live-migration-worker.js', import.meta.url);
const COMPLETE_TIMEOUT_MS = 60_000;
/**
 * A destination that refuses something says why on the main channel as it drops the multifd
 * channels; their "connection closed" may reach us first. How long a channel's error waits for
 * that reason before it becomes the migration's.
 */
const CHANNEL_ERROR_GRACE_MS = 500;
/**
 * How long a channel asked to finish may take to acknowledge (an accelerator request in flight
 * ends within its 1 s deadline) before it is ended anyway.
 */
const CHANNEL_STOP_GRACE_MS = 3000;

/**
 * End a channel asked to finish: once it says it stopped (or it exits, or the grace passes),
 * terminate it, and settle when it is gone.
 */
function endChannel(w: Worker): Promise<void> {
  return new Promise<void>((resolve) => {
    if (w.threadId < 0) return resolve(); // exited already
    let ended = false;
    const end = (): void => {
      if (ended) return;
      ended = true;
      clearTimeout(grace);
      w.off('message', onMessage);
      void w.terminate().then(() => resolve());
    };
    const onMessage = (m: SourceWorkerMessage): void => {
      if (m.type === 'channel-stopped') end();
    };
    const grace = setTimeout(end, CHANNEL_STOP_GRACE_MS);
    grace.unref();
    w.on('message', onMessage);
    w.once('exit', end);
  });
}

export class MigrationSource {
  status: MigrationStatus = 'setup';
  errorDesc: string | undefined;
  readonly session = randomBytes(16);
  private setupMs = 0;
  private endedAt = 0;
  private stoppedAt = 0;
  private downtimeMs: number | undefined;
  private expectedDowntimeMs = 0;
  private passes = 0;
  private lastPass: Extract<SourceWorkerMessage, { type: 'pass' }> | undefined;
  private finalBytesBefore = 0;
  private control: ControlChannel | null = null;
  private workers: Worker[] = [];
  private readonly mig = new SharedArrayBuffer(4 * MIG.size);
  private readonly migWords = new Int32Array(this.mig);
  private readonly chanStats: SharedArrayBuffer;
  private readonly chanStatsView: Float64Array;
  private readonly live = new SharedArrayBuffer(8 * LIVE.size);
  private readonly wasRunning: boolean;
  private mainBytes = 0;
  private verify: 'off' | 'pending' | 'ok' | 'mismatch' = 'off';
  /** the source's own RAM digest, computed once the destination has acknowledged */
  private sourceDigest: Promise<string> | null = null;
  /** the device state's JSON part, once the vCPU has stopped and its binary part is sent */
  private deviceJson: Promise<Record<string, unknown>> | null = null;
  private readonly channels: number;
  private readonly threadNames: string[] = [];
  private completeTimer: NodeJS.Timeout | undefined;
  /** a worker's error, waiting for the destination's own reason (CHANNEL_ERROR_GRACE_MS) */
  private channelError: NodeJS.Timeout | undefined;
  /** CPU ms of dsa_completion and the emulated engines: at start, and the latest reading */
  private accelCpuBase: Record<string, number> = {};
  private accelCpu: Record<string, number> = {};
  private accelClosed = false;
  /** livemig's monotone progress, in % */
  private progress = 0;
  /** content-sync machines: what the dirty syncs cost the vCPU thread */
  private readonly syncs = { count: 0, totalMs: 0, maxMs: 0, lastMs: 0, pages: 0 };

  constructor(
    private readonly guest: GuestMachine,
    private readonly params: MigrationParameters,
    private readonly caps: MigrationCapabilities,
    private readonly cpu: CpuRegistry,
    private readonly uri: string,
    private readonly events: SourceEvents,
    private readonly pool: WorkerPool,
    /** open for zero-page-detection=dsa-accel; this migration closes it */
    private readonly accel?: Accelerator,
    /** channel security for every connection of this migration (plain TCP by default) */
    private readonly transport: TransportOptions = {},
    /** when `migrate` was issued (opening the accelerator is part of setup, as in QEMU) */
    private readonly startedAt = Date.now(),
  ) {
    this.channels = caps.multifd ? params['multifd-channels'] : 1;
    this.chanStats = new SharedArrayBuffer(8 * CHAN_STAT.size * this.channels);
    this.chanStatsView = new Float64Array(this.chanStats);
    this.wasRunning = guest.running;
    this.updateLiveParams(params);
    if (caps['x-verify-ram']) this.verify = 'pending';
    if (caps['pause-before-switchover']) this.migWords[MIG.switchover] = 1;
  }

  /** QEMU lets downtime-limit and max-bandwidth change during a migration. */
  updateLiveParams(p: MigrationParameters): void {
    const live = new Float64Array(this.live);
    live[LIVE.downtimeLimitMs] = p['downtime-limit'];
    live[LIVE.maxBandwidth] = p['max-bandwidth'];
    live[LIVE.availSwitchoverBandwidth] = p['avail-switchover-bandwidth'];
    live[LIVE.autoConverge] = this.caps['auto-converge'] ? 1 : 0;
    live[LIVE.throttleInitial] = p['cpu-throttle-initial'];
    live[LIVE.throttleIncrement] = p['cpu-throttle-increment'];
    live[LIVE.throttleMax] = p['max-cpu-throttle'];
    live[LIVE.throttleTailslow] = p['cpu-throttle-tailslow'] ? 1 : 0;
    live[LIVE.throttleTrigger] = p['throttle-trigger-threshold'];
  }

  start(): void {
    if (this.accel) {
      // Engines are shared by the process; account only what this migration adds.
      void this.accel.threadCpu().then((c) => (this.accelCpuBase = c));
    }
    const { host, port } = parseTcpUri(this.uri);
    const socket = connectChannel(host, port, this.transport);
    const ctl = new ControlChannel(socket, false);
    this.control = ctl;
    ctl.onError = (e) => this.fail(`main channel: ${e.message}`);
    ctl.onClose = () => {
      if (!this.finished()) this.fail('main channel closed by the destination');
    };
    ctl.onFrame = (f) => this.onFrame(f);
    // Threads start while the main channel connects: their start-up overlaps the handshake.
    this.spawnWorkers(host);
    socket.once(readyEvent(this.transport), () => {
      socket.write(
        encodeHandshake({
          magic: MAIN_MAGIC,
          version: PROTOCOL_VERSION,
          session: this.session,
          channel: 0xffffffff,
          channels: this.channels,
        }),
      );
      ctl.send(FrameType.Hello, {
        version: PROTOCOL_VERSION,
        session: sessionHex(this.session),
        channels: this.channels,
        pageSize: PAGE_SIZE,
        packetPages: this.params['multifd-packet-size'] / PAGE_SIZE,
        verify: this.caps['x-verify-ram'],
        stallTimeoutMs: this.params['x-stall-timeout'],
        threadNice: this.params['x-migration-nice'],
        blocks: this.guest.blocks.map((b) => ({ id: b.id, name: b.name, size: b.size })),
        machine: this.guest.describe(),
      });
      this.mainBytes += HANDSHAKE_SIZE;
      const limit = this.params['x-stall-timeout'];
      ctl.startHeartbeat(limit, (ms) =>
        this.fail(
          `destination stalled: nothing heard on the main channel for ${ms} ms (x-stall-timeout ${limit})`,
        ),
      );
    });
    this.completeTimer = setTimeout(() => {
      if (this.status === 'setup') this.fail(`setup timed out after ${SETUP_TIMEOUT_MS} ms`);
    }, SETUP_TIMEOUT_MS);
    this.completeTimer.unref();
  }

  private finished(): boolean {
    return ['completed', 'failed', 'cancelled'].includes(this.status);
  }

  private setStatus(s: MigrationStatus): void {
    if (this.status === s) return;
    this.status = s;
    this.events.status(s);
  }

  private onFrame(f: Frame): void {
    switch (f.type) {
      case FrameType.HelloReply: {
        if (this.status !== 'setup') return this.fail('unexpected HelloReply');
        const ports = f.payload.ports;
        if (
          !Array.isArray(ports) ||
          ports.length !== this.channels ||
          !ports.every((p) => Number.isInteger(p) && p > 0 && p < 65536)
        ) {
          return this.fail(`destination sent invalid channel ports ${JSON.stringify(ports)}`);
        }
        this.connectChannels(ports as number[]);
        return;
      }
      case FrameType.CompleteAck:
        return this.onCompleteAck();
      case FrameType.Digest:
        return this.onDigest(String(f.payload.digest ?? ''));
      case FrameType.Ready:
        return this.onReady();
      case FrameType.Error:
        return this.fail(`destination: ${String(f.payload.message ?? 'unknown error')}`);
      default:
        return this.fail(`unexpected frame type ${f.type} on the main channel`);
    }
  }

  private spawn(file: URL, name: string, data: object): Worker {
    const w = this.pool.take(file, data);
    w.on('message', (m: SourceWorkerMessage) => this.onWorkerMessage(m));
    w.on('error', (e) => this.fail(`${name}: ${e.message}`));
    this.workers.push(w);
    this.threadNames.push(name);
    this.cpu.reset(name);
    return w;
  }

  private channelWorkers: Worker[] = [];
  private lmWorker: Worker | null = null;
  private connected = 0;

  private spawnWorkers(host: string): void {
    const shared = {
      blocks: this.guest.blocks,
      slots: createSlots(this.channels),
      mig: this.mig,
      chanStats: this.chanStats,
      chanWords: new SharedArrayBuffer(4 * CHAN_WORD.size * this.channels),
      cpuSlots: this.cpu.slots,
      channels: this.channels,
      packetPages: this.params['multifd-packet-size'] / PAGE_SIZE,
      stallTimeoutMs: this.params['x-stall-timeout'],
      threadNice: this.params['x-migration-nice'],
      mode: this.caps.multifd ? this.params['zero-page-detection'] : 'legacy',
    } as const;
    for (let i = 0; i < this.channels; i++) {
      const name = `multifdsend_${i}`;
      const data: SendWorkerData = {
        ...shared,
        index: i,
        host,
        session: new Uint8Array(this.session),
        cpuSlot: this.cpu.slot(name),
        accel: this.accel?.handle,
        transport: this.transport,
      };
      this.channelWorkers.push(this.spawn(SEND_WORKER, name, data));
    }
    const lm: LiveMigrationWorkerData = {
      ...shared,
      vcpuControl: this.guest.vcpu.buffer,
      dirtyTracking: this.guest.dirtyTracking,
      // The RAM blocks of a content-sync machine are brought up to date while channels connect.
      firstSyncTicket:
        this.guest.dirtyTracking === 'content-sync' ? this.guest.vcpu.requestSync() : undefined,
      cpuSlot: this.cpu.slot('live_migration'),
      liveParams: this.live,
    };
    this.lmWorker = this.spawn(LM_WORKER, 'live_migration', lm);
  }

  private connectChannels(ports: number[]): void {
    this.channelWorkers.forEach((w, i) => w.postMessage({ type: 'connect', port: ports[i] }));
  }

  private onConnected(): void {
    if (++this.connected < this.channels) return;
    this.setupMs = Date.now() - this.startedAt;
    this.setStatus('active');
    const start: LiveMigrationCommand = { type: 'start' };
    this.lmWorker!.postMessage(start);
  }

  private onWorkerMessage(m: SourceWorkerMessage): void {
    if (this.finished()) return;
    switch (m.type) {
      case 'connected':
        return this.onConnected();
      case 'dirty-sync':
        this.syncs.count++;
        this.syncs.totalMs += m.ms;
        this.syncs.maxMs = Math.max(this.syncs.maxMs, m.ms);
        this.syncs.lastMs = m.ms;
        this.syncs.pages += m.pages;
        return;
      case 'error':
        if (this.control && !this.control.socket.destroyed) {
          this.channelError ??= setTimeout(() => this.fail(m.message), CHANNEL_ERROR_GRACE_MS);
          return;
        }
        return this.fail(m.message);
      case 'pass':
        this.refreshAccelCpu();
        this.passes = m.pass;
        this.lastPass = m;
        this.expectedDowntimeMs = m.expectedDowntimeMs;
        this.events.pass(m.pass + 1);
        return;
      case 'stopped':
        this.stoppedAt = m.at;
        this.finalBytesBefore = this.transferred();
        this.passes = m.pass - 1;
        this.events.runState(false);
        this.setStatus(this.caps['pause-before-switchover'] ? 'pre-switchover' : 'device');
        // The guest no longer changes: its device state goes out while the final pass does.
        this.deviceJson = this.guest.deviceState().then((state) => {
          if (state.blob && !this.finished()) {
            const parts = encodeDeviceState(state.json, state.blob);
            this.mainBytes += this.control!.sendBinary(FrameType.DeviceState, parts);
          }
          return state.json;
        });
        this.deviceJson.catch((e: Error) => this.fail(`device state: ${e.message}`));
        return;
      case 'final-sent': {
        this.passes = m.pass;
        void this.deviceJson!.then(
          (device) => {
            if (this.finished()) return;
            this.control!.send(FrameType.Complete, { finalPass: m.pass, device });
          },
          () => {},
        );
        this.completeTimer = setTimeout(
          () =>
            this.fail(`destination did not acknowledge completion in ${COMPLETE_TIMEOUT_MS} ms`),
          COMPLETE_TIMEOUT_MS,
        );
        this.completeTimer.unref();
        return;
      }
    }
  }

  private refreshAccelCpu(): Promise<void> {
    if (!this.accel || this.accelClosed) return Promise.resolve();
    return this.accel.threadCpu().then((c) => {
      for (const [k, v] of Object.entries(c)) {
        this.accelCpu[k] = Math.round((v - (this.accelCpuBase[k] ?? 0)) * 10) / 10;
      }
    });
  }

  /** Read the accelerator's last figures, then close it (after the channels let go of it). */
  private closeAccel(): void {
    if (!this.accel || this.accelClosed || this.accelFinal) return;
    this.accelFinal = this.refreshAccelCpu()
      .catch(() => {})
      .then(() => {
        this.accelStats = { ...this.accel!.counters() };
        this.accelClosed = true;
        // After the channels acknowledged that they no longer submit (accel.close() also waits
        // for any submitter still inside before it closes a WQ).
        void (this.channelsStopped ?? Promise.resolve())
          .then(() => this.accel!.close())
          .catch(() => {});
      });
  }

  private accelStats: Record<string, unknown> | undefined;
  /** Settles once the accelerator's last figures are read (closeAccel). */
  private accelFinal: Promise<void> | undefined;
  /** The destination has everything; only the last figures are being read. */
  private finishing = false;
  /** CompleteAck arrived */
  private acked = false;
  /** CompleteAck (and, with x-verify-ram, a matching Digest) are in: Ready may come */
  private readyDue = false;

  private onCompleteAck(): void {
    if (this.status !== 'device' || this.acked) return this.fail('unexpected CompleteAck');
    this.acked = true;
    this.downtimeMs = performance.timeOrigin + performance.now() - this.stoppedAt;
    this.endedAt = Date.now();
    clearTimeout(this.completeTimer);
    this.stopWorkers();
    this.closeAccel();
    if (this.verify === 'pending') {
      // The guest stays stopped, so its RAM is what the destination must now hold.
      this.sourceDigest = this.guest.digest();
      this.sourceDigest.catch((e: Error) => this.fail(`RAM digest: ${e.message}`));
      return;
    }
    this.awaitReady();
  }

  private onDigest(digest: string): void {
    if (this.verify !== 'pending' || !this.sourceDigest) return this.fail('unexpected Digest');
    void this.sourceDigest.then(
      (mine) => {
        if (this.finished() || this.finishing) return;
        const ok = digest === mine;
        this.verify = ok ? 'ok' : 'mismatch';
        this.control!.send(FrameType.VerifyResult, { ok });
        if (!ok) {
          this.fail(
            `RAM verification failed: destination digest ${digest} differs from the source's ${mine}`,
          );
          return;
        }
        this.awaitReady();
      },
      () => {},
    );
  }

  /**
   * The destination has everything (and the verdict) and says Ready next. Until then the guest
   * is still this side's: a link that drops now fails the migration and resumes it here.
   */
  private awaitReady(): void {
    this.readyDue = true;
    const limit = this.params['x-stall-timeout'];
    this.completeTimer = setTimeout(
      () => this.fail(`destination did not say Ready within ${limit} ms (x-stall-timeout)`),
      limit,
    );
    this.completeTimer.unref();
  }

  /** The handover: from Release on, the destination runs the guest and this side never does. */
  private onReady(): void {
    if (!this.readyDue || this.finishing) return this.fail('unexpected Ready');
    clearTimeout(this.completeTimer);
    this.control!.send(FrameType.Release, {});
    this.finish();
  }

  private finish(): void {
    this.finishing = true;
    this.control?.stopHeartbeat();
    this.control?.socket.end();
    // 'completed' promises final figures: the accelerator's CPU is read before it is announced.
    const final = this.accelFinal ?? Promise.resolve();
    void final.then(() => {
      if (this.status !== 'failed' && this.status !== 'cancelled') this.setStatus('completed');
    });
  }

  private transferred(): number {
    let t = this.mainBytes;
    for (let c = 0; c < this.channels; c++)
      t += this.chanStatsView[c * CHAN_STAT.size + CHAN_STAT.bytes];
    return t;
  }

  private stopWorkers(): void {
    Atomics.store(this.migWords, MIG.abort, 1);
    Atomics.notify(this.migWords, MIG.abort);
    // live_migration has ended on its own after the final pass; the channels end their sockets.
    for (const w of this.channelWorkers) w.postMessage({ type: 'finish' });
    const ws = this.workers;
    this.workers = [];
    this.channelsStopped = Promise.all(ws.filter((w) => this.isChannel(w)).map(endChannel));
    // Give live_migration a moment to end cleanly, then make sure it is gone.
    const others = ws.filter((w) => !this.isChannel(w));
    setTimeout(() => others.forEach((w) => void w.terminate()), 200).unref();
  }

  private isChannel(w: Worker): boolean {
    return this.channelWorkers.includes(w);
  }

  /** Settles once every channel has stopped submitting to the accelerator and ended. */
  private channelsStopped: Promise<unknown> | undefined;

  fail(message: string): void {
    if (this.finished() || this.finishing) return;
    this.errorDesc = message;
    this.abort();
    this.control?.send(FrameType.Error, { message });
    this.control?.close();
    this.setStatus('failed');
  }

  /** QEMU's migrate-continue: leave pre-switchover and send the final pass. */
  continueSwitchover(state: string): void {
    if (this.status !== 'pre-switchover' || state !== 'pre-switchover') {
      throw genericError(
        `Migration not in expected state: ${this.status}` +
          (state !== 'pre-switchover' ? ` (asked to continue from '${state}')` : ''),
      );
    }
    Atomics.store(this.migWords, MIG.switchover, 2);
    Atomics.notify(this.migWords, MIG.switchover);
    this.setStatus('device');
  }

  cancel(): void {
    if (this.finished() || this.finishing) return;
    this.setStatus('cancelling');
    this.control?.send(FrameType.Cancel, { reason: 'migrate_cancel' });
    this.abort();
    this.control?.close();
    this.setStatus('cancelled');
  }

  /** Stop every thread and socket of this migration and give the guest back its vCPU. */
  private abort(): void {
    clearTimeout(this.completeTimer);
    clearTimeout(this.channelError);
    this.endedAt = Date.now();
    Atomics.store(this.migWords, MIG.abort, 1);
    Atomics.notify(this.migWords, MIG.abort);
    // Channels may be inside an accelerator request: they stop, acknowledge, then end.
    for (const w of this.workers) if (this.isChannel(w)) w.postMessage({ type: 'finish' });
    const channels = this.workers.filter((w) => this.isChannel(w));
    for (const w of this.workers) if (!this.isChannel(w)) void w.terminate();
    this.channelsStopped = Promise.all(channels.map(endChannel));
    this.workers = [];
    this.closeAccel();
    // QEMU stops throttling when a migration ends, whichever way.
    this.guest.vcpu.throttle = 0;
    if (this.wasRunning && !this.guest.running) {
      this.guest.start();
      this.events.runState(true);
    }
  }

  info(): Record<string, unknown> {
    const nowMs = this.endedAt || Date.now();
    const total = this.guest.ramBytes;
    let normal = 0;
    let zero = 0;
    let multifd = 0;
    for (let c = 0; c < this.channels; c++) {
      const base = c * CHAN_STAT.size;
      normal += this.chanStatsView[base + CHAN_STAT.normal];
      zero += this.chanStatsView[base + CHAN_STAT.zero];
      multifd += this.chanStatsView[base + CHAN_STAT.bytes];
    }
    const transferred = this.transferred();
    const elapsed = Math.max(1, nowMs - this.startedAt);
    const totalPages = this.guest.blocks.reduce((s, b) => s + pagesOf(b.size), 0);
    let remainingPages = this.lastPass ? this.lastPass.remainingPages : totalPages - normal - zero;
    if (this.status === 'completed') remainingPages = 0;
    const bw = this.lastPass ? this.lastPass.bandwidth : transferred / (elapsed / 1000);
    const ram: Record<string, unknown> = {
      transferred,
      remaining: Math.max(0, remainingPages) * PAGE_SIZE,
      total,
      duplicate: zero,
      normal,
      'normal-bytes': normal * PAGE_SIZE,
      'dirty-pages-rate': Math.round(this.lastPass?.dirtyPagesRate ?? 0),
      mbps: Math.round(((transferred * 8) / 1e6 / (elapsed / 1000)) * 100) / 100,
      'dirty-sync-count': this.passes,
      'postcopy-requests': 0,
      'page-size': PAGE_SIZE,
      'multifd-bytes': this.caps.multifd ? multifd : 0,
      'pages-per-second': Math.round(((normal + zero) * 1000) / elapsed),
      'precopy-bytes': this.stoppedAt ? this.finalBytesBefore : transferred,
      'downtime-bytes': this.stoppedAt ? transferred - this.finalBytesBefore : 0,
      'postcopy-bytes': 0,
    };
    const out: Record<string, unknown> = {
      status: this.status,
      'setup-time': this.setupMs,
      'total-time': nowMs - this.startedAt,
      ram,
    };
    if (this.caps['auto-converge']) {
      out['cpu-throttle-percentage'] = this.finished() ? 0 : (this.lastPass?.throttle ?? 0);
    }
    // remaining can grow when the guest dirties pages; the progress figure never goes back.
    const pct = this.status === 'completed' ? 100 : 100 * (1 - Number(ram.remaining) / total);
    this.progress = Math.max(this.progress, Math.floor(pct * 10) / 10);
    if (this.downtimeMs !== undefined) out.downtime = Math.round(this.downtimeMs);
    else out['expected-downtime'] = Math.round(this.expectedDowntimeMs);
    if (this.errorDesc) out['error-desc'] = this.errorDesc;
    out.livemig = {
      session: sessionHex(this.session),
      progress: this.progress,
      channels: this.channels,
      machine: this.guest.type,
      'zero-page-detection': this.caps.multifd ? this.params['zero-page-detection'] : 'legacy',
      'downtime-precise': this.downtimeMs,
      'bandwidth-bytes-per-second': Math.round(bw),
      verify: this.verify,
      'thread-cpu-ms': {
        ...this.cpu.snapshot(['main', 'live_migration', ...this.threadNames, 'vcpu_0']),
        ...this.accelCpu,
      },
    };
    if (this.guest.dirtyTracking === 'content-sync') {
      const round = (ms: number): number => Math.round(ms * 100) / 100;
      (out.livemig as Record<string, unknown>)['dirty-sync'] = {
        // the vCPU thread compares guest RAM with the RAM block: what that cost it
        count: this.syncs.count,
        'total-ms': round(this.syncs.totalMs),
        'max-ms': round(this.syncs.maxMs),
        'last-ms': round(this.syncs.lastMs),
        'pages-found': this.syncs.pages,
      };
    }
    if (this.accel) {
      const lm = out.livemig as Record<string, unknown>;
      lm.accelerator = {
        'accel-path': this.accel.handle.targets.map((t) => t.text),
        ...(this.accelStats ?? (this.accelClosed ? {} : this.accel.counters())),
        ...haltedWorkQueues(this.accel.handle.hw), // [accel-hw] why a kernel WQ stopped
      };
    }
    return out;
  }
}
