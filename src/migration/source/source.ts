// The outgoing side of one migration, driven from the main thread: connects the main channel,
// starts live_migration and the multifdsend_N threads, follows their progress, switches over,
// and completes, fails or cancels. Whatever happens, the guest's RAM is only ever read, and a
// migration that does not complete leaves the guest running as it was.

import { connectChannel, readyEvent, type TransportOptions } from '../transport.js';
import { randomBytes } from 'node:crypto';
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
import { CHAN_WORD, LIVE, MIG, createSlots } from './channel-slots.js';
import type {
  LiveMigrationWorkerData,
  SendWorkerData,
  SourceWorkerMessage,
} from './worker-data.js';
import { genericError } from '../../util/errors.js';
import type { MigrationStatus } from '../status.js';
import { parseTcpUri } from '../uri.js';
import { SourceThreads } from './source-threads.js';
import { AcceleratorFigures } from './accelerator-figures.js';
import { SourceFigures, type VerifyState } from './source-figures.js';

export { LM_WORKER, SEND_WORKER } from './source-threads.js';

export interface SourceEvents {
  status(s: MigrationStatus): void;
  pass(pass: number): void;
  /** the guest was stopped (true) or resumed (false) by the migration */
  runState(running: boolean): void;
}

const SETUP_TIMEOUT_MS = 10_000;
const COMPLETE_TIMEOUT_MS = 60_000;
/**
 * A destination that refuses something says why on the main channel as it drops the multifd
 * channels; their "connection closed" may reach us first. How long a channel's error waits for
 * that reason before it becomes the migration's.
 */
const CHANNEL_ERROR_GRACE_MS = 500;

export class MigrationSource {
  status: MigrationStatus = 'setup';
  errorDesc: string | undefined;
  readonly session = randomBytes(16);
  private control: ControlChannel | null = null;
  private readonly mig = new SharedArrayBuffer(4 * MIG.size);
  private readonly migWords = new Int32Array(this.mig);
  private readonly live = new SharedArrayBuffer(8 * LIVE.size);
  private readonly wasRunning: boolean;
  private verify: VerifyState = 'off';
  /** the source's own RAM digest, computed once the destination has acknowledged */
  private sourceDigest: Promise<string> | null = null;
  /** the device state's JSON part, once the vCPU has stopped and its binary part is sent */
  private deviceJson: Promise<Record<string, unknown>> | null = null;
  private readonly channels: number;
  private readonly threads: SourceThreads;
  private readonly accelFigures: AcceleratorFigures | undefined;
  private readonly figures: SourceFigures;
  private completeTimer: NodeJS.Timeout | undefined;
  /** a worker's error, waiting for the destination's own reason (CHANNEL_ERROR_GRACE_MS) */
  private channelError: NodeJS.Timeout | undefined;

  constructor(
    private readonly guest: GuestMachine,
    private readonly params: MigrationParameters,
    private readonly caps: MigrationCapabilities,
    private readonly cpu: CpuRegistry,
    private readonly uri: string,
    private readonly events: SourceEvents,
    pool: WorkerPool,
    /** open for zero-page-detection=dsa-accel; this migration closes it */
    private readonly accel?: Accelerator,
    /** channel security for every connection of this migration (plain TCP by default) */
    private readonly transport: TransportOptions = {},
    /** when `migrate` was issued (opening the accelerator is part of setup, as in QEMU) */
    private readonly startedAt = Date.now(),
  ) {
    this.channels = caps.multifd ? params['multifd-channels'] : 1;
    this.threads = new SourceThreads(
      pool,
      cpu,
      this.migWords,
      (m) => this.onWorkerMessage(m),
      (message) => this.fail(message),
    );
    this.accelFigures = accel ? new AcceleratorFigures(accel) : undefined;
    this.figures = new SourceFigures(
      guest,
      params,
      caps,
      cpu,
      this.session,
      this.channels,
      this.threads.names,
      this.accelFigures,
      startedAt,
    );
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
    this.accelFigures?.start();
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
      this.figures.mainBytes += HANDSHAKE_SIZE;
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
        this.threads.connectChannels(ports as number[]);
        return;
      }
      case FrameType.CompleteAck:
        return this.onCompleteAck();
      case FrameType.Digest:
        return this.onDigest(String(f.payload.digest ?? ''));
      case FrameType.Ready:
        return this.onReady();
      case FrameType.PassApplied:
        return this.onPassApplied(f.payload.pass);
      case FrameType.Error:
        return this.fail(`destination: ${String(f.payload.message ?? 'unknown error')}`);
      default:
        return this.fail(`unexpected frame type ${f.type} on the main channel`);
    }
  }

  /** The destination has applied `pass`: live_migration may stop the guest once all sent are. */
  private onPassApplied(pass: unknown): void {
    if (typeof pass !== 'number' || !Number.isInteger(pass) || pass < 1 || pass > 0x7fffffff) {
      return this.fail(`PassApplied: invalid pass ${JSON.stringify(pass)}`);
    }
    if (pass <= Atomics.load(this.migWords, MIG.appliedPass)) return;
    Atomics.store(this.migWords, MIG.appliedPass, pass);
    Atomics.notify(this.migWords, MIG.appliedPass);
  }

  private connected = 0;

  private spawnWorkers(host: string): void {
    const shared = {
      blocks: this.guest.blocks,
      slots: createSlots(this.channels),
      mig: this.mig,
      chanStats: this.figures.chanStats,
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
      this.threads.spawnChannel(name, data);
    }
    const lm: LiveMigrationWorkerData = {
      ...shared,
      vcpuControl: this.guest.vcpu.buffer,
      dirtyTracking: this.guest.dirtyTracking,
      // A content-sync machine's first sync: it runs while channels connect and beside pass 1.
      firstSyncTicket:
        this.guest.dirtyTracking === 'content-sync' ? this.guest.vcpu.requestSync() : undefined,
      cpuSlot: this.cpu.slot('live_migration'),
      liveParams: this.live,
    };
    this.threads.spawnLiveMigration(lm);
  }

  private onConnected(): void {
    if (++this.connected < this.channels) return;
    this.figures.setupMs = Date.now() - this.startedAt;
    this.setStatus('active');
    this.threads.startLiveMigration();
  }

  private onWorkerMessage(m: SourceWorkerMessage): void {
    if (this.finished()) return;
    switch (m.type) {
      case 'connected':
        return this.onConnected();
      case 'dirty-sync':
        return this.figures.dirtySync(m);
      case 'error':
        if (this.control && !this.control.socket.destroyed) {
          this.channelError ??= setTimeout(() => this.fail(m.message), CHANNEL_ERROR_GRACE_MS);
          return;
        }
        return this.fail(m.message);
      case 'pass':
        void this.accelFigures?.refresh();
        this.figures.passes = m.pass;
        this.figures.lastPass = m;
        this.figures.expectedDowntimeMs = m.expectedDowntimeMs;
        this.events.pass(m.pass + 1);
        return;
      case 'stopped':
        this.figures.stoppedAt = m.at;
        this.figures.finalBytesBefore = this.figures.transferred();
        this.figures.passes = m.pass - 1;
        this.events.runState(false);
        this.setStatus(this.caps['pause-before-switchover'] ? 'pre-switchover' : 'device');
        // The guest no longer changes: its device state goes out while the final pass does.
        this.deviceJson = this.guest.deviceState().then((state) => {
          if (state.blob && !this.finished()) {
            const parts = encodeDeviceState(state.json, state.blob);
            this.figures.mainBytes += this.control!.sendBinary(FrameType.DeviceState, parts);
          }
          return state.json;
        });
        this.deviceJson.catch((e: Error) => this.fail(`device state: ${e.message}`));
        return;
      case 'final-sent': {
        this.figures.passes = m.pass;
        void this.deviceJson!.then(
          (device) => {
            if (this.finished()) return;
            this.control!.send(FrameType.Complete, { finalPass: m.pass, device });
          },
          () => {},
        );
        this.deadline(
          COMPLETE_TIMEOUT_MS,
          `destination did not acknowledge completion in ${COMPLETE_TIMEOUT_MS} ms`,
        );
        return;
      }
    }
  }

  /** The destination has everything; only the last figures are being read. */
  private finishing = false;
  /** CompleteAck arrived */
  private acked = false;
  /** CompleteAck (and, with x-verify-ram, a matching Digest) are in: Ready may come */
  private readyDue = false;
  /** the destination's Digest arrived (x-verify-ram) */
  private digestIn = false;

  private onCompleteAck(): void {
    if (this.status !== 'device' || this.acked) return this.fail('unexpected CompleteAck');
    this.acked = true;
    this.figures.downtimeMs = performance.timeOrigin + performance.now() - this.figures.stoppedAt;
    this.figures.endedAt = Date.now();
    clearTimeout(this.completeTimer);
    this.threads.finish();
    this.closeAccel();
    if (this.verify === 'pending') {
      // The guest stays stopped, so its RAM is what the destination must now hold.
      this.sourceDigest = this.guest.digest();
      const hashingFrom = performance.now();
      void this.sourceDigest.then(
        () => {
          if (this.digestIn || this.finished()) return;
          // The destination hashes the same RAM meanwhile: as long as ours took is its due, and
          // x-stall-timeout its delay. Heartbeats do not count, or a destination that never
          // sends its Digest would keep this guest stopped for good.
          const stall = this.params['x-stall-timeout'];
          const hashMs = Math.round(performance.now() - hashingFrom);
          this.deadline(
            stall + hashMs,
            `destination did not send its RAM digest (Digest) within ${stall + hashMs} ms: ` +
              `x-stall-timeout ${stall} plus the ${hashMs} ms the source's own digest took`,
          );
        },
        (e: Error) => this.fail(`RAM digest: ${e.message}`),
      );
      return;
    }
    this.awaitReady();
  }

  private onDigest(digest: string): void {
    if (this.verify !== 'pending' || !this.sourceDigest) return this.fail('unexpected Digest');
    this.digestIn = true;
    clearTimeout(this.completeTimer);
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
    this.deadline(limit, `destination did not say Ready within ${limit} ms (x-stall-timeout)`);
  }

  /**
   * The destination owes the next frame of the end sequence; heartbeats alone do not keep the
   * wait going. Past the deadline the migration fails, which resumes the guest here (the
   * destination has not had Release).
   */
  private deadline(ms: number, message: string): void {
    this.completeTimer = setTimeout(() => this.fail(message), ms);
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
    const final = this.accelFigures?.final ?? Promise.resolve();
    void final.then(() => {
      if (this.status !== 'failed' && this.status !== 'cancelled') this.setStatus('completed');
    });
  }

  /** Read the accelerator's last figures, then close it (after the channels let go of it). */
  private closeAccel(): void {
    this.accelFigures?.close(() => this.threads.channelsStopped);
  }

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
    this.figures.endedAt = Date.now();
    this.threads.abort();
    this.closeAccel();
    // QEMU stops throttling when a migration ends, whichever way.
    this.guest.vcpu.throttle = 0;
    if (this.wasRunning && !this.guest.running) {
      this.guest.start();
      this.events.runState(true);
    }
  }

  info(): Record<string, unknown> {
    return this.figures.info(this.status, this.errorDesc, this.verify);
  }
}
