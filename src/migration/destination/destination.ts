// The incoming side: listens on the migration URI, binds a source by handshake and HELLO,
// starts multifdrecv_N threads, and at COMPLETE loads the vCPU state and acknowledges.
// A failed or cancelled migration discards everything received and waits for the next one.

import type net from 'node:net';
import { listenChannels, type ChannelRefusal, type TransportOptions } from '../transport.js';
import type { WorkerPool } from '../../util/worker-pool.js';
import { ControlChannel, type Frame } from '../control-channel.js';
import { FrameType, decodeDeviceState } from '../protocol.js';
import { reportAppliedPasses } from './pass-reports.js';
import type { GuestMachine } from '../../machine/guest-machine.js';
import type { CpuRegistry } from '../../util/cpu-slots.js';
import type { MigrationStatus } from '../status.js';
import { pagesOf } from '../../ram/layout.js';
import type { RecvWorkerCommand, RecvWorkerData, RecvWorkerMessage } from './worker-data.js';
import { RecvProgress, createRecvBarrier, createRecvStats } from './recv-words.js';
import { parseTcpUri } from '../uri.js';
import { incomingInfo, type Incoming, type Phase } from './incoming.js';
import { checkHello, refuseMainHandshake } from './incoming-checks.js';
import { awaitFinalPass } from './final-pass-wait.js';

export interface DestinationEvents {
  status(s: MigrationStatus): void;
  /** migration completed: start the guest unless it was started with -S */
  completed(): void;
  log(message: string): void;
}

/** How long a connected source may take between HELLO and the channels' connections. */
const CHANNEL_CONNECT_TIMEOUT_MS = 10_000;
/** Receive threads kept ready: the default multifd-channels. */
const POOL_SIZE = 2;
/** main-channel connections waiting for their handshake, at most */
const MAX_UNBOUND_CONNECTIONS = 16;
const RECV_WORKER = new URL('./recv-worker.js', import.meta.url);

export class MigrationDestination {
  status: MigrationStatus = 'none';
  errorDesc: string | undefined;
  private server: net.Server | null = null;
  private current: Incoming | null = null;
  /** the last failed migration's RAM, being discarded (abort) */
  private discarding: Promise<void> | null = null;
  private lastInfo: Record<string, unknown> = {};
  private listenHost = '127.0.0.1';
  /** set when the destination guest has run: a new migration into it would clobber it */
  private guestStarted = false;
  /** QEMU reports where an incoming migration listens as `socket-address`. */
  private socketAddress: Record<string, string> | undefined;

  constructor(
    private readonly guest: GuestMachine,
    private readonly cpu: CpuRegistry,
    private readonly events: DestinationEvents,
    private readonly pool: WorkerPool,
    /** channel security for every connection of an incoming migration (plain TCP by default) */
    private readonly transport: TransportOptions = {},
  ) {}

  /** an incoming migration is bound (a source is connected) */
  get busy(): boolean {
    return this.current !== null;
  }

  get listening(): boolean {
    return this.server !== null;
  }

  async listen(uri: string): Promise<number> {
    if (this.server) throw new Error('already listening for an incoming migration');
    const { host, port } = parseTcpUri(uri, true);
    // Pooled receive threads listen on the address they were started for.
    if (host !== this.listenHost) void this.pool.drain(RECV_WORKER);
    this.listenHost = host;
    const server = listenChannels(
      (s) => this.onConnection(s),
      this.transport,
      (r) => this.onRefused(r),
    );
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host, port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.server = server;
    this.fillPool();
    this.setStatus('setup');
    const bound = server.address() as net.AddressInfo;
    this.socketAddress = { type: 'inet', host: bound.address, port: String(bound.port) };
    return bound.port;
  }

  /** Keep idle multifdrecv threads ready, so a migration's setup does not wait for them. */
  fillPool(): void {
    // Each listens at once on the address migrations come to (channel-listener.ts).
    this.pool.prespawn(RECV_WORKER, POOL_SIZE, { host: this.listenHost });
  }

  close(): void {
    this.server?.close();
    this.server = null;
    void this.pool.close();
    if (this.current) this.abort('destination shutting down');
  }

  /**
   * A connection the transport refused (TLS: plaintext, handshake, certificate, authorization)
   * before any of it reached onConnection. A migration in progress goes on; otherwise the
   * refusal is this destination's failed incoming migration, and the next source may come.
   */
  private onRefused(r: ChannelRefusal): void {
    this.events.log(`refused main channel from ${r.remote}: ${r.reason}`);
    if (this.current || this.guestStarted) return;
    this.errorDesc = r.reason;
    this.setStatus('failed');
    this.lastInfo = { status: 'failed', 'error-desc': r.reason };
  }

  private setStatus(s: MigrationStatus): void {
    if (this.status === s) return;
    this.status = s;
    this.events.status(s);
  }

  /** main-channel connections that have not yet been bound or refused */
  private unbound = 0;

  private onConnection(socket: net.Socket): void {
    // Connections are bounded: a flood of idle ones cannot exhaust memory or descriptors.
    if (this.unbound >= MAX_UNBOUND_CONNECTIONS) {
      this.events.log(`dropped a connection from ${socket.remoteAddress}: too many pending`);
      socket.destroy();
      return;
    }
    this.unbound++;
    let counted = true;
    const settle = (): void => {
      if (counted) this.unbound--;
      counted = false;
    };
    socket.once('close', settle);
    socket.setNoDelay(true);
    const ctl = new ControlChannel(socket, true);
    const timer = setTimeout(() => ctl.close(), CHANNEL_CONNECT_TIMEOUT_MS);
    let mine = false;
    ctl.onHandshake = (h) => {
      clearTimeout(timer);
      settle();
      const refusal = refuseMainHandshake(h, this.current !== null, this.guestStarted);
      if (refusal) {
        this.events.log(`refused main channel from ${socket.remoteAddress}: ${refusal}`);
        ctl.send(FrameType.Error, { message: refusal });
        socket.end();
        // A refused peer that does not close gets closed.
        setTimeout(() => socket.destroy(), 1000).unref();
        ctl.onFrame = () => {};
        return;
      }
      mine = true;
      const barrier = createRecvBarrier(h.channels);
      const stats = createRecvStats(h.channels);
      this.current = {
        phase: 'hello',
        control: ctl,
        session: h.session,
        channels: h.channels,
        workers: [],
        barrier,
        stats,
        progress: new RecvProgress(barrier, stats, h.channels),
        verify: false,
        stallTimeoutMs: 10_000,
        threadNice: 0,
        startedAt: Date.now(),
        names: [],
        received: [],
      };
      // A source that binds and then says nothing would hold the destination busy forever.
      const cur = this.current;
      cur.timer = setTimeout(
        () => this.fail(`no Hello within ${CHANNEL_CONNECT_TIMEOUT_MS} ms of the handshake`),
        CHANNEL_CONNECT_TIMEOUT_MS,
      );
      cur.timer.unref();
    };
    ctl.onFrame = (f) => {
      if (mine && this.current?.control === ctl) this.onFrame(f);
    };
    ctl.onError = (e) => {
      if (mine && this.current?.control === ctl) this.fail(`main channel: ${e.message}`);
    };
    ctl.onClose = () => {
      clearTimeout(timer);
      if (mine && this.current?.control === ctl) this.fail('main channel closed by the source');
    };
  }

  private onFrame(f: Frame): void {
    const cur = this.current!;
    const expect = (phase: Phase, name: string): boolean => {
      if (cur.phase === phase) return true;
      this.fail(
        `unexpected ${name} frame while ${cur.phase === 'hello' ? 'waiting for Hello' : cur.phase}`,
      );
      return false;
    };
    switch (f.type) {
      case FrameType.Hello:
        return expect('hello', 'Hello') ? this.afterDiscard(cur, f.payload) : undefined;
      case FrameType.DeviceState:
        return expect('streaming', 'DeviceState') ? this.onDeviceState(cur, f.data!) : undefined;
      case FrameType.Complete:
        return expect('streaming', 'Complete') ? this.onComplete(cur, f.payload) : undefined;
      case FrameType.VerifyResult:
        if (!expect('verifying', 'VerifyResult')) return;
        if (f.payload.ok === true) return this.ready(cur);
        return this.fail('source reported a RAM digest mismatch');
      case FrameType.Release:
        return expect('ready', 'Release') ? this.finish(cur) : undefined;
      case FrameType.Error:
        return this.fail(`source: ${String(f.payload.message ?? 'unknown error')}`);
      case FrameType.Cancel:
        return this.fail('migration cancelled by the source', 'cancelled');
      default:
        return this.fail(`unexpected frame type ${f.type} on the main channel`);
    }
  }

  /**
   * A Hello that comes while the last failed migration's RAM is still being discarded waits for
   * that: a PC discards by building a fresh emulator, whose memory is where this migration's
   * pages must land (they went to the old one, and the guest restored over empty RAM).
   */
  private afterDiscard(cur: Incoming, p: Record<string, unknown>): void {
    const pending = this.discarding;
    if (!pending) return this.onHello(cur, p);
    cur.phase = 'discarding';
    void pending.then(() => {
      if (this.current !== cur) return;
      cur.phase = 'hello';
      this.onHello(cur, p);
    });
  }

  /** The source's description matches ours (incoming-checks.ts): start the channels. */
  private onHello(cur: Incoming, p: Record<string, unknown>): void {
    const terms = checkHello(p, cur, this.guest);
    if (typeof terms === 'string') return this.fail(terms);
    const { packetPages, stallTimeoutMs: stall } = terms;
    cur.stallTimeoutMs = stall;
    cur.threadNice = terms.threadNice;
    cur.control.startHeartbeat(stall, (ms) =>
      this.fail(`source stalled: nothing heard on the main channel for ${ms} ms`),
    );
    cur.verify = p.verify === true;
    cur.phase = 'streaming';
    void reportAppliedPasses(cur, () => this.current === cur);
    clearTimeout(cur.timer);
    this.setStatus('active');
    const mine = this.guest.blocks;
    const received = mine.map((b) => new SharedArrayBuffer(pagesOf(b.size)));
    cur.received = received;
    this.guest.beginIncoming(received);
    const ports: number[] = new Array<number>(cur.channels).fill(0);
    let listening = 0;
    let connected = 0;
    const onListening = (i: number, port: number): void => {
      ports[i] = port;
      if (++listening === cur.channels) cur.control.send(FrameType.HelloReply, { ports });
    };
    for (let i = 0; i < cur.channels; i++) {
      const name = `multifdrecv_${i}`;
      cur.names.push(name);
      this.cpu.reset(name);
      const data: RecvWorkerData = {
        index: i,
        channels: cur.channels,
        host: this.listenHost,
        session: new Uint8Array(cur.session),
        blocks: mine,
        received,
        barrier: cur.barrier,
        packetPages,
        cpuSlots: this.cpu.slots,
        cpuSlot: this.cpu.slot(name),
        stats: cur.stats,
        transport: this.transport,
        stallTimeoutMs: cur.stallTimeoutMs,
        threadNice: cur.threadNice,
      };
      const w = this.pool.take(RECV_WORKER, data);
      cur.workers.push(w);
      // A pooled thread already listens here: its port goes out without waiting for it.
      const early = this.pool.saidWhileIdle(w) as RecvWorkerMessage | undefined;
      if (early?.type === 'listening' && early.host === this.listenHost) onListening(i, early.port);
      w.on('error', (e) => this.fail(`${name}: ${e.message}`));
      w.on('message', (m: RecvWorkerMessage) => {
        if (this.current !== cur) return;
        switch (m.type) {
          case 'listening':
            // a pooled thread's own (index -1) arrives here when it was taken before it said it
            return onListening(i, m.port);
          case 'connected':
            if (++connected === cur.channels) clearTimeout(cur.timer);
            return;
          case 'rejected':
            this.events.log(`dropped a connection on multifd channel ${m.index}: ${m.reason}`);
            return;
          case 'error':
            return this.fail(m.message);
        }
      });
    }
    const connectMs = Math.min(CHANNEL_CONNECT_TIMEOUT_MS, cur.stallTimeoutMs);
    cur.timer = setTimeout(
      () => this.fail(`multifd channels did not connect within ${connectMs} ms`),
      connectMs,
    );
    cur.timer.unref();
  }

  /** The machine's binary device state: loaded at once, while the final pass still arrives. */
  private onDeviceState(cur: Incoming, payload: Buffer): void {
    if (cur.deviceLoading) return this.fail('a second DeviceState frame');
    let state: { desc: Record<string, unknown>; state: Buffer };
    try {
      state = decodeDeviceState(payload);
    } catch (e) {
      return this.fail(`main channel: ${(e as Error).message}`);
    }
    cur.deviceLoading = this.guest.loadDeviceState({ json: state.desc, blob: state.state });
    cur.deviceLoading.catch((e: Error) => {
      if (this.current === cur) this.fail(`device state refused: ${e.message}`);
    });
  }

  private onComplete(cur: Incoming, p: Record<string, unknown>): void {
    const finalPass = p.finalPass;
    const device = p.device;
    if (typeof finalPass !== 'number' || !Number.isInteger(finalPass) || finalPass < 1) {
      return this.fail(`Complete: invalid finalPass ${String(finalPass)}`);
    }
    if (typeof device !== 'object' || device === null || Array.isArray(device)) {
      return this.fail('Complete: invalid device state: expected a JSON object');
    }
    cur.phase = 'completing';
    void this.complete(cur, finalPass, device as Record<string, unknown>);
  }

  /** The final pass has been announced: wait for it, take the device state in, acknowledge. */
  private async complete(
    cur: Incoming,
    finalPass: number,
    json: Record<string, unknown>,
  ): Promise<void> {
    const isCurrent = (): boolean => this.current === cur;
    if (!(await awaitFinalPass(cur, finalPass, isCurrent, (m) => this.fail(m))) || !isCurrent())
      return;
    // All RAM is in: the channels may now close without that being an error.
    const finish: RecvWorkerCommand = { type: 'finish' };
    for (const w of cur.workers) w.postMessage(finish);
    try {
      await (cur.deviceLoading ?? this.guest.loadDeviceState({ json }));
    } catch (e) {
      return this.fail(`device state refused: ${(e as Error).message}`);
    }
    if (this.current !== cur) return;
    try {
      cur.intoGuest = await this.guest.finishIncoming();
    } catch (e) {
      return this.fail(`taking RAM in: ${(e as Error).message}`);
    }
    if (this.current !== cur) return;
    cur.control.send(FrameType.CompleteAck, {});
    this.lastInfo = this.snapshot(cur);
    if (!cur.verify) return this.ready(cur);
    // Before the guest runs, so that its RAM is exactly what was migrated.
    cur.phase = 'verifying';
    const hashingFrom = performance.now();
    try {
      const digest = await this.guest.digest();
      if (this.current !== cur) return;
      cur.control.send(FrameType.Digest, { digest });
    } catch (e) {
      return this.fail(`RAM digest: ${(e as Error).message}`);
    }
    // The source hashes the same RAM meanwhile: as long as ours took is its due, and
    // x-stall-timeout its delay; heartbeats alone must not keep this side waiting.
    const hashMs = Math.round(performance.now() - hashingFrom);
    const ms = cur.stallTimeoutMs + hashMs;
    this.deadline(
      cur,
      ms,
      `no VerifyResult within ${ms} ms of Digest: x-stall-timeout ${cur.stallTimeoutMs} ` +
        `plus the ${hashMs} ms this destination's digest took`,
    );
  }

  /**
   * Everything is in (and verified): say so, and run the guest only on the source's Release. A
   * link that drops before Release fails here, and the source, which has not had Ready or has
   * not answered it, resumes its own guest: exactly one side runs it.
   */
  private ready(cur: Incoming): void {
    clearTimeout(cur.timer);
    cur.phase = 'ready';
    cur.control.send(FrameType.Ready, {});
    // The source answers at once; heartbeats alone must not keep the guest waiting here.
    const ms = cur.stallTimeoutMs;
    this.deadline(cur, ms, `no Release within ${ms} ms of Ready (x-stall-timeout)`);
  }

  /** The source owes the next frame of the end sequence: past `ms`, the migration fails. */
  private deadline(cur: Incoming, ms: number, message: string): void {
    cur.timer = setTimeout(() => this.fail(message), ms);
    cur.timer.unref();
  }

  private finish(cur: Incoming): void {
    clearTimeout(cur.timer);
    this.lastInfo = this.snapshot(cur);
    this.current = null;
    cur.control.stopHeartbeat();
    setTimeout(() => cur.workers.forEach((w) => void w.terminate()), 200).unref();
    cur.control.socket.end();
    this.server?.close();
    this.server = null;
    void this.pool.close();
    this.guestStarted = true;
    this.setStatus('completed');
    this.lastInfo.status = 'completed';
    this.events.completed();
  }

  fail(message: string, status: MigrationStatus = 'failed'): void {
    const cur = this.current;
    if (!cur) return;
    this.errorDesc = status === 'failed' ? message : undefined;
    this.events.log(`incoming migration ${status}: ${message}`);
    this.abort(message);
    this.setStatus(status);
    this.lastInfo = { ...this.snapshot(cur), status };
    if (this.errorDesc) this.lastInfo['error-desc'] = this.errorDesc;
  }

  /** Tear down the incoming migration and discard what it wrote; keep listening. */
  private abort(message: string): void {
    const cur = this.current;
    if (!cur) return;
    this.current = null;
    clearTimeout(cur.timer);
    cur.progress.abort();
    cur.control.send(FrameType.Error, { message });
    cur.control.close();
    for (const w of cur.workers) void w.terminate();
    const discarding = this.guest
      .discardRam()
      .catch((e: Error) => this.events.log(`discarding RAM: ${e.message}`))
      .finally(() => {
        if (this.discarding === discarding) this.discarding = null;
      });
    this.discarding = discarding;
    if (this.server) this.fillPool();
  }

  private snapshot(cur: Incoming): Record<string, unknown> {
    return incomingInfo(cur, this.status, this.guest, this.cpu);
  }

  info(): Record<string, unknown> {
    if (this.current) return this.snapshot(this.current);
    const where =
      this.socketAddress && this.server ? { 'socket-address': [this.socketAddress] } : {};
    if (this.status === 'none' || this.status === 'setup') {
      return this.status === 'setup' ? { status: 'setup', ...where } : {};
    }
    return { ...this.lastInfo, ...where };
  }
}
