// A small promise-based QMP client (for `livemig demo`, the benchmark and tests). It speaks to
// livemig and to QEMU alike: greeting, qmp_capabilities, execute with ids, and events.

import { setTimeout as sleep } from 'node:timers/promises';
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { JsonStream } from './json-stream.js';
import { isPlainObject } from './qmp-args.js';
import { parseSocketAddress, type SocketAddress } from './socket-address.js';

export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

export interface QmpGreeting {
  QMP: {
    version: { qemu: { major: number; minor: number; micro: number }; package: string };
    capabilities: string[];
  };
}

/** A command the server refused: `errorClass` and `desc` are the server's, verbatim. */
export class QmpCommandError extends Error {
  constructor(
    readonly command: string,
    readonly errorClass: string,
    readonly desc: string,
  ) {
    super(desc);
    this.name = 'QmpCommandError';
  }
}

export interface QmpConnectOptions {
  /** Keep retrying a missing or refusing socket until this many ms have passed (default 10 s). */
  timeoutMs?: number;
  /** Pause between attempts (default 50 ms). */
  retryIntervalMs?: number;
}

interface Pending {
  id: number;
  command: string;
  resolve(value: unknown): void;
  reject(err: Error): void;
}

interface EventWaiter {
  name: string;
  predicate?: (event: QmpEvent) => boolean;
  resolve(event: QmpEvent): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

// Errors that mean "the server is not up yet": the caller may have just started it.
const RETRYABLE = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN', 'ECONNRESET']);
/** Unconsumed events kept for waitEvent; the oldest are dropped beyond this. */
const MAX_EVENT_BACKLOG = 1024;
const MAX_MESSAGE_CHARS = 16 * 1024 * 1024;

export class QmpClient extends EventEmitter {
  private readonly input = new JsonStream(MAX_MESSAGE_CHARS);
  private readonly pending: Pending[] = [];
  private readonly waiters: EventWaiter[] = [];
  private readonly backlog: QmpEvent[] = [];
  private nextId = 1;
  private closedWith: Error | undefined;
  private greetingReceived: ((g: QmpGreeting) => void) | undefined;
  private greetingValue: QmpGreeting | undefined;

  private constructor(private readonly socket: Socket) {
    super();
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => this.onData(chunk));
    socket.on('error', (err) => this.shutdown(new Error(`QMP connection closed: ${err.message}`)));
    socket.on('close', () => this.shutdown(new Error('QMP connection closed')));
  }

  /** Connects (retrying until the deadline) and reads the greeting; does not negotiate. */
  static async connect(address: string, options: QmpConnectOptions = {}): Promise<QmpClient> {
    const where = parseSocketAddress(address);
    const deadline = Date.now() + (options.timeoutMs ?? 10_000);
    const retryMs = options.retryIntervalMs ?? 50;
    let socket: Socket;
    for (;;) {
      try {
        socket = await connectOnce(where);
        break;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? '';
        if (!RETRYABLE.has(code) || Date.now() + retryMs > deadline) {
          throw new Error(`cannot connect to QMP at ${address}: ${(err as Error).message}`);
        }
        await sleep(retryMs);
      }
    }
    const client = new QmpClient(socket);
    await client.readGreeting(Math.max(deadline - Date.now(), 1000), address);
    return client;
  }

  get greeting(): QmpGreeting {
    if (!this.greetingValue) throw new Error('QMP greeting not received yet');
    return this.greetingValue;
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  /** Leaves capabilities-negotiation mode, as every QMP session must before other commands. */
  async negotiate(): Promise<void> {
    await this.execute('qmp_capabilities');
  }

  /** Resolves with the command's `return`, rejects with a QmpCommandError for its `error`. */
  execute<T = unknown>(name: string, args?: Record<string, unknown>): Promise<T> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const id = this.nextId++;
    return new Promise<T>((resolve, reject) => {
      this.pending.push({ id, command: name, resolve: resolve as (v: unknown) => void, reject });
      const request =
        args === undefined ? { execute: name, id } : { execute: name, arguments: args, id };
      this.socket.write(JSON.stringify(request) + '\n');
    });
  }

  /**
   * The next event called `name` (and satisfying `predicate`). Events that arrived earlier and
   * were not taken by another waitEvent count too, so "execute, then wait for the event it
   * causes" has no race. Each event satisfies at most one waitEvent.
   */
  waitEvent(
    name: string,
    predicate?: (event: QmpEvent) => boolean,
    timeoutMs = 30_000,
  ): Promise<QmpEvent> {
    const matches = (e: QmpEvent): boolean => e.event === name && (!predicate || predicate(e));
    const i = this.backlog.findIndex(matches);
    if (i >= 0) return Promise.resolve(this.backlog.splice(i, 1)[0]);
    if (this.closedWith) return Promise.reject(this.closedWith);
    return new Promise((resolve, reject) => {
      const waiter: EventWaiter = {
        name,
        predicate,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.waiters.splice(this.waiters.indexOf(waiter), 1);
          reject(new Error(`timed out after ${timeoutMs} ms waiting for QMP event ${name}`));
        }, timeoutMs),
      };
      this.waiters.push(waiter);
    });
  }

  /** Forget events no waitEvent has taken yet. */
  clearEvents(): void {
    this.backlog.length = 0;
  }

  async close(): Promise<void> {
    if (this.socket.destroyed) return;
    const closed = new Promise<void>((resolve) => this.socket.once('close', () => resolve()));
    this.socket.end();
    // A server that never closes its side must not keep us waiting.
    const timer = setTimeout(() => this.socket.destroy(), 1000);
    await closed;
    clearTimeout(timer);
  }

  override on(event: 'event', listener: (event: QmpEvent) => void): this;
  override on(event: 'close', listener: (reason: Error) => void): this;
  override on(event: string | symbol, listener: (...args: never[]) => void): this {
    return super.on(event, listener as (...args: unknown[]) => void);
  }

  private readGreeting(timeoutMs: number, address: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.socket.destroy();
        reject(new Error(`no QMP greeting from ${address} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.greetingReceived = () => {
        clearTimeout(timer);
        resolve();
      };
      this.once('close', (reason: Error) => {
        clearTimeout(timer);
        reject(
          new Error(`QMP connection to ${address} closed before the greeting: ${reason.message}`),
        );
      });
    });
  }

  private onData(chunk: string): void {
    const { items, overflow } = this.input.push(chunk);
    for (const item of items) {
      if (!item.ok || !isPlainObject(item.value)) {
        this.socket.destroy();
        this.shutdown(
          new Error(`malformed QMP message from server: ${item.ok ? 'not an object' : item.error}`),
        );
        return;
      }
      this.onMessage(item.value);
    }
    if (overflow) {
      this.socket.destroy();
      this.shutdown(new Error('QMP message from server too large'));
    }
  }

  private onMessage(msg: Record<string, unknown>): void {
    if ('QMP' in msg) {
      this.greetingValue = msg as unknown as QmpGreeting;
      this.greetingReceived?.(this.greetingValue);
      this.greetingReceived = undefined;
    } else if (typeof msg.event === 'string') {
      this.onEvent(msg as unknown as QmpEvent);
    } else if ('return' in msg || 'error' in msg) {
      this.onReply(msg);
    }
  }

  private onEvent(event: QmpEvent): void {
    const w = this.waiters.findIndex(
      (x) => x.name === event.event && (!x.predicate || x.predicate(event)),
    );
    if (w >= 0) {
      const [waiter] = this.waiters.splice(w, 1);
      clearTimeout(waiter.timer);
      waiter.resolve(event);
    } else {
      this.backlog.push(event);
      if (this.backlog.length > MAX_EVENT_BACKLOG) this.backlog.shift();
    }
    this.emit('event', event);
  }

  // Replies carry our id; a reply without one (a request the server could not parse) answers
  // the oldest request, since QMP answers in-band requests in order.
  private onReply(msg: Record<string, unknown>): void {
    let i = this.pending.findIndex((p) => p.id === msg.id);
    if (i < 0 && !('id' in msg)) i = 0;
    if (i < 0 || i >= this.pending.length) return;
    const [p] = this.pending.splice(i, 1);
    if ('error' in msg) {
      const e = isPlainObject(msg.error) ? msg.error : {};
      const errorClass = typeof e.class === 'string' ? e.class : 'GenericError';
      const desc = typeof e.desc === 'string' ? e.desc : JSON.stringify(msg.error);
      p.reject(new QmpCommandError(p.command, errorClass, desc));
    } else {
      p.resolve(msg.return);
    }
  }

  private shutdown(reason: Error): void {
    if (this.closedWith) return;
    this.closedWith = reason;
    for (const p of this.pending.splice(0)) p.reject(reason);
    for (const w of this.waiters.splice(0)) {
      clearTimeout(w.timer);
      w.reject(reason);
    }
    this.emit('close', reason);
  }
}

function connectOnce(where: SocketAddress): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket =
      where.kind === 'unix' ? connect(where.path) : connect(where.port, where.host ?? 'localhost');
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}
