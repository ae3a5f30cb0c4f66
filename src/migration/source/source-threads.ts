// The threads of one outgoing migration: live_migration and one multifdsend_N per channel,
// taken from the pool, and how they end. A channel may be inside an accelerator request when it
// is told to stop, so channels are asked to finish and acknowledge; live_migration is simply
// terminated.

import type { Worker } from 'node:worker_threads';
import type { WorkerPool } from '../../util/worker-pool.js';
import type { CpuRegistry } from '../../util/cpu-slots.js';
import { MIG } from './channel-slots.js';
import type { LiveMigrationCommand, SourceWorkerMessage } from './worker-data.js';

export const SEND_WORKER = new URL('./multifd-send-worker.js', import.meta.url);
export const LM_WORKER = new URL('./live-migration-worker.js', import.meta.url);
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

export class SourceThreads {
  /** names of the threads started, in order (query-migrate's thread-cpu-ms) */
  readonly names: string[] = [];
  private workers: Worker[] = [];
  private channelWorkers: Worker[] = [];
  private lmWorker: Worker | null = null;
  /** Settles once every channel has stopped submitting to the accelerator and ended. */
  channelsStopped: Promise<unknown> | undefined;

  constructor(
    private readonly pool: WorkerPool,
    private readonly cpu: CpuRegistry,
    /** the migration's shared words (channel-slots.ts MIG): MIG.abort stops every thread */
    private readonly migWords: Int32Array,
    private readonly onMessage: (m: SourceWorkerMessage) => void,
    private readonly onError: (message: string) => void,
  ) {}

  private spawn(file: URL, name: string, data: object): Worker {
    const w = this.pool.take(file, data);
    w.on('message', (m: SourceWorkerMessage) => this.onMessage(m));
    w.on('error', (e) => this.onError(`${name}: ${e.message}`));
    this.workers.push(w);
    this.names.push(name);
    this.cpu.reset(name);
    return w;
  }

  spawnChannel(name: string, data: object): void {
    this.channelWorkers.push(this.spawn(SEND_WORKER, name, data));
  }

  spawnLiveMigration(data: object): void {
    this.lmWorker = this.spawn(LM_WORKER, 'live_migration', data);
  }

  connectChannels(ports: number[]): void {
    this.channelWorkers.forEach((w, i) => w.postMessage({ type: 'connect', port: ports[i] }));
  }

  startLiveMigration(): void {
    const start: LiveMigrationCommand = { type: 'start' };
    this.lmWorker!.postMessage(start);
  }

  /** The destination has everything: the channels end their sockets, live_migration has ended. */
  finish(): void {
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

  /** The migration failed or was cancelled: stop every thread now. */
  abort(): void {
    Atomics.store(this.migWords, MIG.abort, 1);
    Atomics.notify(this.migWords, MIG.abort);
    // Channels may be inside an accelerator request: they stop, acknowledge, then end.
    for (const w of this.workers) if (this.isChannel(w)) w.postMessage({ type: 'finish' });
    const channels = this.workers.filter((w) => this.isChannel(w));
    for (const w of this.workers) if (!this.isChannel(w)) void w.terminate();
    this.channelsStopped = Promise.all(channels.map(endChannel));
    this.workers = [];
  }

  private isChannel(w: Worker): boolean {
    return this.channelWorkers.includes(w);
  }
}
