// One guest process (`livemig run`), what QEMU calls the VM: its machine (synthetic or PC), its
// migration settings, and at most one outgoing or incoming migration at a time. QMP and HMP drive
// it through the MigrationHost interface.

import { EventEmitter } from 'node:events';
import { PcMachine } from './pc/pc-machine.js';
import type { GuestMachine, MachineType } from './guest-machine.js';
import type { PcBoot, PcFirmware } from './pc/pc-config.js';
import { createMachine } from './create-machine.js';
import { genericError, QmpError } from '../util/errors.js';
import {
  applyCapabilities,
  applyParameters,
  checkDsaAccelSettings,
  DEFAULT_CAPABILITIES,
  DEFAULT_PARAMETERS,
  type MigrationCapabilities,
  type MigrationParameters,
} from '../migration/parameters.js';
import { LM_WORKER, MigrationSource, SEND_WORKER } from '../migration/source/source.js';
import { WorkerPool } from '../util/worker-pool.js';
import { engineWorkerFile, type DsaEmu } from '../accel/dsa/emu/device.js';
import { defaultEngineCount } from '../accel/dsa/emu/config.js';
import { acquireSharedEmu, releaseSharedEmu } from './shared-emu.js';
import { channelDepth } from '../migration/source/channel-slots.js';
import { completionWorkerFile, openAccelerator, type Accelerator } from '../accel/driver.js';
import { parseAccelPath } from '../accel/accel-path.js';
import { ChannelWarmUp } from './channel-warm-up.js';
import { MigrationDestination } from '../migration/destination/destination.js';
import type { CapabilityState, MigrationHost, RunStatus } from '../control/host.js';
import type { MigrationStatus } from '../migration/status.js';
import { CpuRegistry, publishThreadCpu } from '../util/cpu-slots.js';
import type { WorkloadSpec } from '../ram/vcpu-control.js';
import { parseTcpUri } from '../migration/uri.js';
import type { TransportOptions } from '../migration/transport.js';
import { TlsObjects } from '../tls/objects.js';
import { resolveSecurity, resolveSecurityOrRefuse } from '../tls/security.js';
import { fillNormalPages, preallocateInSlices } from '../ram/fill.js';
import { pcMigrationNice } from './pc/pc-migration-nice.js';
import { pauseWarmUps } from '../util/warm-up-gate.js';

/** The guest's first serial port, as the PC sees its console (src/chardev). */
export interface SerialPort {
  write(data: Uint8Array): void;
  onInput(listener: (data: Buffer) => void): void;
}

export interface PcOptions {
  firmware: PcFirmware;
  /** what to boot; ignored (and not needed) on a destination */
  boot: PcBoot | null;
  serial: SerialPort | null;
}

export interface VmOptions {
  /** the machine type, QEMU's -M: 'synthetic' (the default) or 'pc' */
  machine?: MachineType;
  /** for --machine pc */
  pc?: PcOptions;
  ramBytes: number;
  blockSize?: number;
  workload: WorkloadSpec;
  normalPageRatio: number;
  memPrealloc: boolean;
  /**
   * false (`--no-warm-up`): the process's threads are still started ahead, but none runs its
   * hot code before a migration needs it (src/util/warm-up-gate.ts), so an idle process uses
   * no CPU for them; the first migration pays for compiling that code instead.
   */
  warmUp?: boolean;
  /** -S: do not start the vCPU */
  startPaused: boolean;
  /** --incoming: 'defer' or a tcp: URI; undefined for a source */
  incoming?: string;
  log?: (msg: string) => void;
}

const ACTIVE: MigrationStatus[] = ['setup', 'active', 'pre-switchover', 'device', 'cancelling'];
/**
 * A destination whose guest has arrived starts the threads of a next migration this long after,
 * not at once: the guest resumes without ~50-90 ms of worker start-up (3 threads loading their
 * modules) beside it on the host's cores. A migration started sooner starts its own threads.
 */
const NEXT_MIGRATION_THREADS_DELAY_MS = 2000;

export class Vm extends EventEmitter implements MigrationHost {
  readonly cpu = new CpuRegistry();
  readonly guest: GuestMachine;
  params: MigrationParameters = { ...DEFAULT_PARAMETERS, 'accel-path': [] };
  caps: MigrationCapabilities = { ...DEFAULT_CAPABILITIES };
  private source: MigrationSource | null = null;
  private dest: MigrationDestination | null = null;
  private runState: string;
  private readonly log: (msg: string) => void;
  private readonly mainSlot: number;
  private readonly pool = new WorkerPool();
  /** the channel threads' warm-up on the emulated DSA, as a source process starts */
  private readonly channelWarmUp = new ChannelWarmUp();
  /** --no-warm-up: what lets this process's warm-ups run again (at shutdown) */
  private readonly warmUpsOff: (() => void) | undefined;
  /** RAM allocated (--mem-prealloc) and, on a source, filled and the guest started */
  private readonly prepared: Promise<void>;
  /** the destination's delayed prespawnSource, pending */
  private prespawnTimer: NodeJS.Timeout | null = null;
  /** QOM objects (object-add): TLS credentials and authorization, named by tls-creds/tls-authz */
  readonly objects = new TlsObjects();
  /** the destination's channel security, followed per connection while it listens */
  private readonly incomingTransport: TransportOptions = {};
  /** the process's emulated DSA devices, once a dsa-accel migration has used them */
  private emu: DsaEmu | null = null;

  private emuStarting: Promise<DsaEmu> | null = null;

  /** This guest's reference to the process's emulated DSA devices (taken once). */
  private startEmu(): Promise<DsaEmu> {
    this.emuStarting ??= acquireSharedEmu(this.pool).then((e) => (this.emu = e));
    return this.emuStarting;
  }

  /** The emulated DSA devices this guest's migrations use (for fault injection in tests). */
  get emulatedDevices(): DsaEmu | null {
    return this.emu;
  }
  /** an accelerator is being opened for a migration that is about to start */
  private starting = false;

  constructor(private readonly opts: VmOptions) {
    super();
    this.log = opts.log ?? (() => {});
    this.mainSlot = this.cpu.slot('main');
    this.guest = createMachine(opts, this.cpu, (message) => {
      this.log(message);
      this.runState = 'internal-error';
      this.emitEvent('STOP');
    });
    if (this.guest.type === 'pc') this.params['x-migration-nice'] = pcMigrationNice();
    if (opts.warmUp === false) this.warmUpsOff = pauseWarmUps();
    // A source's threads start first: they load their modules and warm up while RAM is
    // allocated and filled and the guest starts, not when a `migrate` may be waiting for them.
    if (opts.incoming === undefined) {
      this.runState = 'prelaunch';
      this.prespawnSource();
      if (!this.warmUpsOff) {
        this.channelWarmUp.start(this.pool, () => this.startEmu(), this.params['multifd-channels']);
      }
    } else {
      this.runState = 'inmigrate';
      this.dest = this.createDestination();
      this.dest.fillPool();
    }
    this.prepared = this.prepare(opts);
  }

  /**
   * QEMU's -mem-prealloc, on either side: RAM is allocated now rather than at first touch (a PC
   * allocates its own: see PcMachine), in slices, so that the threads started meanwhile can
   * warm up (their start needs this thread's event loop). Then a source fills its RAM and starts
   * its guest; without --mem-prealloc, before the constructor returns.
   */
  private async prepare(opts: VmOptions): Promise<void> {
    if (opts.memPrealloc && this.guest.type === 'synthetic') {
      await preallocateInSlices(this.guest.blocks);
    }
    if (opts.incoming !== undefined) return;
    if (this.guest.type === 'synthetic') fillNormalPages(this.guest.blocks, opts.normalPageRatio);
    this.runState = opts.startPaused ? 'paused' : 'running';
    if (!opts.startPaused) this.guest.start();
  }

  /**
   * Wait until the machine exists (a PC's emulator is built in its vCPU thread), and begin
   * listening if started with --incoming tcp:...; returns the port.
   */
  async init(): Promise<number | undefined> {
    await this.prepared;
    if (this.guest instanceof PcMachine) await this.guest.ready;
    if (this.opts.incoming && this.opts.incoming !== 'defer') {
      return this.listen(this.opts.incoming);
    }
    return undefined;
  }

  /** The machine's type, QEMU's -M. */
  get machineType(): MachineType {
    return this.guest.type;
  }

  private emitEvent(event: string, data?: Record<string, unknown>): void {
    this.emit('event', data ? { event, data } : { event });
  }

  private onStatus = (s: MigrationStatus): void => {
    if (this.caps.events) this.emitEvent('MIGRATION', { status: s });
    this.emit('migration-status', s);
  };

  setCapabilities(capabilities: unknown): void {
    if (this.migrationActive()) throw genericError('There is a migration process in progress');
    this.caps = applyCapabilities(this.caps, capabilities);
    if (this.runState !== 'inmigrate') this.prespawnSource();
  }

  queryCapabilities(): CapabilityState[] {
    return Object.entries(this.caps).map(([capability, state]) => ({ capability, state }));
  }

  setParameters(update: Record<string, unknown>): void {
    const next = applyParameters(this.params, update);
    if (this.migrationActive()) {
      const changed = Object.keys(update).filter(
        (k) => !['downtime-limit', 'max-bandwidth', 'avail-switchover-bandwidth'].includes(k),
      );
      if (changed.length > 0) {
        throw genericError(
          `Parameter '${changed[0]}' cannot be changed while a migration is in progress; ` +
            'only downtime-limit, max-bandwidth and avail-switchover-bandwidth can',
        );
      }
    }
    this.params = next;
    this.refreshIncomingTransport();
    this.source?.updateLiveParams(next);
    if (this.runState !== 'inmigrate' && !this.migrationActive()) this.prespawnSource();
    // A device exists before a migration uses it: start the emulated one once it is named.
    if (this.accelKind() === 'dsa-emu' && !this.emu) void this.startEmu().catch(() => {});
  }

  queryParameters(): Record<string, unknown> {
    return { ...this.params };
  }

  private migrationActive(): boolean {
    return (
      (this.source !== null && ACTIVE.includes(this.source.status)) ||
      (this.dest !== null && ['active', 'device'].includes(this.dest.status))
    );
  }

  async migrate(uri: string): Promise<void> {
    if (this.starting) throw genericError('There is a migration process in progress');
    if (this.runState === 'inmigrate') {
      throw genericError('This guest is waiting for an incoming migration; it cannot migrate out');
    }
    if (this.migrationActive()) throw genericError('There is a migration process in progress');
    if (this.runState === 'postmigrate') {
      throw genericError('This guest has already migrated away; it cannot migrate again');
    }
    parseTcpUri(uri);
    const startedAt = Date.now();
    const transport: TransportOptions = {
      security: resolveSecurity(this.objects, this.params, 'client'),
    };
    let accel: Accelerator | undefined;
    this.starting = true;
    const resume = pauseWarmUps(); // the cores are this migration's until it ends
    try {
      accel = await this.openAccelerator();
      this.source = new MigrationSource(
        this.guest,
        this.params,
        this.caps,
        this.cpu,
        uri,
        {
          status: (s) => {
            if (s === 'completed' || s === 'failed' || s === 'cancelled') resume();
            if (s === 'completed') this.runState = 'postmigrate';
            if (s === 'failed' || s === 'cancelled') this.prespawnSource();
            this.onStatus(s);
          },
          pass: (pass) => {
            if (this.caps.events) this.emitEvent('MIGRATION_PASS', { pass });
          },
          runState: (running) => {
            this.runState = running ? 'running' : 'finish-migrate';
            this.emitEvent(running ? 'RESUME' : 'STOP');
          },
        },
        this.pool,
        accel,
        transport,
        startedAt,
      );
    } catch (e) {
      // Nothing of this migration runs: the warm-ups go on, the accelerator is closed.
      resume();
      await accel?.close();
      throw e;
    } finally {
      this.starting = false;
    }
    this.onStatus('setup');
    this.source.start();
  }

  /**
   * For zero-page-detection=dsa-accel: open the work queues of accel-path. `dsa-emu:` queues
   * belong to this process's emulated devices, started on first use and shared by every
   * migration of the process (as a real DSA is shared by every process of a host).
   */
  private async openAccelerator(): Promise<Accelerator | undefined> {
    if (this.params['zero-page-detection'] !== 'dsa-accel') return undefined;
    checkDsaAccelSettings(this.params, this.caps);
    const path = this.params['accel-path'];
    const needsEmu = parseAccelPath(path).some((t) => t.type === 'dsa-emu');
    if (needsEmu) this.emu ??= await this.startEmu();
    return openAccelerator(path, {
      devices: this.emu ?? undefined,
      maxPages: this.params['multifd-packet-size'] / 4096,
      // A request per packet in flight (channelDepth per channel, plus its whole-run request);
      // fewer would send the rest to the CPU ('noSlot'). Bounded by the device's interrupt
      // handles, which every migration of the process shares.
      slots: Math.min(256, this.params['multifd-channels'] * (channelDepth('dsa-accel') + 1)),
      threads: this.pool,
    });
  }

  async migrateIncoming(uri: string): Promise<void> {
    if (this.opts.incoming !== 'defer') {
      throw genericError("'-incoming' was not specified on the command line");
    }
    if (this.dest?.listening) throw genericError('The incoming migration has already been started');
    parseTcpUri(uri, true);
    await this.listen(uri);
  }

  /** Threads of the next outgoing migration, started ahead (see WorkerPool). */
  private prespawnSource(): void {
    // As many as multifd-channels even before the capability is on: QEMU users turn multifd on
    // right before `migrate`, and a thread started then would start inside the migration.
    this.pool.prespawn(SEND_WORKER, this.params['multifd-channels']);
    this.pool.prespawn(LM_WORKER, 1);
    // The emulated DSA's threads too, before dsa-accel is named, for the same reason: its
    // engines (taken when the process's devices start) and its dsa_completion.
    const kind = this.accelKind() ?? 'dsa-emu';
    this.pool.prespawn(completionWorkerFile(kind), 1);
    if (kind === 'dsa-emu' && !this.emu)
      this.pool.prespawn(engineWorkerFile(), defaultEngineCount());
  }

  /** The kind of work queue the next migration's accelerator opens, if it uses one. */
  private accelKind(): 'dsa' | 'dsa-emu' | undefined {
    if (this.params['zero-page-detection'] !== 'dsa-accel') return undefined;
    const path = this.params['accel-path'];
    if (path.length === 0) return undefined;
    // parameters were checked when set; a mix of kinds is refused at migrate
    return parseAccelPath(path)[0].type;
  }

  private createDestination(): MigrationDestination {
    return new MigrationDestination(
      this.guest,
      this.cpu,
      {
        status: this.onStatus,
        completed: () => {
          if (this.opts.startPaused) {
            this.runState = 'paused';
          } else {
            this.runState = 'running';
            this.guest.start();
            this.emitEvent('RESUME');
          }
          // Having arrived, this guest may migrate on, as a QEMU destination may.
          this.prespawnTimer = setTimeout(() => {
            this.prespawnTimer = null;
            if (!this.migrationActive()) this.prespawnSource();
          }, NEXT_MIGRATION_THREADS_DELAY_MS);
          this.prespawnTimer.unref();
        },
        log: this.log,
      },
      this.pool,
      this.incomingTransport,
    );
  }

  private async listen(uri: string): Promise<number> {
    this.incomingTransport.security = resolveSecurity(this.objects, this.params, 'server');
    this.dest ??= this.createDestination();
    try {
      return await this.dest.listen(uri);
    } catch (e) {
      throw genericError(`Failed to listen on '${uri}': ${(e as Error).message}`);
    }
  }

  queryMigrate(): Record<string, unknown> {
    publishThreadCpu(this.cpu.slots, this.mainSlot);
    if (this.source) return this.source.info();
    if (this.dest) return this.dest.info();
    return {};
  }

  migrateCancel(): void {
    if (this.source && ACTIVE.includes(this.source.status)) this.source.cancel();
  }

  stop(): void {
    if (this.runState === 'inmigrate') return;
    if (this.guest.running) {
      this.guest.stopSync();
      this.runState = 'paused';
      this.emitEvent('STOP');
    }
  }

  cont(): void {
    if (this.runState === 'inmigrate') {
      throw genericError('Guest is waiting for an incoming migration');
    }
    // postmigrate may run again, as in QEMU: the operator's call when the destination did not
    // take the guest (a lost Release leaves neither side running; docs/reliability.md).
    if (this.runState === 'finish-migrate') {
      throw new QmpError(
        'GenericError',
        'Migration is switching over; the guest must not run here until it ends',
      );
    }
    if (!this.guest.running) {
      this.guest.start();
      this.runState = 'running';
      this.emitEvent('RESUME');
    }
  }

  queryStatus(): RunStatus {
    return { status: this.runState, running: this.runState === 'running', singlestep: false };
  }

  quit(): void {
    this.emit('quit');
  }

  migrateContinue(state: string): void {
    if (!this.source) throw genericError('Migration not in expected state: none');
    this.source.continueSwitchover(state);
  }

  yank(): void {
    if (!this.yankable()) {
      throw genericError("yank instance 'migration' not found: no migration is in progress");
    }
    this.source?.fail('yank: migration channels closed by the yank command');
    this.dest?.fail('yank: migration channels closed by the yank command');
  }

  yankable(): boolean {
    return (
      (this.source !== null && ACTIVE.includes(this.source.status)) ||
      (this.dest !== null && this.dest.busy)
    );
  }

  ramDigest(): Promise<string> {
    return this.guest.digest();
  }

  objectAdd(options: Record<string, unknown>): void {
    this.objects.add(options);
    this.refreshIncomingTransport();
  }

  objectDel(id: string): void {
    const named = id === this.params['tls-creds'] || id === this.params['tls-authz'];
    this.objects.delete(id, named && this.migrationActive());
    this.refreshIncomingTransport();
  }

  /** A listening destination's TLS follows tls-* and the objects, failing closed if broken. */
  private refreshIncomingTransport(): void {
    if (!this.dest?.listening) return;
    this.incomingTransport.security = resolveSecurityOrRefuse(this.objects, this.params, 'server');
  }

  queryMigrationThreads(): { name: string; 'thread-id': number; 'cpu-ms'?: number }[] {
    // The threads of the current (or last) migration only, as QEMU lists them.
    const info = this.queryMigrate() as { livemig?: { 'thread-cpu-ms'?: Record<string, number> } };
    const cpu = info.livemig?.['thread-cpu-ms'] ?? {};
    // Worker threads have no OS thread id visible to JavaScript; livemig numbers them.
    return Object.entries(cpu)
      .filter(([name]) => name !== 'main' && name !== 'vcpu_0')
      .map(([name, ms], i) => ({ name, 'thread-id': i + 1, 'cpu-ms': ms }));
  }

  async shutdown(): Promise<void> {
    if (this.prespawnTimer) clearTimeout(this.prespawnTimer);
    this.source?.cancel();
    this.dest?.close();
    await this.channelWarmUp.stop();
    await this.pool.close();
    if (this.emuStarting) {
      await this.emuStarting.catch(() => {});
      await releaseSharedEmu();
    }
    this.emu = null;
    this.emuStarting = null;
    await this.guest.quit();
    this.warmUpsOff?.();
  }
}
