// QEMU's chardev `logfile=PATH[,logappend=on]`: every byte of guest output is appended to a
// file, whether or not anyone is attached. Best effort, as QEMU's: a failed write is counted,
// not reported.

import { closeSync, openSync, writeSync } from 'node:fs';
import { ByteBatcher } from './batcher.js';
import type { ChardevLog } from './chardev-spec.js';

export class ChardevLogFile {
  /** bytes that could not be written (disk full, I/O error) */
  failed = 0;
  private readonly batcher: ByteBatcher;
  private fd: number | undefined;

  private constructor(fd: number) {
    this.fd = fd;
    // Synchronous writes keep the file in the guest's order with no queue to bound; batched,
    // they are one write per event-loop turn.
    this.batcher = new ByteBatcher((chunk) => this.writeOut(chunk));
  }

  /** Opens (creating it mode 0600, truncating it unless `append`) or throws naming the path. */
  static open(log: ChardevLog): ChardevLogFile {
    try {
      return new ChardevLogFile(openSync(log.path, log.append ? 'a' : 'w', 0o600));
    } catch (err) {
      throw new Error(`cannot open serial logfile '${log.path}': ${(err as Error).message}`);
    }
  }

  push(data: Uint8Array): void {
    if (this.fd !== undefined) this.batcher.push(data);
  }

  close(): void {
    if (this.fd === undefined) return;
    this.batcher.flush();
    closeSync(this.fd);
    this.fd = undefined;
  }

  private writeOut(chunk: Buffer): void {
    if (this.fd === undefined) return;
    let done = 0;
    try {
      while (done < chunk.length) done += writeSync(this.fd, chunk, done);
    } catch {
      this.failed += chunk.length - done;
    }
  }
}
