// A character device backend ("chardev", QEMU's word): where a guest's serial port output goes
// and where its input comes from. The emulator calls write() with what the guest's UART
// transmits and feeds onInput's bytes to the UART; the backend decides who sees them.

import type { ChardevLogFile } from './logfile.js';

/** QEMU's CHR_EVENT_OPENED / CHR_EVENT_CLOSED: a console client attached or left. */
export type ChardevEvent = 'opened' | 'closed';

export interface ChardevStats {
  /** bytes the guest wrote */
  written: number;
  /** guest output dropped because no client was attached (QEMU drops it as well) */
  droppedDetached: number;
  /** guest output dropped because the attached client (or stdout) did not keep up */
  droppedSlow: number;
  /** input dropped because nobody had called onInput yet and the buffer was full */
  droppedInput: number;
  /** guest output that could not be written to the logfile */
  logFailed: number;
  /** a client is attached now (stdio: always; null: never) */
  attached: boolean;
  /** clients attached so far */
  attaches: number;
}

export interface Chardev {
  /** Guest output: bytes the guest's UART transmitted. Copied; called often, in small chunks. */
  write(data: Uint8Array): void;
  /**
   * Adds a listener for bytes typed by whoever is attached, for the guest's UART. Input that
   * arrived before the first listener was added is delivered to it at once (bounded: 64 KiB).
   */
  onInput(listener: (data: Buffer) => void): void;
  /** Adds a listener for clients attaching ('opened') and leaving ('closed'). */
  onEvent(listener: (event: ChardevEvent) => void): void;
  /**
   * Resolves when the guest may start: at once, or (server, wait=on) once the first client is
   * connected. Rejects if the chardev is closed before that.
   */
  ready(): Promise<void>;
  /** Where clients attach, for logs: 'unix:/tmp/x.sock', 'tcp:127.0.0.1:41234', 'stdio', 'null'. */
  readonly address: string;
  stats(): ChardevStats;
  /** Flushes pending output, ends any client's connection, stops listening, closes the log. */
  close(): Promise<void>;
}

/** Input kept while nobody listens yet; beyond this it is dropped (and counted). */
const MAX_PENDING_INPUT = 64 * 1024;

/** What every backend shares: counters, the logfile, input buffering, events, close once. */
export abstract class ChardevBase implements Chardev {
  abstract readonly address: string;
  protected readonly counters = {
    written: 0,
    droppedDetached: 0,
    droppedSlow: 0,
    droppedInput: 0,
    attaches: 0,
  };
  protected closing: Promise<void> | undefined;
  private readonly inputListeners: ((data: Buffer) => void)[] = [];
  private readonly eventListeners: ((event: ChardevEvent) => void)[] = [];
  private pendingInput: Buffer[] = [];
  private pendingInputBytes = 0;

  constructor(private readonly log: ChardevLogFile | undefined) {}

  write(data: Uint8Array): void {
    if (this.closing !== undefined || data.length === 0) return;
    this.counters.written += data.length;
    this.log?.push(data);
    this.output(data);
  }

  onInput(listener: (data: Buffer) => void): void {
    this.inputListeners.push(listener);
    if (this.inputListeners.length > 1) return;
    const pending = this.pendingInput;
    this.pendingInput = [];
    this.pendingInputBytes = 0;
    if (pending.length > 0) listener(Buffer.concat(pending));
  }

  onEvent(listener: (event: ChardevEvent) => void): void {
    this.eventListeners.push(listener);
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  stats(): ChardevStats {
    return {
      ...this.counters,
      logFailed: this.log?.failed ?? 0,
      attached: this.isAttached(),
    };
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      try {
        await this.shutdown();
      } finally {
        this.log?.close();
      }
    })();
    return this.closing;
  }

  /** Delivers guest output to whoever is attached (or drops it, counting). */
  protected abstract output(data: Uint8Array): void;
  protected abstract isAttached(): boolean;
  /** Flushes and releases the backend's own resources; called once. */
  protected abstract shutdown(): Promise<void>;

  /** Bytes from the attached side, for the guest. */
  protected input(data: Buffer): void {
    if (this.closing !== undefined || data.length === 0) return;
    if (this.inputListeners.length > 0) {
      for (const listener of this.inputListeners) listener(data);
      return;
    }
    const room = MAX_PENDING_INPUT - this.pendingInputBytes;
    const kept = data.length <= room ? data : data.subarray(0, room);
    this.counters.droppedInput += data.length - kept.length;
    if (kept.length > 0) {
      this.pendingInput.push(kept);
      this.pendingInputBytes += kept.length;
    }
  }

  protected emitEvent(event: ChardevEvent): void {
    for (const listener of this.eventListeners) listener(event);
  }
}

/** `null` and `none`: output vanishes (into the logfile, if any), no input ever arrives. */
export class NullChardev extends ChardevBase {
  constructor(
    readonly address: string,
    log: ChardevLogFile | undefined,
  ) {
    super(log);
  }

  protected output(): void {}

  protected isAttached(): boolean {
    return false;
  }

  protected async shutdown(): Promise<void> {}
}
