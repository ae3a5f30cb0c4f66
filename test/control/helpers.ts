// Test doubles for the control plane: a MigrationHost with canned state that records calls, and
// a raw socket client that sees exactly the bytes a QMP server sends.

import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type {
  CapabilityState,
  HostEvent,
  MigrationHost,
  MigrationThreadInfo,
  RunStatus,
} from '../../src/control/host.js';
import {
  applyCapabilities,
  applyParameters,
  DEFAULT_CAPABILITIES,
  DEFAULT_PARAMETERS,
  type MigrationCapabilities,
  type MigrationParameters,
} from '../../src/migration/parameters.js';

export interface Call {
  method: string;
  args: unknown[];
}

/** Validates through parameters.ts like the real machine, so error messages are the real ones. */
export class FakeHost extends EventEmitter implements MigrationHost {
  readonly calls: Call[] = [];
  params: MigrationParameters = { ...DEFAULT_PARAMETERS, 'accel-path': [] };
  caps: MigrationCapabilities = { ...DEFAULT_CAPABILITIES };
  migrateInfo: Record<string, unknown> = { status: 'none' };
  runStatus: RunStatus = { status: 'running', running: true, singlestep: false };
  digest = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
  threads: MigrationThreadInfo[] = [];
  /** method name -> error its next call throws */
  readonly failures = new Map<string, unknown>();
  readonly quitCalled: Promise<void>;
  private markQuit: () => void = () => undefined;

  constructor() {
    super();
    this.quitCalled = new Promise((resolve) => (this.markQuit = resolve));
  }

  private record(method: string, ...args: unknown[]): void {
    this.calls.push({ method, args });
    const failure = this.failures.get(method);
    if (failure !== undefined) {
      this.failures.delete(method);
      throw failure;
    }
  }

  called(method: string): Call[] {
    return this.calls.filter((c) => c.method === method);
  }

  emitEvent(event: HostEvent): void {
    this.emit('event', event);
  }

  setCapabilities(capabilities: unknown): void {
    this.record('setCapabilities', capabilities);
    this.caps = applyCapabilities(this.caps, capabilities);
  }
  queryCapabilities(): CapabilityState[] {
    this.record('queryCapabilities');
    return Object.entries(this.caps).map(([capability, state]) => ({ capability, state }));
  }
  setParameters(params: Record<string, unknown>): void {
    this.record('setParameters', params);
    this.params = applyParameters(this.params, params);
  }
  queryParameters(): Record<string, unknown> {
    this.record('queryParameters');
    return { ...this.params };
  }
  migrate(uri: string): void {
    this.record('migrate', uri);
    this.migrateInfo = { status: 'setup' };
  }
  async migrateIncoming(uri: string): Promise<void> {
    this.record('migrateIncoming', uri);
  }
  queryMigrate(): Record<string, unknown> {
    this.record('queryMigrate');
    return this.migrateInfo;
  }
  migrateCancel(): void {
    this.record('migrateCancel');
  }
  stop(): void {
    this.record('stop');
    this.runStatus = { status: 'paused', running: false, singlestep: false };
  }
  cont(): void {
    this.record('cont');
    this.runStatus = { status: 'running', running: true, singlestep: false };
  }
  queryStatus(): RunStatus {
    this.record('queryStatus');
    return this.runStatus;
  }
  quit(): void {
    this.record('quit');
    this.markQuit();
  }
  yank(): void {
    this.record('yank');
  }

  migrateContinue(state: string): void {
    this.record('migrateContinue', state);
  }

  yankable(): boolean {
    return false;
  }

  ramDigest(): string {
    this.record('ramDigest');
    return this.digest;
  }
  queryMigrationThreads(): MigrationThreadInfo[] {
    this.record('queryMigrationThreads');
    return this.threads.map((t) => ({ ...t }));
  }
  objectAdd(options: Record<string, unknown>): void {
    this.record('objectAdd', options);
  }
  objectDel(id: string): void {
    this.record('objectDel', id);
  }
}

/** A QMP peer at the byte level: write anything, read one JSON message per line. */
export class RawConnection {
  private buffered = '';
  private readonly lines: string[] = [];
  private waiting: ((line: string | undefined) => void) | undefined;
  private ended = false;
  readonly closed: Promise<void>;

  private constructor(readonly socket: Socket) {
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      this.buffered += chunk;
      let nl: number;
      while ((nl = this.buffered.indexOf('\n')) >= 0) {
        this.deliver(this.buffered.slice(0, nl));
        this.buffered = this.buffered.slice(nl + 1);
      }
    });
    this.closed = new Promise((resolve) =>
      socket.on('close', () => {
        this.ended = true;
        this.waiting?.(undefined);
        resolve();
      }),
    );
    socket.on('error', () => undefined);
  }

  static open(address: string): Promise<RawConnection> {
    return new Promise((resolve, reject) => {
      const socket = address.startsWith('unix:')
        ? connect(address.slice(5))
        : connect(Number(address.slice(address.lastIndexOf(':') + 1)), '127.0.0.1');
      socket.once('error', reject);
      socket.once('connect', () => resolve(new RawConnection(socket)));
    });
  }

  private deliver(line: string): void {
    if (this.waiting) {
      const w = this.waiting;
      this.waiting = undefined;
      w(line);
    } else {
      this.lines.push(line);
    }
  }

  /** The next raw line (with its CR, if any), or undefined once the server closed. */
  nextLine(): Promise<string | undefined> {
    const line = this.lines.shift();
    if (line !== undefined) return Promise.resolve(line);
    if (this.ended) return Promise.resolve(undefined);
    return new Promise((resolve) => (this.waiting = resolve));
  }

  async next(): Promise<Record<string, unknown>> {
    const line = await this.nextLine();
    if (line === undefined) throw new Error('connection closed');
    return JSON.parse(line) as Record<string, unknown>;
  }

  write(text: string): void {
    this.socket.write(text);
  }

  async request(message: unknown): Promise<Record<string, unknown>> {
    this.write(JSON.stringify(message) + '\n');
    return this.next();
  }

  close(): void {
    this.socket.destroy();
  }
}

/** Reads the greeting and negotiates; returns the connection ready for commands. */
export async function openNegotiated(address: string): Promise<RawConnection> {
  const conn = await RawConnection.open(address);
  await conn.next(); // greeting
  const reply = await conn.request({ execute: 'qmp_capabilities' });
  if (!('return' in reply)) throw new Error(`negotiation failed: ${JSON.stringify(reply)}`);
  return conn;
}

export function makeTmpDir(): { dir: string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'livemig-control-'));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
