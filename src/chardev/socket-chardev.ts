// Socket chardevs, QEMU's `unix:` and `tcp:` forms. A server has one client at a time, as
// QEMU's: later connections wait (QEMU leaves them in the listen backlog) and are attached, in
// order, when the current client leaves. A client (server=off) connects out, and with
// `reconnect` connects again whenever the peer goes away.

import { connect, createServer, type Server, type Socket } from 'node:net';
import { unlink } from 'node:fs/promises';
import { formatSocketAddress } from '../control/socket-address.js';
import { listenOn } from '../control/socket-listen.js';
import { ChardevBase } from './chardev.js';
import type { SocketChardevSpec } from './chardev-spec.js';
import type { ChardevLogFile } from './logfile.js';
import { SocketLink } from './socket-link.js';

/** Connections waiting behind the attached client; more are closed at once (QEMU: backlog 1). */
export const MAX_WAITING_CLIENTS = 8;

/** What servers and clients share: the attached link, output to it, events. */
abstract class SocketChardev extends ChardevBase {
  protected link: SocketLink | undefined;

  constructor(
    readonly address: string,
    protected readonly spec: SocketChardevSpec,
    log: ChardevLogFile | undefined,
  ) {
    super(log);
  }

  protected output(data: Uint8Array): void {
    // Decided per write, as QEMU does: output is the attached client's or nobody's.
    if (this.link !== undefined) this.link.write(data);
    else this.counters.droppedDetached += data.length;
  }

  protected isAttached(): boolean {
    return this.link !== undefined;
  }

  protected attach(socket: Socket): void {
    if (this.spec.address.kind === 'tcp') socket.setNoDelay(this.spec.nodelay);
    this.link = new SocketLink(socket, {
      input: (data) => this.input(data),
      dropped: (bytes, slow) => {
        if (slow) this.counters.droppedSlow += bytes;
        else this.counters.droppedDetached += bytes;
      },
      gone: (link) => {
        if (this.link !== link) return;
        this.link = undefined;
        this.emitEvent('closed');
        this.detached();
      },
    });
    this.counters.attaches++;
    this.emitEvent('opened');
  }

  /** The attached client has gone (also during close). */
  protected abstract detached(): void;
}

export class SocketServerChardev extends SocketChardev {
  private readonly waiting: Socket[] = [];
  private readonly firstClient: Promise<void>;
  private markFirstClient: (error?: Error) => void = () => undefined;

  private constructor(
    private readonly server: Server,
    address: string,
    spec: SocketChardevSpec,
    log: ChardevLogFile | undefined,
  ) {
    super(address, spec, log);
    this.firstClient = new Promise<void>((resolve, reject) => {
      this.markFirstClient = (error) => (error ? reject(error) : resolve());
    });
    this.firstClient.catch(() => undefined); // a rejection nobody awaited is not an error
    server.on('connection', (socket) => this.accept(socket));
    server.on('error', () => undefined); // accept failures (EMFILE): the next client may do
  }

  static async open(
    spec: SocketChardevSpec,
    log: ChardevLogFile | undefined,
  ): Promise<SocketServerChardev> {
    // Paused, so that a waiting client's bytes stay in the kernel until it is attached.
    const server = createServer({ pauseOnConnect: true });
    try {
      await listenOn(server, spec.address, 'serial socket');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === undefined) throw err; // says it all already
      const where = formatSocketAddress(spec.address);
      throw new Error(`cannot listen for serial on ${where}: ${(err as Error).message}`);
    }
    let address = formatSocketAddress(spec.address);
    const bound = server.address();
    if (spec.address.kind === 'tcp' && bound !== null && typeof bound === 'object') {
      address = formatSocketAddress({ kind: 'tcp', host: bound.address, port: bound.port });
    }
    return new SocketServerChardev(server, address, spec, log);
  }

  override ready(): Promise<void> {
    return this.spec.wait ? this.firstClient : Promise.resolve();
  }

  protected detached(): void {
    if (this.closing !== undefined) return;
    let next: Socket | undefined;
    while ((next = this.waiting.shift()) !== undefined) {
      if (next.destroyed) continue;
      this.attach(next);
      return;
    }
  }

  protected async shutdown(): Promise<void> {
    this.markFirstClient(new Error(`serial socket ${this.address} closed before a client came`));
    const serverClosed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const socket of this.waiting.splice(0)) socket.destroy();
    await this.link?.end();
    await serverClosed;
    if (this.spec.address.kind === 'unix') {
      await unlink(this.spec.address.path).catch(() => undefined);
    }
  }

  private accept(socket: Socket): void {
    if (this.closing !== undefined) {
      socket.destroy();
    } else if (this.link === undefined) {
      this.attach(socket);
      this.markFirstClient();
    } else if (this.waiting.length >= MAX_WAITING_CLIENTS) {
      socket.destroy();
    } else {
      socket.on('error', () => socket.destroy());
      this.waiting.push(socket);
    }
  }
}

export class SocketClientChardev extends SocketChardev {
  private connecting: Socket | undefined;
  private retry: NodeJS.Timeout | undefined;

  static async open(
    spec: SocketChardevSpec,
    log: ChardevLogFile | undefined,
  ): Promise<SocketClientChardev> {
    const dev = new SocketClientChardev(formatSocketAddress(spec.address), spec, log);
    // QEMU: without reconnect the peer must be there at startup; with it, the guest starts
    // anyway and the connection comes when it can.
    if (spec.reconnectMs === 0) await dev.connectOnce();
    else dev.tryConnect();
    return dev;
  }

  protected detached(): void {
    if (this.spec.reconnectMs > 0) this.scheduleRetry();
  }

  protected async shutdown(): Promise<void> {
    clearTimeout(this.retry);
    this.connecting?.destroy();
    await this.link?.end();
  }

  private connectOnce(): Promise<void> {
    return new Promise((resolve, reject) => {
      const where = this.spec.address;
      const socket = where.kind === 'unix' ? connect(where.path) : connect(where.port, where.host);
      this.connecting = socket;
      const failed = (err: Error): void => {
        this.connecting = undefined;
        socket.destroy();
        reject(
          new Error(
            `cannot connect serial to ${this.address}: ${err.message} (server=off, QEMU's ` +
              'default, connects out to a listening console; add ,server=on to listen instead)',
          ),
        );
      };
      const abandoned = (): void => failed(new Error('closed while connecting'));
      socket.once('error', failed);
      socket.once('close', abandoned); // destroyed by close() before it connected
      socket.once('connect', () => {
        socket.off('error', failed);
        socket.off('close', abandoned);
        this.connecting = undefined;
        if (this.closing !== undefined) socket.destroy();
        else this.attach(socket);
        resolve();
      });
    });
  }

  private tryConnect(): void {
    if (this.closing === undefined) this.connectOnce().catch(() => this.scheduleRetry());
  }

  private scheduleRetry(): void {
    if (this.closing !== undefined || this.retry !== undefined) return;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.tryConnect();
    }, this.spec.reconnectMs);
  }
}
