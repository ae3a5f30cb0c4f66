// A program's view of a serial console, for tests, `livemig demo --machine pc` and benchmarks:
// connect to a chardev socket, collect what the guest prints, wait for a pattern, type. One
// ConsoleClient outlives its connections: close it, connect again (to the process the guest
// migrated to) and its positions and collected output carry on.

import { connect, type Socket } from 'node:net';
import { StringDecoder } from 'node:string_decoder';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseSocketAddress } from '../control/socket-address.js';

export interface ConsoleConnectOptions {
  /** Keep trying while the socket is missing or refuses, for up to this long (ms). Default 0. */
  retryForMs?: number;
}

/** A match, with `index` and `end` as positions in the whole output (as mark() counts). */
export interface ConsoleMatch extends RegExpMatchArray {
  index: number;
  end: number;
}

interface Waiter {
  /** resolves the wait if the output has a match now */
  check(): boolean;
}

/** Output kept for waitFor() and lines(); beyond it, the oldest half is forgotten. */
const DEFAULT_MAX_KEPT = 4 * 1024 * 1024;
/** How many lines a waitFor() timeout shows. */
const TAIL_LINES = 20;
const RETRY_INTERVAL_MS = 50;

export class ConsoleClient {
  private kept = '';
  /** position (in mark() units) of kept[0] */
  private base = 0;
  private decoder = new StringDecoder('utf8');
  private socket: Socket | undefined;
  private socketClosed: Promise<void> = Promise.resolve();
  private current: string | undefined;
  private readonly waiters = new Set<Waiter>();

  constructor(private readonly maxKept = DEFAULT_MAX_KEPT) {}

  static async connect(address: string, options?: ConsoleConnectOptions): Promise<ConsoleClient> {
    const client = new ConsoleClient();
    await client.connect(address, options);
    return client;
  }

  /** The address of the open connection, if any. */
  get address(): string | undefined {
    return this.current;
  }

  get connected(): boolean {
    return this.socket !== undefined && !this.socket.destroyed;
  }

  /** Connects (again); `address` is `unix:PATH` or `tcp:HOST:PORT`. */
  async connect(address: string, options: ConsoleConnectOptions = {}): Promise<void> {
    if (this.connected) {
      throw new Error(`console: already connected to ${this.current}; close() it first`);
    }
    const where = parseSocketAddress(address);
    const deadline = performance.now() + (options.retryForMs ?? 0);
    for (;;) {
      try {
        this.attach(await open(where), address);
        return;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const retriable = code === 'ENOENT' || code === 'ECONNREFUSED';
        if (!retriable || performance.now() >= deadline) {
          throw new Error(`console: cannot connect to ${address}: ${(err as Error).message}`);
        }
        await sleep(RETRY_INTERVAL_MS);
      }
    }
  }

  /** The current end of the output: waitFor(..., mark) sees only what arrives after now. */
  mark(): number {
    return this.base + this.kept.length;
  }

  /** Output from position `from` (default: all that is kept). */
  text(from = 0): string {
    return this.kept.slice(Math.max(0, from - this.base));
  }

  /** Output from `from` as lines, without line endings; the last may be partial. */
  lines(from = 0): string[] {
    const text = this.text(from);
    if (text === '') return [];
    const lines = text.split('\n').map((line) => line.replace(/\r+$/, ''));
    if (text.endsWith('\n')) lines.pop();
    return lines;
  }

  /**
   * Resolves with the first match of `pattern` in the output from position `from` (a mark(), or
   * a previous match's `end`; default 0: all output kept). Waits across disconnects and
   * reconnects. Rejects after `timeoutMs` with the last lines seen, for whoever debugs it.
   * `^` matches a line start only with the `m` flag.
   */
  waitFor(pattern: RegExp | string, timeoutMs: number, from = 0): Promise<ConsoleMatch> {
    const flags = typeof pattern === 'string' ? 'g' : pattern.flags.replace(/[gy]/g, '') + 'g';
    const source = typeof pattern === 'string' ? escapeRegExp(pattern) : pattern.source;
    const re = new RegExp(source, flags);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        check: () => {
          re.lastIndex = Math.max(0, from - this.base);
          const m = re.exec(this.kept);
          if (m === null) return false;
          const match = m as ConsoleMatch;
          match.index = this.base + m.index;
          match.end = match.index + m[0].length;
          finish();
          resolve(match);
          return true;
        },
      };
      const timer = setTimeout(() => {
        finish();
        reject(this.timeoutError(pattern, timeoutMs, from));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      if (!waiter.check()) this.waiters.add(waiter);
    });
  }

  /** Types `data` into the console; resolves once it is handed to the kernel. */
  send(data: string | Uint8Array): Promise<void> {
    const socket = this.socket;
    if (socket === undefined || socket.destroyed) {
      return Promise.reject(new Error('console: not connected'));
    }
    return new Promise((resolve, reject) => {
      socket.write(data, (err) => (err ? reject(err) : resolve()));
    });
  }

  /** Resolves when the current connection has closed (at once if there is none). */
  disconnected(): Promise<void> {
    return this.socketClosed;
  }

  /** Ends the connection (what was sent is delivered first). Collected output is kept. */
  async close(): Promise<void> {
    const socket = this.socket;
    if (socket !== undefined && !socket.destroyed) {
      // Not end() alone: a server that has not attached us yet would never read our FIN.
      socket.end(() => socket.destroy());
    }
    await this.socketClosed;
  }

  private attach(socket: Socket, address: string): void {
    this.socket = socket;
    this.current = address;
    this.decoder = new StringDecoder('utf8');
    this.socketClosed = new Promise((resolve) =>
      socket.once('close', () => {
        this.append(this.decoder.end());
        if (this.socket === socket) this.current = undefined;
        resolve();
      }),
    );
    socket.on('data', (data: Buffer) => this.append(this.decoder.write(data)));
    socket.on('error', () => socket.destroy()); // the server going away ends the connection
  }

  private append(text: string): void {
    if (text === '') return;
    this.kept += text;
    if (this.kept.length > this.maxKept) {
      const forget = this.kept.length - Math.floor(this.maxKept / 2);
      this.kept = this.kept.slice(forget);
      this.base += forget;
    }
    for (const waiter of [...this.waiters]) waiter.check();
  }

  private timeoutError(pattern: RegExp | string, timeoutMs: number, from: number): Error {
    const shown = typeof pattern === 'string' ? JSON.stringify(pattern) : String(pattern);
    const state = this.connected ? `connected to ${this.current}` : 'not connected';
    const tail = this.lines().slice(-TAIL_LINES).map(printable);
    const body =
      tail.length === 0
        ? '(no output at all)'
        : `last ${tail.length} lines:\n${tail.map((l) => `  | ${l}`).join('\n')}`;
    return new Error(
      `console: no ${shown} within ${timeoutMs} ms (from position ${from} of ${this.mark()}, ` +
        `${state}); ${body}`,
    );
  }
}

function open(where: ReturnType<typeof parseSocketAddress>): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = where.kind === 'unix' ? connect(where.path) : connect(where.port, where.host);
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

// eslint-disable-next-line no-control-regex
const ESCAPE_SEQUENCE = /\x1b\[[0-9;?]*[ -/]*[@-~]/g;
// eslint-disable-next-line no-control-regex
const CONTROL_CHAR = /[\x00-\x08\x0b-\x1f\x7f]/g;

/** A console line made safe to print: escape sequences removed, other controls shown as `^X`. */
function printable(line: string): string {
  return line
    .replace(ESCAPE_SEQUENCE, '')
    .replace(CONTROL_CHAR, (c) =>
      c === '\x7f' ? '^?' : `^${String.fromCharCode(c.charCodeAt(0) + 64)}`,
    );
}
