// QEMU's `stdio` chardev: guest output to livemig's stdout, its stdin to the guest. A terminal
// is put in raw mode so that every key reaches the guest (whose shell echoes), except that
// Ctrl-C still interrupts livemig unless `signal=off`, as QEMU keeps ISIG. The terminal is
// restored on close and, failing that, when the process exits.

import type { Readable, Writable } from 'node:stream';
import { ByteBatcher } from './batcher.js';
import { ChardevBase } from './chardev.js';
import type { ChardevLogFile } from './logfile.js';
import { MAX_UNSENT_OUTPUT } from './socket-link.js';

export interface StdioStreams {
  stdin: Readable & { isTTY?: boolean; setRawMode?(mode: boolean): unknown };
  stdout: Writable;
  /** What Ctrl-C does on a raw terminal with signal=on; default: SIGINT to this process. */
  interrupt?: () => void;
}

const CTRL_C = 0x03;

// QEMU: "cannot use stdio by multiple character devices"
let processStdioInUse = false;

export class StdioChardev extends ChardevBase {
  readonly address = 'stdio';
  private readonly batcher: ByteBatcher;
  private readonly ownsProcessStdio: boolean;
  private raw = false;
  private outputBroken = false;

  constructor(
    private readonly io: StdioStreams | undefined,
    private readonly signal: boolean,
    log: ChardevLogFile | undefined,
  ) {
    super(log);
    this.ownsProcessStdio = io === undefined;
    if (this.ownsProcessStdio) {
      if (processStdioInUse) throw new Error('stdio is already in use by another serial port');
      processStdioInUse = true;
    }
    this.batcher = new ByteBatcher((chunk) => this.send(chunk));
    const { stdin, stdout } = this.streams;
    if (stdin.isTTY === true && typeof stdin.setRawMode === 'function') {
      stdin.setRawMode(true);
      this.raw = true;
      process.once('exit', this.restoreTerminal);
    }
    stdin.on('data', this.onData);
    stdin.once('end', this.stopReading);
    stdin.once('error', this.stopReading);
    stdin.resume();
    // EPIPE and the like: output stops, livemig does not die of it. Left attached after close,
    // since writes already made may still fail after it.
    stdout.on('error', () => (this.outputBroken = true));
  }

  private get streams(): StdioStreams {
    return this.io ?? { stdin: process.stdin, stdout: process.stdout };
  }

  protected output(data: Uint8Array): void {
    this.batcher.push(data);
  }

  protected isAttached(): boolean {
    return true;
  }

  protected async shutdown(): Promise<void> {
    this.batcher.flush();
    this.stopReading();
    this.restoreTerminal();
    if (this.ownsProcessStdio) processStdioInUse = false;
  }

  private send(chunk: Buffer): void {
    const { stdout } = this.streams;
    if (this.outputBroken || !stdout.writable) {
      this.counters.droppedSlow += chunk.length;
    } else if (stdout.writableLength + chunk.length > MAX_UNSENT_OUTPUT) {
      this.counters.droppedSlow += chunk.length; // a pipe nobody reads: drop, do not queue
    } else {
      stdout.write(chunk);
    }
  }

  private readonly onData = (data: Buffer | string): void => {
    let bytes = typeof data === 'string' ? Buffer.from(data) : data;
    if (!this.raw || !this.signal) {
      this.input(bytes);
      return;
    }
    // Raw mode took ISIG away; put Ctrl-C back: what precedes it reaches the guest first.
    let at: number;
    while ((at = bytes.indexOf(CTRL_C)) >= 0) {
      this.input(bytes.subarray(0, at));
      (this.io?.interrupt ?? (() => process.kill(process.pid, 'SIGINT')))();
      bytes = bytes.subarray(at + 1);
    }
    this.input(bytes);
  };

  /** stdin ended or failed, or close: stop reading, quietly. */
  private readonly stopReading = (): void => {
    const { stdin } = this.streams;
    stdin.off('data', this.onData);
    stdin.off('end', this.stopReading);
    stdin.off('error', this.stopReading);
    stdin.pause();
  };

  private readonly restoreTerminal = (): void => {
    if (!this.raw) return;
    this.raw = false;
    process.off('exit', this.restoreTerminal);
    this.streams.stdin.setRawMode?.(false);
  };
}
