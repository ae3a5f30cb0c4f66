// A multifdrecv thread's listening socket. Node cannot hand an accepted socket to a worker
// thread, so each channel thread accepts its own connection on a port of its own, and the ports
// travel to the source in HelloReply. A thread the destination keeps ready in its pool opens
// this listener as it starts, before any migration, so that a destination answers Hello with
// ports it already has: on a busy host, starting to listen only after Hello cost 14-36 ms of
// each migration's setup (docs/benchmarks.md).
//
// Until the thread is bound to a channel, connections are held unread (a few, for a short
// time): the source connects only after HelloReply, which the destination sends as it binds the
// thread, so one may arrive before the thread has read its bind message.

import net from 'node:net';

/** Connections held before the thread is bound; more are dropped. */
const MAX_HELD = 8;
/** A connection held this long before the thread is bound is dropped. */
const HOLD_MS = 10_000;

export class ChannelListener {
  readonly server: net.Server;
  /** the port, once listening */
  port = 0;
  /** why listening failed, if it did */
  error: Error | null = null;
  /** connections held until the thread is bound, with the timer that drops each */
  private readonly held = new Map<net.Socket, NodeJS.Timeout>();
  private onSocket: ((socket: net.Socket) => void) | null = null;
  private closed = false;

  constructor(
    readonly host: string,
    onListening: (port: number) => void,
  ) {
    this.server = net.createServer({ noDelay: true }, (s) => this.arrive(s));
    this.server.on('error', (e) => (this.error = e));
    this.server.listen({ host, port: 0 }, () => {
      if (this.closed) return;
      this.port = (this.server.address() as net.AddressInfo).port;
      onListening(this.port);
    });
  }

  /** From now on connections go to `onSocket`, beginning with those held so far. */
  hand(onSocket: (socket: net.Socket) => void): void {
    this.onSocket = onSocket;
    const held = [...this.held];
    this.held.clear();
    for (const [s, timer] of held) {
      clearTimeout(timer);
      s.removeAllListeners('close');
      s.removeAllListeners('error');
      onSocket(s);
    }
  }

  close(): void {
    this.closed = true;
    this.server.close();
    for (const [s, timer] of this.held) {
      clearTimeout(timer);
      s.destroy();
    }
    this.held.clear();
  }

  private arrive(socket: net.Socket): void {
    if (this.onSocket) return this.onSocket(socket);
    if (this.held.size >= MAX_HELD) {
      socket.destroy();
      return;
    }
    const timer = setTimeout(() => socket.destroy(), HOLD_MS);
    timer.unref();
    this.held.set(socket, timer);
    socket.on('error', () => {});
    socket.once('close', () => {
      clearTimeout(timer);
      this.held.delete(socket);
    });
  }
}
